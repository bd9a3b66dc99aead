"""Prediction with a tiny trained run: masks on the input's grid in every layout, conventions, TTA and
ensembles, resumable cohorts, volumes, the Python API."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import glioseg
from conftest import PHANTOM_RUN_SHAPE, assert_clear_error, glioseg_cli, glioseg_in_process, no_outputs
from glioseg.core.config import PostprocessConfig, PredictConfig
from glioseg.core.errors import InputError
from glioseg.core.labels import BRATS2021, BRATS2023, ENHANCING, MSD
from glioseg.datasets.cases import find_cases
from glioseg.datasets.layouts import LAYOUTS
from glioseg.inference.predict import load_model, predict_cohort

SHAPE = (40, 40, 32)


@pytest.fixture(scope="module")
def runs(tiny_runs):
    """Two tiny runs (folds 0 and 1) on a phantom cohort."""
    return [tiny_runs(0), tiny_runs(1)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_mask_keeps_the_inputs_grid_and_header_in_every_layout(runs, cohort_factory, tmp_path, layout):
    data = cohort_factory(layout, cases=2, shape=SHAPE)
    out = tmp_path / "pred"
    result = glioseg_cli("predict", runs[0], data, "--out", out)
    assert result.returncode == 0, result.stderr
    for files in find_cases(data):
        mask, source = nib.load(out / f"{files.case_id}.nii.gz"), nib.load(files.images[0])
        assert mask.shape == source.shape[:3]
        np.testing.assert_array_equal(mask.affine, source.affine)
        for key in ("qform_code", "sform_code", "xyzt_units"):
            assert mask.header[key] == source.header[key]
        values = set(np.unique(np.asarray(mask.dataobj)).tolist())
        assert values <= set(files.convention.file_to_internal)  # the input's own convention by default


@pytest.mark.parametrize("convention", [MSD, BRATS2021, BRATS2023])
def test_output_convention_round_trips(runs, cohort_factory, tmp_path, convention):
    data = cohort_factory("brats2021", cases=1, shape=SHAPE)
    model = load_model(runs[0], "cpu")
    case = glioseg.load_case(find_cases(data)[0])
    expected = model.predict(case).label
    predict_cohort(model, [data], tmp_path, PredictConfig(labels=convention.name), progress=False)
    written = np.asarray(nib.load(tmp_path / f"{case.case_id}.nii.gz").dataobj)
    np.testing.assert_array_equal(convention.to_internal(written), expected)


def test_tta_and_ensemble_keep_shapes_and_give_uncertainty(runs, cohort_factory):
    case = glioseg.load_case(find_cases(cohort_factory("msd", cases=1, shape=SHAPE))[0])
    single = load_model(runs[0], "cpu").predict(case, keep_probabilities=True)
    assert single.uncertainty is None and single.probabilities.shape == (3, *SHAPE)
    tta = load_model(runs[0], "cpu").predict(case, tta=True, keep_probabilities=True)
    ensemble = load_model(runs, "cpu").predict(case, tta=True, keep_probabilities=True)
    for prediction in (tta, ensemble):
        assert prediction.label.shape == SHAPE and prediction.label.dtype == np.uint8
        assert prediction.probabilities.shape == (3, *SHAPE) and prediction.uncertainty.shape == SHAPE
        assert prediction.uncertainty.max() > 0
    assert not np.allclose(ensemble.probabilities, tta.probabilities)  # the second fold counts


def test_interrupted_cohort_resumes_only_missing_cases(runs, cohort_factory, tmp_path):
    data = cohort_factory("brats2023", cases=6, shape=SHAPE)
    out = tmp_path / "pred"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "glioseg", "predict", str(runs[0]), str(data), "--out", str(out),
                                "--tta", "--save-probabilities"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def masks():  # the finished masks: a kill may leave a .tmp-...-000.nii.gz being written, which is no mask
        return [p for p in out.glob("*-000.nii.gz") if not p.name.startswith(".tmp-")]

    deadline = time.time() + 120
    while len(masks()) < 2 and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {p: p.stat().st_mtime_ns for p in masks()}
    assert 2 <= len(done) < 6
    for mask in done:  # every finished mask is whole
        assert np.asarray(nib.load(mask).dataobj).shape == SHAPE
    result = glioseg_cli("predict", runs[0], data, "--out", out, "--tta", "--save-probabilities")
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in done} == done  # not redone
    assert len(masks()) == 6
    assert not list(out.glob(".tmp-*")), "a half-written file was left behind"
    rows = (out / "volumes.csv").read_text().splitlines()
    assert rows[0].startswith("case_id,WT_ml,TC_ml,ET_ml") and len(rows) == 7


def test_other_settings_in_the_same_folder_need_overwrite(runs, cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=1, shape=SHAPE)
    assert glioseg_cli("predict", runs[0], data, "--out", tmp_path).returncode == 0
    refused = glioseg_cli("predict", runs[0], data, "--out", tmp_path, "--tta")
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert glioseg_cli("predict", runs[0], data, "--out", tmp_path, "--tta", "--overwrite").returncode == 0
    assert json.loads((tmp_path / "predict.json").read_text())["tta"] is True


def test_cleaning_thresholds_are_options_and_are_recorded(runs, cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=1, shape=SHAPE)
    case = glioseg.load_case(find_cases(data)[0])

    def predicted(name: str, *options) -> np.ndarray:
        assert glioseg_cli("predict", runs[0], data, "--out", tmp_path / name, *options).returncode == 0
        return np.asarray(nib.load(tmp_path / name / f"{case.case_id}.nii.gz").dataobj)

    keep_all = ("--min-component-ml", 0, "--min-component-fraction", 0)
    raw = MSD.to_internal(predicted("raw", *keep_all, "--min-enhancing-ml", 0))
    unclean = PostprocessConfig(min_component_ml=0, min_component_fraction=0, min_enhancing_ml=0)
    assert np.array_equal(raw, load_model(runs[0], "cpu").predict(case, postprocess=unclean).label)
    assert (raw == ENHANCING).any()
    no_enhancing = MSD.to_internal(predicted("no-enhancing", *keep_all, "--min-enhancing-ml", 1e6))
    assert np.array_equal(no_enhancing > 0, raw > 0) and not (no_enhancing == ENHANCING).any()
    assert not predicted("dropped", "--min-component-ml", 1e6).any()
    recorded = json.loads((tmp_path / "dropped" / "predict.json").read_text())["postprocess"]
    assert recorded == {"min_component_ml": 1e6, "min_component_fraction": 0.2, "min_enhancing_ml": 0.5}  # defaults
    refused = glioseg_cli("predict", runs[0], data, "--out", tmp_path / "refused", "--min-enhancing-ml", -1)
    assert refused.returncode == 2 and "--min-enhancing-ml" in refused.stderr


def test_volumes_match_the_mask(runs, cohort_factory):
    case = glioseg.load_case(find_cases(cohort_factory("msd", cases=1, shape=SHAPE))[0])
    prediction = load_model(runs[0], "cpu").predict(case)
    voxel_ml = np.prod(case.spacing) / 1000
    assert prediction.volumes_ml["WT"] == pytest.approx((prediction.label > 0).sum() * voxel_ml)


def test_python_api(runs, cohort_factory):
    case = glioseg.load_case(find_cases(cohort_factory("msd", cases=1, shape=SHAPE))[0])
    model = glioseg.load_model(runs[0], device="cpu")
    prediction = model.predict(case)
    table = glioseg.sens_spec_table(prediction, case.label)
    assert list(table.index) == ["edema", "core", "enhancing"]
    assert list(table.columns) == ["sensitivity", "specificity", "dice"]
    assert ((table["specificity"] >= 0) & (table["specificity"] <= 1)).all()
    figure = glioseg.plot_overlay(case, prediction, loc=(20, 20, 16))
    assert len(figure.axes) == 6 and "prediction, axial" in [ax.get_title() for ax in figure.axes]
    assert "voxel (20, 20, 16)" in figure._suptitle.get_text()


def test_mismatched_or_corrupt_runs_are_refused(runs, tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{}")
    (corrupt / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="unreadable checkpoint"):
        load_model(corrupt, "cpu")
    import torch

    state = torch.load(runs[0] / "best.pt", weights_only=False)
    state["config"]["model"]["width"] = 8
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(InputError, match="weights do not fit"):
        load_model(tmp_path / "wrong.pt", "cpu")


def test_predicts_real_brats2018_case_in_its_own_convention(runs, brats2018_sample, tmp_path):
    case_dir = sorted(brats2018_sample.iterdir())[0]
    # one window over the brain: the tiny run's 16^3 patch would take thousands of windows on a full-size case
    result = glioseg_cli("predict", runs[0], case_dir, "--out", tmp_path, "--window", "whole")
    assert result.returncode == 0, result.stderr
    mask = nib.load(tmp_path / f"{case_dir.name}.nii.gz")
    source = nib.load(next(case_dir.glob("*_flair.nii.gz")))
    assert mask.shape == (240, 240, 155) and np.array_equal(mask.affine, source.affine)
    assert set(np.unique(np.asarray(mask.dataobj)).tolist()) <= {0, 1, 2, 4}


def test_cohort_sharded_across_two_processes(runs, cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=3, shape=SHAPE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "glioseg",
         "predict", str(runs[0]), str(data), "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("BRATS_*.nii.gz")) == [f"BRATS_00{i}.nii.gz" for i in (1, 2, 3)]
    assert len((tmp_path / "volumes.csv").read_text().splitlines()) == 4


def test_exported_weights_predict_like_their_run(runs, cohort_factory, tmp_path):
    exported = tmp_path / "model.pt"
    result = glioseg_cli("export", runs[0], "--out", exported)
    assert result.returncode == 0, result.stderr
    assert exported.stat().st_size < (runs[0] / "best.pt").stat().st_size / 2  # no optimiser state
    case = glioseg.load_case(find_cases(cohort_factory("msd", cases=1, shape=SHAPE))[0])
    np.testing.assert_array_equal(load_model(exported, "cpu").predict(case).label,
                                  load_model(runs[0], "cpu").predict(case).label)  # fmt: skip
    half = tmp_path / "half.pt"
    assert glioseg_cli("export", runs[0], "--out", half, "--half").returncode == 0
    assert half.stat().st_size < exported.stat().st_size * 0.6
    full = load_model(exported, "cpu").predict(case, keep_probabilities=True)
    rounded = load_model(half, "cpu").predict(case, keep_probabilities=True)
    assert float((full.probabilities - rounded.probabilities).abs().max()) < 0.01
    assert (full.label == rounded.label).mean() > 0.999


def test_without_a_run_the_shipped_model_is_used_or_its_absence_explained(monkeypatch, tmp_path):
    import glioseg.inference.predict

    monkeypatch.setattr(glioseg.inference.predict, "SHIPPED_MODELS", (tmp_path / "missing.pt",))
    with pytest.raises(InputError, match="shipped model is missing"):
        load_model()


def test_onnx_engine_predicts_like_torch(runs, cohort_factory, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install 'glioseg[onnx]'")
    exported = tmp_path / "model.pt"
    result = glioseg_cli("export", runs[0], "--out", exported, "--onnx")
    assert result.returncode == 0, result.stderr
    assert exported.with_suffix(".onnx").stat().st_size > 0
    case = glioseg.load_case(find_cases(cohort_factory("msd", cases=1, shape=SHAPE))[0])
    torch_label = load_model(exported, "cpu").predict(case).label
    onnx_label = load_model(exported, "cpu", engine="onnx").predict(case).label
    assert (torch_label == onnx_label).mean() > 0.999
    out = tmp_path / "pred"
    assert glioseg_cli("predict", exported, case.files.images[0], "--out", out, "--engine", "onnx").returncode == 0
    missing = glioseg_cli("predict", runs[0], case.files.images[0], "--out", tmp_path / "p2", "--engine", "onnx")
    assert missing.returncode == 2 and "no ONNX export" in missing.stderr


def test_window_sizes_round_up_to_the_networks_divisor(runs, cohort_factory, tmp_path):
    model = load_model(runs[0], "cpu")  # depth 3: sizes are multiples of 4
    assert model.window_size((37, 40, 29), None) == model.config.train.patch
    assert model.window_size((37, 40, 29), "whole") == (40, 40, 32)
    assert model.window_size((37, 40, 29), (17, 16, 16)) == (20, 16, 16)
    data = cohort_factory("msd", cases=1, shape=SHAPE)
    out = tmp_path / "pred"
    result = glioseg_cli("predict", runs[0], data, "--out", out, "--window", "whole")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "predict.json").read_text())["window"] == "whole"
    assert glioseg_cli("predict", runs[0], data, "--out", tmp_path / "x", "--window", "big").returncode == 2


def test_overwrite_removes_extras_the_new_settings_do_not_write(tiny_runs, cohort_factory, tmp_path):
    """TTA wrote an uncertainty map, --save-probabilities the probabilities; predicting again with --overwrite and
    neither leaves no stale file beside the new masks."""
    data = cohort_factory("brats2021", cases=2, seed=3, shape=PHANTOM_RUN_SHAPE)
    out = tmp_path / "pred"
    first = glioseg_cli("predict", tiny_runs(0), data, "--out", out, "--tta", "--save-probabilities")
    assert first.returncode == 0, first.stderr
    assert len(list(out.glob("*_uncertainty.nii.gz"))) == 2 and len(list(out.glob("*_probabilities.nii.gz"))) == 2
    again = glioseg_cli("predict", tiny_runs(0), data, "--out", out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert not list(out.glob("*_uncertainty.nii.gz")) and not list(out.glob("*_probabilities.nii.gz"))
    assert len(list(out.glob("*.nii.gz"))) == 2


def test_cases_predicted_one_call_at_a_time_into_one_folder_are_all_listed(runs, cohort_factory, tmp_path):
    """What a DICOM node does (a study at a time): every call's cases stay in volumes.csv, lesions.csv, cases.json."""
    cases = find_cases(cohort_factory("brats2021", cases=3, shape=SHAPE))
    model, out = load_model(runs[:1], "cpu"), tmp_path / "pred"
    for files in cases:
        predict_cohort(model, [files.images[0].parent], out, PredictConfig(), progress=False)
    (out / f"{cases[1].case_id}.nii.gz").unlink()  # a mask removed by hand is no longer listed
    predict_cohort(model, [cases[2].images[0].parent], out, PredictConfig(), progress=False)
    expected = [cases[0].case_id, cases[2].case_id]
    volumes = (out / "volumes.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in volumes] == expected
    assert [entry["case_id"] for entry in json.loads((out / "cases.json").read_text())] == expected
    lesion_cases = {row.split(",")[0] for row in (out / "lesions.csv").read_text().splitlines()[1:]}
    assert lesion_cases <= set(expected) and cases[0].case_id in lesion_cases


def test_without_segments_as_if_the_sequences_were_missing(runs, cohort_factory, tmp_path):
    case = glioseg.load_case(find_cases(cohort_factory("msd", cases=1, shape=SHAPE))[0])
    model = load_model(runs[0], "cpu")
    blanked = glioseg.load_case(case.files)
    blanked.image[[1, 0]] = 0  # T1 and FLAIR
    without = model.predict(case, without=("FLAIR", "T1"), keep_probabilities=True)
    np.testing.assert_array_equal(without.label, model.predict(blanked).label)
    assert float((without.probabilities - model.predict(case, keep_probabilities=True).probabilities).abs().max()) > 0
    assert case.image[0].any() and case.image[1].any()  # the caller's case is left whole
    out = tmp_path / "pred"
    result = glioseg_cli("predict", runs[0], *case.files.images, "--out", out, "--without", "t1,flair")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "predict.json").read_text())["without"] == ["FLAIR", "T1"]
    refused = glioseg_cli("predict", runs[0], *case.files.images, "--out", tmp_path / "p2", "--without", "DWI")
    assert refused.returncode == 2 and "DWI: not a sequence" in " ".join(refused.stderr.split())
    assert not (tmp_path / "p2").exists()


