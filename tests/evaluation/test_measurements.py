"""Per-lesion measurements (glioseg.evaluation.measurements): diameters of known shapes, any orientation, real
labels."""

import csv

import nibabel as nib
import numpy as np
import pytest

from glioseg.core.labels import EDEMA, ENHANCING
from glioseg.datasets.cases import find_cases, read_case
from glioseg.evaluation.measurements import measure_lesions
from glioseg.evaluation.metrics import volumes_ml


def ellipsoid(shape, centre, semi_axes):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((axis - c) / a) ** 2 for axis, c, a in zip(grid, centre, semi_axes)) <= 1


def tumour(shape=(80, 80, 60)):
    """Edema around an enhancing ellipsoid of 30 x 12 x 10 mm (semi-axes 15, 6, 5 voxels at 1 mm), and a small
    enhancing focus of 6 mm elsewhere."""
    label = np.zeros(shape, np.uint8)
    label[ellipsoid(shape, (30, 30, 30), (20, 10, 9))] = EDEMA
    label[ellipsoid(shape, (30, 30, 30), (15, 6, 5))] = ENHANCING
    label[ellipsoid(shape, (65, 65, 30), (3, 3, 3))] = ENHANCING
    return label


def test_rano_diameters_of_an_ellipsoid_and_a_small_focus():
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    rows = measure_lesions(tumour(), affine)
    enhancing = [r for r in rows if r["kind"] == "enhancing"]
    assert [r["lesion"] for r in enhancing] == [1, 2]  # the largest first
    big, small = enhancing
    assert big["longest_diameter_mm"] == pytest.approx(30, abs=1.5)
    assert big["perpendicular_diameter_mm"] == pytest.approx(12, abs=1.5)
    assert big["product_mm2"] == pytest.approx(big["longest_diameter_mm"] * big["perpendicular_diameter_mm"], abs=0.1)
    assert big["measurable"] and not small["measurable"]  # 6 mm < 10 mm
    assert big["axial_slice"] == 30 and (big["centroid_i"], big["centroid_j"], big["centroid_k"]) == (30, 30, 30)
    assert big["volume_ml"] == pytest.approx(4 / 3 * np.pi * 15 * 6 * 5 / 1000, rel=0.05)
    whole = [r for r in rows if r["kind"] == "tumour"]
    assert len(whole) == 2 and whole[0]["edema_ml"] > 0 and whole[0]["enhancing_ml"] == big["volume_ml"]


def test_measured_in_the_patients_axial_plane_whatever_the_voxel_order():
    """The same tumour stored with voxel axis 0 inferior-superior gives the same diameters and scanner centroid;
    at 0.5 mm in-plane, the same diameters within a voxel."""
    label = tumour()
    reference = measure_lesions(label, np.eye(4))[2]  # the big enhancing lesion
    # voxel axes (k, i, j) -> scanner (z, x, y): a permuted grid, the same anatomy
    permuted = np.transpose(label, (2, 0, 1))
    affine = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    moved = measure_lesions(permuted, affine)[2]
    for key in ("longest_diameter_mm", "perpendicular_diameter_mm", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
                "volume_ml"):  # fmt: skip
        assert moved[key] == pytest.approx(reference[key]), key
    fine = measure_lesions(np.repeat(np.repeat(label, 2, 0), 2, 1), np.diag([0.5, 0.5, 1.0, 1.0]))[2]
    assert fine["longest_diameter_mm"] == pytest.approx(reference["longest_diameter_mm"], abs=1.0)


def test_real_labels_lesion_volumes_add_up(brats2018_sample):
    files = find_cases(brats2018_sample)[0]
    label = read_case(files).label
    rows = measure_lesions(label, nib.load(files.label).affine)
    volumes = volumes_ml(label, (1.0, 1.0, 1.0))
    for kind, region in (("tumour", "WT"), ("enhancing", "ET")):
        assert sum(r["volume_ml"] for r in rows if r["kind"] == kind) == pytest.approx(volumes[region], abs=0.01)
    largest = rows[0]
    assert largest["kind"] == "tumour" and largest["measurable"] and 20 < largest["longest_diameter_mm"] < 150


def test_prediction_folders_have_lesions_csv(brats2018_sample, tmp_path):
    """`write_measurements` beside volumes.csv: the expert labels written as 'predictions'."""
    from glioseg.core.config import PredictConfig
    from glioseg.inference.predict import write_measurements

    cases = find_cases(brats2018_sample)[:2]
    for files in cases:
        (tmp_path / f"{files.case_id}.nii.gz").write_bytes(files.label.read_bytes())
    volumes, lesions = write_measurements(tmp_path, cases, PredictConfig())
    rows = list(csv.DictReader(open(lesions)))
    assert {r["case_id"] for r in rows} == {c.case_id for c in cases}
    assert {r["kind"] for r in rows} == {"tumour", "enhancing"} and volumes.exists()
