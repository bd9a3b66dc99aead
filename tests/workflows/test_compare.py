"""`glioseg compare`: pairs made from a real case with known changes (grown, a lesion added, moved and rotated)."""

import csv
import json
import re

import nibabel as nib
import numpy as np
import pytest

from conftest import PHANTOM_RUN_SHAPE, glioseg_cli
from glioseg.core.config import FollowupConfig
from glioseg.datasets.cases import find_cases, read_case
from glioseg.workflows.followup import write_followup

MOTION = {"rotation_degrees": (8.0, -5.0, 6.0), "translation_mm": (10.0, -6.0, 5.0)}


def total_angle(degrees) -> float:
    """The rotation angle of an ITK Euler3D rotation (Z @ X @ Y, ComputeZYX off) with these angles."""
    x, y, z = np.radians(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    return float(np.degrees(np.arccos((np.trace(rz @ rx @ ry) - 1) / 2)))


def dice(a, b) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def real_case(brats2018_sample):
    return find_cases(brats2018_sample)[2]


def test_growth_a_new_lesion_and_the_motion_are_found(real_case, tmp_path):
    changes = FollowupConfig(grow_voxels=2, new_lesion_radius_mm=7, **MOTION)
    record = write_followup(real_case.images[0].parent, tmp_path / "later", changes)
    unmoved = FollowupConfig(
        grow_voxels=2, new_lesion_radius_mm=7, rotation_degrees=(0, 0, 0), translation_mm=(0, 0, 0)
    )
    write_followup(real_case.images[0].parent, tmp_path / "unmoved", unmoved)
    followup = tmp_path / "later" / record["case"]
    out = tmp_path / "change"
    result = glioseg_cli("compare", real_case.images[0].parent, followup, "--out", out, "--baseline-mask",
                         real_case.label, "--followup-mask", next(followup.glob("*_seg.nii.gz")))  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = " ".join(result.stdout.split())  # the console wraps lines
    assert "flags: progression candidate" in printed and "Research use only" in printed
    summary = json.loads((out / "compare.json").read_text())
    motion = summary["registration"]
    assert motion["rotation_degrees"] == pytest.approx(total_angle(MOTION["rotation_degrees"]), abs=1.0)
    assert motion["translation_mm"] == pytest.approx(np.linalg.norm(MOTION["translation_mm"]), abs=1.5)
    regions = {r["region"]: r for r in csv.DictReader(open(out / "regions.csv"))}
    for region in ("WT", "TC", "ET"):  # the follow-up's volume, measured on its own grid, is the one made
        assert float(regions[region]["followup_ml"]) == pytest.approx(record["volumes_ml"][region], rel=0.02)
    assert float(regions["WT"]["change_ml"]) > 5
    lesions = list(csv.DictReader(open(out / "lesions.csv")))
    new = [r for r in lesions if r["status"] == "new" and r["kind"] == "enhancing"]
    assert len(new) == 1 and new[0]["measurable"] == "True"
    assert float(new[0]["followup_ml"]) == pytest.approx(4 / 3 * np.pi * 7**3 / 1000, rel=0.15)
    assert summary["sum_of_products"]["new_measurable_enhancing_lesions"] == 1
    registered = np.asarray(nib.load(out / "followup_mask_in_baseline.nii.gz").dataobj) > 0
    truth = np.asarray(nib.load(next((tmp_path / "unmoved").glob("*/*_seg.nii.gz"))).dataobj) > 0
    assert dice(registered, truth) > 0.95  # registration undid the motion
    page = (out / "compare.html").read_text()
    assert "Research use only" in page and "progression candidate" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and (out / "compare.png").stat().st_size > 10_000


def test_the_same_tumour_moved_is_stable(real_case, tmp_path):
    record = write_followup(
        real_case.images[0].parent, tmp_path, FollowupConfig(grow_voxels=0, new_lesion_radius_mm=0, **MOTION)
    )
    followup = tmp_path / record["case"]
    out = tmp_path / "change"
    result = glioseg_cli("compare", real_case.images[0].parent, followup, "--out", out, "--baseline-mask",
                         real_case.label, "--followup-mask", next(followup.glob("*_seg.nii.gz")))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "compare.json").read_text())
    assert summary["flags"] == ["stable"]
    for region in summary["regions"]:
        assert abs(region["change_percent"]) < 2, region
    assert abs(summary["sum_of_products"]["change_percent"]) < 10
    for lesion in summary["lesions"]:  # specks may vanish in resampling; every real lesion is found again
        if max(lesion["baseline_ml"], lesion["followup_ml"]) >= 0.1:
            assert lesion["status"] == "matched", lesion


def test_predicted_when_no_mask_is_given(tiny_runs, cohort_factory, tmp_path):
    """Phantom time points segmented by a run: its masks are written beside the comparison."""
    case = find_cases(cohort_factory("brats2021", cases=1, seed=3, shape=PHANTOM_RUN_SHAPE))[0]
    changes = FollowupConfig(
        grow_voxels=1, new_lesion_radius_mm=0, rotation_degrees=(0, 0, 5), translation_mm=(2, 0, 0)
    )
    record = write_followup(case.images[0].parent, tmp_path / "later", changes)
    out = tmp_path / "change"
    result = glioseg_cli("compare", case.images[0].parent, tmp_path / "later" / record["case"], "--out", out,
                         "--run", tiny_runs(0), "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("baseline_mask.nii.gz", "followup_mask.nii.gz", "followup_mask_in_baseline.nii.gz", "compare.html"):
        assert (out / name).exists(), name
    assert np.asarray(nib.load(out / "baseline_mask.nii.gz").dataobj).shape == read_case(case).image.shape[1:]


def test_a_mask_off_its_cases_grid_is_a_clear_error(real_case, brats2018_sample, tmp_path):
    other = find_cases(brats2018_sample)[3]
    cropped = tmp_path / "cropped_seg.nii.gz"
    image = nib.load(other.label)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:, :, :-5], image.affine), cropped)
    out = tmp_path / "change"
    result = glioseg_cli("compare", real_case.images[0].parent, other.images[0].parent, "--out", out,
                         "--baseline-mask", real_case.label, "--followup-mask", cropped)  # fmt: skip
    assert result.returncode == 2 and "cropped_seg.nii.gz" in result.stderr and "grid" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_an_image_given_as_a_mask_or_a_file_as_out_is_a_clear_error(real_case, tmp_path):
    folder = real_case.images[0].parent
    image_as_mask = glioseg_cli("compare", folder, folder, "--out", tmp_path / "c", "--baseline-mask",
                                real_case.images[0], "--followup-mask", real_case.label)  # fmt: skip
    assert image_as_mask.returncode == 2 and "an image rather than a label map?" in image_as_mask.stderr
    assert len(image_as_mask.stderr) < 600 and not (tmp_path / "c").exists()
    (tmp_path / "afile").write_text("")
    result = glioseg_cli("compare", folder, folder, "--out", tmp_path / "afile", "--baseline-mask", real_case.label,
                         "--followup-mask", real_case.label)  # fmt: skip
    assert result.returncode == 2 and "is not a folder" in result.stderr and "Traceback" not in result.stderr


def test_a_followup_of_an_unlabelled_case_is_refused(brats2023_sample, tmp_path):
    case = find_cases(brats2023_sample)[0]
    result = glioseg_cli("synth-followup", case.images[0].parent, tmp_path / "later")
    assert result.returncode == 2 and "has no label" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "later").exists()
