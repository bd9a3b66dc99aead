"""The bad-input catalogue: each damaged input, given to check, train, predict, evaluate or serve, gets one clear
error that names the file at fault and the fix, a non-zero exit status, and leaves no partial output."""

import gzip
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import PHANTOM_RUN_SHAPE, assert_clear_error, glioseg_in_process, no_outputs

SUFFIXES = ("flair", "t1", "t1ce", "t2", "seg")


@pytest.fixture(scope="module")
def good(cohort_factory):
    return cohort_factory("brats2021", cases=2, seed=11, shape=PHANTOM_RUN_SHAPE)


@pytest.fixture
def data(good, tmp_path):
    """A fresh copy of a good two-case BraTS 2021 dataset, to damage."""
    return Path(shutil.copytree(good, tmp_path / "data"))


def case_file(data: Path, suffix: str, case: int = 0) -> Path:
    folder = sorted(p for p in data.iterdir() if p.is_dir())[case]
    return folder / f"{folder.name}_{suffix}.nii.gz"


def rewrite(path: Path, change) -> None:
    """Replace a NIfTI file's voxels (and optionally affine) by ``change(array, affine)``."""
    image = nib.load(path)
    array, affine = change(np.asarray(image.dataobj).copy(), image.affine.copy())
    nib.save(nib.Nifti1Image(array, affine), path)


def msd_dataset(root: Path, image: np.ndarray, name: str = "BRATS_001") -> Path:
    (root / "imagesTr").mkdir(parents=True)
    nib.save(nib.Nifti1Image(image, np.eye(4)), root / "imagesTr" / f"{name}.nii.gz")
    return root / "imagesTr" / f"{name}.nii.gz"


# ---- damages: each returns (path expected in the message, the dataset or case to give) ---------------------


def missing_modality(data, tmp):
    path = case_file(data, "t1ce")
    path.unlink()
    return path.name, data


def two_modalities_missing(data, tmp):
    """One sequence a case may lack (it is segmented without it: tests/inference/test_predict.py), not two."""
    case_file(data, "t2").unlink()
    return missing_modality(data, tmp)


def extra_file(data, tmp):
    path = case_file(data, "flair").parent / "notes_dwi.nii.gz"
    shutil.copy(case_file(data, "flair"), path)
    return path.name, data


def shapes_differ(data, tmp):
    rewrite(case_file(data, "t2"), lambda a, m: (a[:-2], m))
    return case_file(data, "t2").name, data


def affines_differ(data, tmp):
    rewrite(case_file(data, "t1"), lambda a, m: (a, m @ np.diag([1.0, 1.0, 1.02, 1.0])))
    return case_file(data, "t1").name, data


def label_grid_differs(data, tmp):
    rewrite(case_file(data, "seg"), lambda a, m: (a[:, :, :-4], m))
    return case_file(data, "seg").name, data


def nan_voxels(data, tmp):
    rewrite(case_file(data, "flair"), lambda a, m: (np.where(a > a.mean(), np.nan, a).astype(np.float32), m))
    return case_file(data, "flair").name, data


def all_zero(data, tmp):
    rewrite(case_file(data, "t1"), lambda a, m: (np.zeros_like(a), m))
    return case_file(data, "t1").name, data


def constant_sequence(data, tmp):
    rewrite(case_file(data, "t2"), lambda a, m: (np.full_like(a, 120), m))
    return case_file(data, "t2").name, data


def rgb_image(data, tmp):
    path = case_file(data, "flair")
    image = nib.load(path)
    colours = np.zeros(image.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    colours["G"] = np.clip(np.asarray(image.dataobj) / 4, 0, 255).astype(np.uint8)
    nib.save(nib.Nifti1Image(colours, image.affine), path)
    return path.name, data


def complex_image(data, tmp):
    rewrite(case_file(data, "t1ce"), lambda a, m: (a.astype(np.complex64) * (1 + 0.5j), m))
    return case_file(data, "t1ce").name, data


def patch_header(path: Path, change) -> None:
    """Change a NIfTI file's header bytes as a broken writer leaves them (nibabel's own writer would fix them)."""
    raw = gzip.decompress(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw), check=False)
    change(header)
    path.write_bytes(gzip.compress(header.binaryblock + raw[len(header.binaryblock) :]))


