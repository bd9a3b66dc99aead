import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from glioseg.datasets.check import check_dataset
from glioseg.datasets.layouts import LAYOUTS


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glioseg", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_generated_data_passes(cohort_factory, layout):
    cases, problems = check_dataset(cohort_factory(layout))
    assert (len(cases), problems) == (3, [])


@pytest.fixture
def damaged(cohort_factory, tmp_path):
    """A copy of a cohort with one modality removed, one label value changed and one file truncated."""
    copy = tmp_path / "damaged"
    shutil.copytree(cohort_factory("brats2021", cases=4), copy)
    (copy / "BraTS2021_00001" / "BraTS2021_00001_t1ce.nii.gz").unlink()
    seg_path = copy / "BraTS2021_00002" / "BraTS2021_00002_seg.nii.gz"
    seg = nib.load(seg_path)
    values = np.asarray(seg.dataobj).copy()
    values[values == 4] = 3  # a BraTS 2023 value in a BraTS 2021 dataset
    nib.save(nib.Nifti1Image(values, seg.affine, seg.header), seg_path)
    flair = copy / "BraTS2021_00003" / "BraTS2021_00003_flair.nii.gz"
    flair.write_bytes(flair.read_bytes()[: flair.stat().st_size // 2])
    return copy


def test_damaged_copy_lists_each_problem(damaged):
    cases, problems = check_dataset(damaged)
    assert len(cases) == 3  # the case missing T1ce is not a usable case
    by_case = {p.case_id: p for p in problems}
    assert set(by_case) == {"BraTS2021_00001", "BraTS2021_00002", "BraTS2021_00003"}
    assert "T1Gd image missing" in by_case["BraTS2021_00001"].problem
    assert by_case["BraTS2021_00001"].path.name == "BraTS2021_00001_t1ce.nii.gz"
    assert "[3]" in by_case["BraTS2021_00002"].problem and "brats2021" in by_case["BraTS2021_00002"].problem
    assert by_case["BraTS2021_00002"].path.name.endswith("_seg.nii.gz")
    assert "truncated" in by_case["BraTS2021_00003"].problem
    assert all(p.fix for p in problems)


def test_check_command_fails_on_damaged_copy_and_names_files(damaged):
    result = run_cli("check", damaged)
    assert result.returncode == 1
    output = result.stdout.replace("\n", "")
    for text in ("BraTS2021_00001_t1ce", "BraTS2021_00002_seg", "truncated", "3 problems"):
        assert text in output


def test_check_command_passes_generated_data(cohort_factory):
    result = run_cli("check", cohort_factory("msd"))
    assert result.returncode == 0, result.stderr
    assert "3 cases" in result.stderr and "no problems" in result.stderr


def test_duplicate_case_ids_and_nan_and_empty_modality(cohort_factory, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cohort_factory("nnunet"), copy)
    first = copy / "imagesTr" / "BraTS_00001_0001.nii.gz"
    image = nib.load(first)
    data = image.get_fdata(dtype=np.float32)
    data[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, image.affine, image.header), first)
    second = copy / "imagesTr" / "BraTS_00002_0002.nii.gz"
    image = nib.load(second)
    nib.save(nib.Nifti1Image(np.zeros(image.shape, np.int16), image.affine, image.header), second)
    _, problems = check_dataset(copy)
    messages = {p.case_id: p.problem for p in problems}
    assert "NaN or Inf" in messages["BraTS_00001"]
    assert "T1Gd image is all zero" in messages["BraTS_00002"]


def test_duplicate_case_ids_across_train_and_test(cohort_factory, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cohort_factory("msd"), copy)
    (copy / "imagesTs").mkdir()
    shutil.copy(copy / "imagesTr" / "BRATS_001.nii.gz", copy / "imagesTs" / "BRATS_001.nii.gz")
    _, problems = check_dataset(copy)
    assert any("appears 2 times" in p.problem for p in problems)


def test_gzip_that_is_not_nifti(cohort_factory, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cohort_factory("brats2023"), copy)
    target = copy / "BraTS-GLI-00002-000" / "BraTS-GLI-00002-000-t2w.nii.gz"
    target.write_bytes(gzip.compress(b"not an image at all"))
    _, problems = check_dataset(copy)
    assert problems and problems[0].path == target


def test_real_sample_passes_check(brats2018_sample):
    result = run_cli("check", brats2018_sample)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 cases" in result.stderr


def renumbered_2023_dataset(cohort_factory, tmp_path) -> Path:
    """BraTS 2023-named cases whose labels use the 2018 numbering (4 enhancing), as a converted copy can be."""
    copy = tmp_path / "renumbered"
    shutil.copytree(cohort_factory("brats2023", cases=3), copy)
    for seg_path in copy.glob("*/*-seg.nii.gz"):
        seg = nib.load(seg_path)
        values = np.asarray(seg.dataobj).copy()
        nib.save(nib.Nifti1Image(np.where(values == 3, 4, values).astype(np.uint8), seg.affine), seg_path)
    return copy


def test_brats2023_names_with_2018_numbering_are_refused_naming_the_override(cohort_factory, tmp_path):
    data = renumbered_2023_dataset(cohort_factory, tmp_path)
    result = run_cli("check", data)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "numbered the BraTS 2018-2021 way" in output and "3 of 3" in output
    assert "--label-convention brats2021" in output
    trained = run_cli("train", data, "--out", tmp_path / "run", "--cache", tmp_path / "cache", "--folds", "2")
    assert trained.returncode == 2 and "--label-convention" in trained.stderr and not (tmp_path / "run").exists()
    read = run_cli("check", data, "--label-convention", "brats2021")
    assert read.returncode == 0, read.stdout + read.stderr
    assert "read as brats2021: 1 core, 2 edema, 4 enhancing" in " ".join(read.stderr.split())
    from glioseg.datasets.cases import find_cases, read_case

    original = [read_case(f).label for f in find_cases(cohort_factory("brats2023", cases=3))]
    overridden = [read_case(f).label for f in find_cases(data, "brats2021")]
    for expected, label in zip(original, overridden):
        np.testing.assert_array_equal(label, expected)  # 4 read as enhancing tumour, not as a cavity


def test_a_post_treatment_case_with_a_cavity_and_no_enhancing_tumour_is_read_as_such(cohort_factory, tmp_path):
    """One BraTS 2024 case with a resection cavity (4) and no enhancing tumour among cases with 3: no refusal."""
    copy = tmp_path / "post"
    shutil.copytree(cohort_factory("brats2023", cases=3), copy)
    seg_path = sorted(copy.glob("*/*-seg.nii.gz"))[0]
    seg = nib.load(seg_path)
    values = np.asarray(seg.dataobj).copy()
    nib.save(nib.Nifti1Image(np.where(values == 3, 4, values).astype(np.uint8), seg.affine), seg_path)
    result = run_cli("check", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "read as brats2023: 1 core, 2 edema, 3 enhancing, 4 resection cavity" in " ".join(result.stderr.split())


def test_dataset_json_that_would_make_edema_core_is_read_right(cohort_factory, tmp_path):
    """The BraTS 2023 names in an nnU-Net dataset.json: SNFH is edema (it says non-enhancing, and is not core)."""
    import json

    copy = tmp_path / "nnunet"
    shutil.copytree(cohort_factory("nnunet", cases=3), copy)
    meta = json.loads((copy / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "surrounding non-enhancing FLAIR hyperintensity": 1,
                      "non-enhancing tumor core": 2, "enhancing tumor": 3}  # fmt: skip
    (copy / "dataset.json").write_text(json.dumps(meta))
    result = run_cli("check", copy)
    assert result.returncode == 0 and "read as nnunet: 1 edema, 2 core, 3 enhancing" in " ".join(result.stderr.split())
    meta["labels"] = {"background": 0, "edema": 1, "peritumoral edema": 2, "enhancing tumor": 3}
    (copy / "dataset.json").write_text(json.dumps(meta))
    refused = run_cli("check", copy)
    assert refused.returncode == 2 and "both mean edema" in refused.stderr and "dataset.json" in refused.stderr
