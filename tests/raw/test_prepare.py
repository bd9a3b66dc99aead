"""`glioseg prepare`: a real case made raw the way scanners differ (known motions, anisotropic and permuted grids)
comes back aligned; brain extraction on a real head with skull; bad input refused with nothing written."""

import json
import shutil
import tarfile

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import glioseg_cli, real_data
from glioseg.datasets.cases import find_cases, read_case
from raw_cases import CROP, make_raw


def test_a_real_case_made_raw_comes_back_aligned(brats2018_sample, tmp_path):
    case = read_case(find_cases(brats2018_sample)[2])
    paths, motions = make_raw(case, tmp_path, np.random.default_rng(0))
    out = tmp_path / "prepared"
    result = glioseg_cli("prepare", "--flair", paths["FLAIR"], "--t1", paths["T1"], "--t1gd", paths["T1Gd"],
                         "--t2", paths["T2"], "--out", out, "--case-id", "raw1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = out / "raw1"
    record = json.loads((folder / "prepare" / "prepare.json").read_text())
    assert record["input_skull_stripped"] and not record["brain_extracted"]  # BraTS input: kept, no brain lost
    assert record["sources"]["T2"] == {"file": str(paths["T2"].resolve())}
    prepared = read_case(folder)  # a BraTS 2021 case folder, every sequence on the T1Gd's 1 mm grid
    assert prepared.spacing == (1.0, 1.0, 1.0) and prepared.image.shape[1:] == tuple(s.stop - s.start for s in CROP)
    brain = np.argwhere(prepared.image[2] > 0)[::1500]
    points = ((prepared.affine[:3, :3] @ brain.T).T + prepared.affine[:3, 3]) * [-1, -1, 1]  # RAS -> ITK's LPS
    for role in ("FLAIR", "T1", "T2"):  # a prepared voxel at p samples the original at motion(found(p)): p itself
        found = sitk.ReadTransform(str(folder / "prepare" / "transforms" / f"{role}.tfm"))
        errors = [np.linalg.norm(np.array(motions[role].TransformPoint(found.TransformPoint(tuple(p)))) - p)
                  for p in points]  # fmt: skip
        # measured: FLAIR mean 0.2 / max 0.5 mm, T1 0.1 / 0.1, T2 1.3 / 1.9 (5 mm slices tilted by 17 degrees: the
        # mutual-information optimum itself lies 1.1 mm off, started from the truth)
        assert np.mean(errors) < 1.5 and max(errors) < 2.5, (role, np.mean(errors), max(errors))
    assert (folder / "prepare" / "qc.png").stat().st_size > 10_000
    assert find_cases(out)[0].case_id == "raw1"  # the output folder is a dataset glioseg predict reads


def test_brain_extraction_of_a_real_head_with_skull(tmp_path):
    pytest.importorskip("deepbet", reason="the prepare extra: pip install 'glioseg[prepare]'")
    from glioseg.raw.prepare import brain_mask, convert_series, looks_skull_stripped

    with tarfile.open(real_data("dicom") / "philips-ingenia-session.tar.xz") as tar:
        tar.extractall(tmp_path, filter="data")
    series = tmp_path / "cl_1301_ADNI_Sag3D_MPRAGE"
    head = nib.as_closest_canonical(convert_series(tuple(sorted(series.iterdir())), tmp_path / "work", "the T1"))
    assert head.shape == (170, 256, 256) and np.allclose(head.header.get_zooms(), 1.0)  # as dcm2niix reads it
    assert not looks_skull_stripped(head)
    mask = brain_mask(np.asarray(head.dataobj), head.affine)
    assert 1000 < mask.sum() / 1000 < 1800  # mL at 1 mm


def test_bad_input_is_refused_and_nothing_is_written(tmp_path, brats2018_sample):
    with tarfile.open(real_data("dicom") / "philips-ingenia-session.tar.xz") as tar:
        tar.extractall(tmp_path / "study", filter="data")
    out = tmp_path / "out"
    result = glioseg_cli("prepare", tmp_path / "study", "--out", out)
    assert result.returncode == 2 and "no FLAIR series found" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    flair = find_cases(brats2018_sample)[0].images[0]
    result = glioseg_cli("prepare", "--flair", flair, "--t1", flair, "--out", out)
    assert result.returncode == 2 and "--t1gd" in result.stderr and not out.exists()
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    result = glioseg_cli("prepare", "--flair", empty, "--t1", flair, "--t1gd", flair, "--t2", flair, "--out", out)
    assert result.returncode == 2 and "empty.nii.gz" in result.stderr and "Traceback" not in result.stderr
    assert not list(out.glob("*")) if out.exists() else True
    (out / "taken").mkdir(parents=True)
    result = glioseg_cli("prepare", "--flair", flair, "--t1", flair, "--t1gd", flair, "--t2", flair, "--out", out,
                         "--case-id", "taken")  # fmt: skip
    assert result.returncode == 2 and "already exists" in result.stderr and not list((out / "taken").iterdir())
    shutil.rmtree(tmp_path / "study")