def zero_spacing_singular_sform(data, tmp):
    def change(header):
        header["pixdim"][1:4] = 0
        header["qform_code"], header["sform_code"] = 0, 1
        header["srow_x"], header["srow_y"], header["srow_z"] = 0, 0, 0

    for suffix in SUFFIXES:  # the whole case written so: its files still share one grid
        patch_header(case_file(data, suffix), change)
    return case_file(data, "flair").name, data


def nan_sform(data, tmp):
    def change(header):
        header["qform_code"], header["sform_code"] = 0, 1
        header["srow_y"] = np.nan

    for suffix in SUFFIXES:
        patch_header(case_file(data, suffix), change)
    return case_file(data, "flair").name, data


def voxels_of_a_metre(data, tmp):  # a header in metres read as millimetres
    for suffix in SUFFIXES:
        rewrite(case_file(data, suffix), lambda a, m: (a, m @ np.diag([1000.0, 1000.0, 1000.0, 1.0])))
    return case_file(data, "flair").name, data


def label_values(data, tmp):
    rewrite(case_file(data, "seg"), lambda a, m: (np.where(a == 4, 3, a).astype(np.uint8), m))
    return case_file(data, "seg").name, data


def truncated(data, tmp):
    path = case_file(data, "flair")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.name, data


def not_nifti(data, tmp):
    path = case_file(data, "t2")
    path.write_bytes(gzip.compress(b"<html>not an image</html>" * 40))
    return path.name, data


def empty_file(data, tmp):
    case_file(data, "t1ce").write_bytes(b"")
    return case_file(data, "t1ce").name, data


def two_d(data, tmp):
    rewrite(case_file(data, "flair"), lambda a, m: (a[:, :, 10], m))
    return case_file(data, "flair").name, data


def five_d(data, tmp):
    rewrite(case_file(data, "flair"), lambda a, m: (a[..., None, None].repeat(2, axis=3), m))
    return case_file(data, "flair").name, data


def huge_header(data, tmp):
    path = case_file(data, "t2")
    image = nib.load(path)
    header = image.header.copy()
    header["dim"][1:4] = (30000, 30000, 30000)
    raw = header.binaryblock + b"\0" * 4 + np.zeros(1000, np.float32).tobytes()
    path.write_bytes(gzip.compress(raw))
    return path.name, data


def header_claim(path: Path, dims: tuple[int, ...], dtype=np.uint8) -> None:
    """Make ``path`` a small .nii.gz whose header claims ``dims`` (its data cut short: never read if refused first)."""
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(dims)
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + bytes(1000)))


def big_volume(data, tmp):
    """A volume over the per-volume limit (800 x 800 x 780: 7.4 GiB as float32, in 2 MB on disk)."""
    path = case_file(data, "flair")
    header_claim(path, (800, 800, 780))
    return path.name, data


def many_volumes(data, tmp):
    """A 4D file of more volumes than the four modalities, each volume small: 4x the per-volume limit in all."""
    path = case_file(data, "t1")
    header_claim(path, (500, 500, 500, 4))
    return path.name, data


def two_files_one_modality(data, tmp):
    path = case_file(data, "flair")
    nib.save(nib.load(path), path.with_name(path.name.replace(".nii.gz", ".nii")))
    return "2 files for the FLAIR", data


def two_prefixes(data, tmp):
    """The T2 of another patient in a case folder (same suffix, other prefix)."""
    path = case_file(data, "t2")
    path.rename(path.with_name("Other_Patient_t2.nii.gz"))
    return "more than one case in one folder", data


def broken_link(data, tmp):
    path = case_file(data, "t1ce")
    path.unlink()
    path.symlink_to(tmp / "gone.nii.gz")
    return path.name, data


