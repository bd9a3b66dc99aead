"""The one decision of what an input is (predict and the viewer both call it): BraTS-ready, or raw scans to prepare."""

import shutil

import nibabel as nib
import numpy as np
import pytest

from glioseg.core.errors import InputError
from glioseg.datasets.cases import Case
from glioseg.inference.inputs import RawInput, inputs_of, read_or_raw


@pytest.fixture()
def case_folder(cohort_factory, tmp_path):
    """A copy of a tiny BraTS 2021 phantom case (skull-stripped, four files on one grid)."""
    source = sorted(p for p in cohort_factory("brats2021", cases=1).iterdir() if p.is_dir())[0]
    return shutil.copytree(source, tmp_path / source.name)


def test_a_brats_ready_case_is_read_as_it_is(case_folder):
    for mode in ("auto", "never"):
        [files] = inputs_of([case_folder], mode)
        assert not isinstance(files, RawInput)
        assert isinstance(read_or_raw(files, mode), Case)


def test_sequences_on_different_grids_are_raw_from_the_headers(case_folder):
    flair = next(case_folder.glob("*_flair.nii.gz"))
    image = nib.load(flair)
    moved = image.affine.copy()
    moved[:3, 3] += 7.0
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), moved), flair)
    [found] = inputs_of([case_folder], "auto")
    assert isinstance(found, RawInput) and flair.name in found.reason and found.nifti["FLAIR"] == flair
    with pytest.raises(InputError, match="T1Gd's grid") as refused:
        inputs_of([case_folder], "never")
    assert refused.value.path == flair


def test_a_head_is_raw_once_read_under_auto_only(case_folder):
    t1gd = next(case_folder.glob("*_t1ce.nii.gz"))
    image = nib.load(t1gd)
    head = np.asarray(image.dataobj) + 1  # every voxel non-zero: the whole field of view, far more than a brain
    nib.save(nib.Nifti1Image(head, image.affine, image.header), t1gd)
    [files] = inputs_of([case_folder], "auto")
    found = read_or_raw(files, "auto")
    assert isinstance(found, RawInput) and "a head" in found.reason
    assert isinstance(read_or_raw(files, "never"), Case)


def test_always_prepares_case_folders_and_refuses_a_4d_file(case_folder, cohort_factory):
    [found] = inputs_of([case_folder], "always")
    assert isinstance(found, RawInput) and found.reason == "--prepare always"
    msd_image = sorted((cohort_factory("msd", cases=1) / "imagesTr").iterdir())[0]
    with pytest.raises(InputError, match="nothing to prepare"):
        inputs_of([msd_image], "always")


def test_a_dicom_study_is_raw_and_refused_under_never(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)  # what marks a Part 10 file
    [found] = inputs_of([study], "auto")
    assert isinstance(found, RawInput) and found.nifti is None and found.case_id == "study"
    with pytest.raises(InputError, match="must be prepared"):
        inputs_of([study], "never")


def test_a_dataset_folder_is_one_case_only_where_datasets_are_taken(cohort_factory):
    dataset = cohort_factory("brats2021", cases=2)
    assert [c.case_id for c in inputs_of([dataset], "auto")] == ["BraTS2021_00001", "BraTS2021_00002"]
    with pytest.raises(InputError):
        inputs_of([dataset], "auto", datasets=False)  # the viewer: an upload is one case
    with pytest.raises(InputError, match="more than once"):
        inputs_of([dataset, dataset / "BraTS2021_00001"], "auto")