def test_a_case_lacking_a_sequence_is_segmented_without_it_and_says_so(runs, cohort_factory, tmp_path):
    source = cohort_factory("brats2021", cases=2, shape=SHAPE)
    data = Path(shutil.copytree(source, tmp_path / "data"))
    lacking = sorted(p for p in data.iterdir() if p.is_dir())[0]
    (lacking / f"{lacking.name}_t1ce.nii.gz").unlink()
    model_folder = tmp_path / "recipe"  # a model's measurements lie beside its runs (missing-sequences.csv)
    shutil.copytree(runs[0], model_folder / "fold0")
    (model_folder / "missing-sequences.csv").write_text(
        "without,region,dice\nnone,WT,0.9\nnone,TC,0.8\nnone,ET,0.7\nT1Gd,WT,0.8\nT1Gd,TC,0.1\nT1Gd,ET,0.05\n"
    )
    out = tmp_path / "pred"
    result = glioseg_in_process("predict", model_folder / "fold0", data, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = " ".join((result.stdout + result.stderr).split())
    assert (f"sequence missing: {lacking.name}: no T1Gd, segmented from FLAIR, T1, T2; cross-validated Dice without "
            "T1Gd: WT 0.80 (all four 0.90) TC 0.10 (all four 0.80) ET 0.05 (all four 0.70); TC, ET unreliable"
            ) in printed  # fmt: skip
    entries = {entry["case_id"]: entry for entry in json.loads((out / "cases.json").read_text())}
    assert entries[lacking.name]["sequences"] == ["FLAIR", "T1", "T2"] and entries[lacking.name]["absent"] == ["T1Gd"]
    assert entries[lacking.name]["unreliable"] == ["TC", "ET"] and entries[lacking.name]["review_advised"]
    assert [e["absent"] for name, e in entries.items() if name != lacking.name] == [[]]
    tables = {}
    for table in ("quality.csv", "volumes.csv"):  # the volumes of the regions not to trust say so
        with open(out / table) as stream:
            tables[table] = {row["case_id"]: row for row in csv.DictReader(stream)}
        assert [row["unreliable"] for row in tables[table].values()] == ["TC ET", ""], table
    assert tables["quality.csv"][lacking.name]["absent"] == "T1Gd"
    model = load_model(model_folder / "fold0", "cpu")
    whole = glioseg.load_case(source / lacking.name)
    expected = model.predict(whole, without=("T1Gd",)).label  # the same as the complete case with its T1Gd zeroed
    written = BRATS2021.to_internal(np.asarray(nib.load(out / f"{lacking.name}.nii.gz").dataobj))
    np.testing.assert_array_equal(written, expected)
    report = tmp_path / "report.html"
    assert glioseg_in_process("report", out, "--out", report).returncode == 0
    assert "segmented without T1Gd (the case lacks it): TC, ET unreliable" in report.read_text()
    refused = glioseg_in_process("predict", runs[0], lacking, "--out", tmp_path / "strict", "--require-all")
    assert_clear_error(refused, f"{lacking.name}_t1ce.nii.gz")
    assert no_outputs(tmp_path / "strict")
    unmeasured = glioseg_in_process("predict", runs[0], lacking, "--out", tmp_path / "p3")
    said = " ".join((unmeasured.stdout + unmeasured.stderr).split())
    assert "accuracy without T1Gd was not measured; WT, TC, ET unreliable" in said