def loose_nifti(data, tmp):
    """A mask left among the case folders."""
    shutil.copy(case_file(data, "seg"), data / "mask.nii.gz")
    return "mask.nii.gz", data


def fractional_label(data, tmp):
    rewrite(case_file(data, "seg"), lambda a, m: (np.where(a == 2, 1.5, a).astype(np.float32), m))
    return case_file(data, "seg").name, data


def negative_label(data, tmp):
    rewrite(case_file(data, "seg"), lambda a, m: (np.where(a == 2, -1, a).astype(np.int16), m))
    return case_file(data, "seg").name, data


def huge_label_value(data, tmp):
    rewrite(case_file(data, "seg"), lambda a, m: (np.where(a == 2, 70000, a).astype(np.int32), m))
    return case_file(data, "seg").name, data


def inf_voxels(data, tmp):
    rewrite(case_file(data, "t2"), lambda a, m: (np.where(a > a.mean(), np.inf, a).astype(np.float32), m))
    return case_file(data, "t2").name, data


def label_four_d(data, tmp):
    rewrite(case_file(data, "seg"), lambda a, m: (np.stack([a, a], axis=-1), m))
    return case_file(data, "seg").name, data


def nnunet_dataset(tmp, labels=None, channel_names=None, text=None):
    root = tmp / "nnunet"
    (root / "imagesTr").mkdir(parents=True)
    for channel in range(4):
        nib.save(nib.Nifti1Image(np.ones((16, 16, 16), np.float32), np.eye(4)),
                 root / "imagesTr" / f"case_{channel:04d}.nii.gz")  # fmt: skip
    default_labels = {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumor": 3}
    meta = {"channel_names": channel_names or {"0": "FLAIR", "1": "T1", "2": "T1Gd", "3": "T2"},
            "labels": labels or default_labels}  # fmt: skip
    (root / "dataset.json").write_text(text if text is not None else json.dumps(meta))
    return root


def dataset_json_not_json(data, tmp):
    return "dataset.json", nnunet_dataset(tmp, text="{not json")


def dataset_json_two_values_one_class(data, tmp):
    labels = {"background": 0, "edema": 1, "oedema": 2, "non-enhancing tumor": 3, "enhancing tumor": 4}
    return "both mean edema", nnunet_dataset(tmp, labels=labels)


def dataset_json_missing_class(data, tmp):
    return "no value for core", nnunet_dataset(tmp, labels={"background": 0, "edema": 1, "enhancing tumor": 2})


def dataset_json_unknown_channel(data, tmp):
    return "DWI", nnunet_dataset(tmp, channel_names={"0": "FLAIR", "1": "T1", "2": "DWI", "3": "T2"})


def msd_dataset_json_bad_modality(data, tmp):
    path = msd_dataset(tmp / "msd", np.ones((16, 16, 16, 4), np.float32))
    meta = {"modality": {"0": "FLAIR", "1": "T1w", "2": "T1w", "3": "T2w"}}
    (path.parents[1] / "dataset.json").write_text(json.dumps(meta))
    return "dataset.json", path.parents[1]


def three_d_msd(data, tmp):
    path = msd_dataset(tmp / "msd", np.ones((16, 16, 16), np.float32))
    return path.name, path


def three_channels(data, tmp):
    path = msd_dataset(tmp / "msd", np.ones((16, 16, 16, 3), np.float32))
    return path.name, path


def symlink_loop(data, tmp):
    (data / "loop").symlink_to(data / "loop")
    return "loop", data


def duplicate_ids(data, tmp):
    return "case ids given more than once", data  # the same folder given twice below


def empty_dataset(data, tmp):
    (tmp / "empty").mkdir()
    return "empty", tmp / "empty"


DATASET_DAMAGES = [
    missing_modality, extra_file, shapes_differ, affines_differ, label_grid_differs, nan_voxels, all_zero,
    label_values, truncated, not_nifti, empty_file, two_d, five_d, huge_header, symlink_loop, empty_dataset,
    big_volume, many_volumes, two_files_one_modality, two_prefixes, broken_link, loose_nifti, fractional_label,
    negative_label, huge_label_value, inf_voxels, label_four_d, dataset_json_not_json,
    dataset_json_two_values_one_class, dataset_json_missing_class, dataset_json_unknown_channel,
    msd_dataset_json_bad_modality, constant_sequence, rgb_image, complex_image, zero_spacing_singular_sform, nan_sform,
    voxels_of_a_metre,
]  # fmt: skip


# ---- check -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", DATASET_DAMAGES, ids=lambda d: d.__name__)
def test_check_lists_the_problem(data, tmp_path, damage):
    name, target = damage(data, tmp_path)
    result = glioseg_in_process("check", target)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert_clear_error(result, name, result.returncode)


# ---- train ---------------------------------------------------------------------------------------------------


def train_args(target, out, tmp):
    return ["train", target, "--out", out, "--cache", tmp / "cache", "--folds", "2", "--patch", "16", "16", "16",
            "--width", "4", "--depth", "3", "--epochs", "1", "--steps-per-epoch", "1", "--workers", "0"]  # fmt: skip


TRAIN_DAMAGES = [missing_modality, nan_voxels, label_values, truncated, label_grid_differs, empty_dataset, big_volume,
                 two_prefixes, fractional_label, dataset_json_two_values_one_class]  # fmt: skip

BAD_TRAIN_OPTIONS = [  # (options, what the message must name): refused before anything is read or written
    (["--device", "gpu"], "--device"),
    (["--device", "cuda:1"], "--device"),  # honoured where that GPU exists; no GPU here
    (["--optimizer", "adam"], "--optimizer"),
    (["--head", "softmax"], "--head"),
    (["--loss", "focal"], "--loss"),
    (["--head", "classes", "--loss", "dice_bce"], "--loss"),
    (["--patch", "18", "16", "16"], "--patch"),  # depth 3: multiples of 4
    (["--fold", "7"], "--fold"),
    (["--fold", "last"], "--fold"),
    (["--folds", "3"], "folds"),  # two cases, three folds
    (["--label-convention", "brats2019"], "--label-convention"),
    (["--spacing", "0", "1", "1"], "--spacing"),
    (["--lr", "-1"], "--lr"),
    (["--foreground-fraction", "1.5"], "--foreground-fraction"),
    (["--extra-data", "/no/such/folder"], "/no/such/folder"),
]


@pytest.mark.parametrize(
    ("options", "named"), BAD_TRAIN_OPTIONS, ids=lambda v: "_".join(v) if isinstance(v, list) else None
)
def test_train_refuses_bad_options_before_writing_anything(data, tmp_path, options, named):
    out = tmp_path / "run"
    args = train_args(data, out, tmp_path)
    args[args.index("--folds") + 1] = "2"
    result = glioseg_in_process(*args, *options)
    assert result.returncode == 2, (result.stdout, result.stderr)
    text = " ".join((result.stdout + result.stderr).split())
    assert named in text and "Traceback" not in text, text
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("damage", TRAIN_DAMAGES, ids=lambda d: d.__name__)
def test_train_refuses_before_writing_a_checkpoint(data, tmp_path, damage):
    name, target = damage(data, tmp_path)
    out = tmp_path / "run"
    assert_clear_error(glioseg_in_process(*train_args(target, out, tmp_path)), name)
    assert not out.exists()


# ---- predict ---------------------------------------------------------------------------------------------------


PREDICT_DAMAGES = [two_modalities_missing, nan_voxels, truncated, not_nifti, empty_file, two_d, five_d, huge_header,
                   three_d_msd, three_channels, empty_dataset, big_volume, many_volumes, two_files_one_modality,
                   two_prefixes, broken_link, inf_voxels, constant_sequence, rgb_image, complex_image,
                   zero_spacing_singular_sform, nan_sform, voxels_of_a_metre]  # fmt: skip
UNALIGNED = [shapes_differ, affines_differ]
"""Sequences on different grids: raw input that predict prepares (tests/inference/test_native.py), unless --prepare
never."""


@pytest.mark.parametrize("damage", PREDICT_DAMAGES, ids=lambda d: d.__name__)
def test_predict_refuses_with_no_partial_output(tiny_runs, data, tmp_path, damage):
    name, target = damage(data, tmp_path)
    out = tmp_path / "pred"
    assert_clear_error(glioseg_in_process("predict", tiny_runs(0), target, "--out", out), name)
    assert not list(out.glob("*.nii.gz")) and not list(out.glob(".tmp-*"))


@pytest.mark.parametrize("damage", UNALIGNED, ids=lambda d: d.__name__)
def test_predict_never_preparing_refuses_sequences_on_different_grids(tiny_runs, data, tmp_path, damage):
    name, target = damage(data, tmp_path)
    out = tmp_path / "pred"
    result = glioseg_in_process("predict", tiny_runs(0), target, "--out", out, "--prepare", "never")
    assert_clear_error(result, name)
    assert "T1Gd" in result.stderr and not list(out.glob("*.nii.gz"))


BAD_PREDICT_OPTIONS = [
    (["--device", "gpu"], "--device"),
    (["--device", "cuda:3"], "--device"),
    (["--labels", "brats2019"], "--labels"),
    (["--window", "64,64"], "--window"),
    (["--overlap", "0.95"], "--overlap"),
    (["--engine", "tensorrt"], "--engine"),
    (["--min-component-ml", "-1"], "--min-component-ml"),
]


@pytest.mark.parametrize(("options", "named"), BAD_PREDICT_OPTIONS, ids=[" ".join(o) for o, _ in BAD_PREDICT_OPTIONS])
def test_predict_refuses_bad_options_before_writing_anything(tiny_runs, data, tmp_path, options, named):
    out = tmp_path / "pred"
    result = glioseg_in_process("predict", tiny_runs(0), data, "--out", out, *options)
    assert result.returncode == 2, (result.stdout, result.stderr)
    text = " ".join((result.stdout + result.stderr).split())
    assert named in text and "Traceback" not in text, text
    assert not out.exists()


def peak_memory_of(*args) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``glioseg ARGS`` and return its result and its peak resident memory in MB."""
    script = ("import resource, runpy, sys\nsys.argv = ['glioseg', *sys.argv[1:]]\ntry:\n"
              "    runpy.run_module('glioseg', run_name='__main__')\nfinally:\n"
              "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "    print('PEAK_KB', peak, file=sys.stderr)\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
    peak = next(int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_KB"))
    return result, peak / 1024


def test_small_files_claiming_gigabytes_are_refused_without_allocating(tiny_runs, data, tmp_path):
    """Four 2 MB files whose headers claim 800 x 800 x 780 voxels (7.4 GiB as the float32 case glioseg would build):
    refused from the header, with no more memory than predicting the real (small) case takes."""
    case = case_file(data, "flair").parent
    _, normal_mb = peak_memory_of("predict", tiny_runs(0), case, "--out", tmp_path / "normal")
    for suffix in ("flair", "t1", "t1ce", "t2"):
        header_claim(case / f"{case.name}_{suffix}.nii.gz", (800, 800, 780))
    result, peak_mb = peak_memory_of("predict", tiny_runs(0), case, "--out", tmp_path / "pred")
    assert_clear_error(result, f"{case.name}_flair.nii.gz")
    assert "voxels per volume" in result.stderr and peak_mb < normal_mb + 200, (peak_mb, normal_mb)


def test_a_lone_4d_image_in_any_folder_predicts_and_is_not_its_own_label(tiny_runs, cohort_factory, tmp_path):
    """An MSD-style 4D file outside any dataset (a download folder, say): segmented, with no label looked for beside
    it (it was once read as its own label)."""
    source = find_msd_image(cohort_factory)
    lone = tmp_path / "downloads" / "scan.nii.gz"
    lone.parent.mkdir()
    shutil.copy(source, lone)
    from glioseg.datasets.layouts import locate_case

    assert locate_case(lone).label is None
    result = glioseg_in_process("predict", tiny_runs(0), lone, "--out", tmp_path / "pred")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pred" / "scan.nii.gz").exists()


def find_msd_image(cohort_factory) -> Path:
    return sorted((cohort_factory("msd", cases=2, shape=PHANTOM_RUN_SHAPE) / "imagesTr").glob("*.nii.gz"))[0]


def test_predict_refuses_the_same_case_twice(tiny_runs, data, tmp_path):
    name, target = duplicate_ids(data, tmp_path)
    out = tmp_path / "pred"
    assert_clear_error(glioseg_in_process("predict", tiny_runs(0), target, target, "--out", out), name)
    assert no_outputs(out)


def test_corrupt_checkpoint(data, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    out = tmp_path / "pred"
    assert_clear_error(glioseg_in_process("predict", bad, data, "--out", out), "bad.pt")
    assert no_outputs(out)


def test_checkpoint_whose_config_does_not_match_its_weights(tiny_runs, data, tmp_path):
    state = torch.load(tiny_runs(0) / "last.pt", weights_only=False)
    state["config"]["model"]["width"] = 8
    torch.save(state, tmp_path / "mismatch.pt")
    out = tmp_path / "pred"
    assert_clear_error(glioseg_in_process("predict", tmp_path / "mismatch.pt", data, "--out", out), "mismatch.pt")
    assert no_outputs(out)


def test_output_folder_not_writable(tiny_runs, data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    result = glioseg_in_process("predict", tiny_runs(0), data, "--out", blocker / "pred")
    assert_clear_error(result, "pred")


def test_output_of_other_settings_is_kept_without_overwrite(tiny_runs, data, tmp_path):
    out = tmp_path / "pred"
    assert glioseg_in_process("predict", tiny_runs(0), data, "--out", out).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = glioseg_in_process("predict", tiny_runs(0), data, "--out", out, "--tta")
    assert_clear_error(again, "pred")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_non_ascii_and_space_paths_work(tiny_runs, data, tmp_path):
    odd = tmp_path / "données patient ü"
    shutil.copytree(data, odd)
    out = tmp_path / "prédictions avec espace"
    result = glioseg_in_process("predict", tiny_runs(0), odd, "--out", out)
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.nii.gz"))) == 2
    assert glioseg_in_process("check", odd).returncode == 0


# ---- evaluate ----------------------------------------------------------------------------------------------------


def test_evaluate_refuses_grids_that_differ(tiny_runs, data, tmp_path):
    predictions = tmp_path / "pred"
    assert glioseg_in_process("predict", tiny_runs(0), data, "--out", predictions).returncode == 0
    mask = sorted(predictions.glob("*.nii.gz"))[0]
    rewrite(mask, lambda a, m: (a[:-3], m))
    assert_clear_error(glioseg_in_process("evaluate", predictions, data, "--out", tmp_path / "m.csv"), mask.name)
    assert not (tmp_path / "m.csv").exists()


def test_evaluate_refuses_a_missing_prediction(tiny_runs, data, tmp_path):
    predictions = tmp_path / "pred"
    assert glioseg_in_process("predict", tiny_runs(0), data, "--out", predictions).returncode == 0
    missing = sorted(predictions.glob("*.nii.gz"))[1]
    missing.unlink()
    assert_clear_error(glioseg_in_process("evaluate", predictions, data, "--out", tmp_path / "m.csv"), missing.name)
    assert not (tmp_path / "m.csv").exists()


# ---- serve -------------------------------------------------------------------------------------------------------


def test_serve_refuses_a_missing_run_and_a_folder_without_predictions(tmp_path):
    assert_clear_error(glioseg_in_process("serve", tmp_path / "no-run.pt", "--port", "1"), "no-run.pt")
    assert_clear_error(glioseg_in_process("serve", "--predictions", tmp_path, "--port", "1"), tmp_path.name)
