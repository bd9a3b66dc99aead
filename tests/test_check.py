import gzip
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from glioseg.check import check_dataset
from glioseg.layouts import LAYOUTS


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
