"""`glioseg predict` on raw scans: a real case made raw (moved, 5 mm FLAIR and T2, sagittal T1, flipped T1Gd) and
written as a DICOM study or a NIfTI case folder is prepared by predict itself; its mask comes back on the native
T1Gd grid (and every sequence's), as NIfTI and as a DICOM SEG a validator accepts and highdicom reads back."""

import csv
import json
import re
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest

from conftest import glioseg_cli
from dicom_writer import sr_review, sr_values, write_study
from glioseg.core.labels import BRATS2021
from glioseg.core.registration import RigidTransform, resample
from glioseg.datasets.cases import find_cases, read_case
from raw_cases import make_raw

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def raw_case(brats2018_sample, tmp_path_factory):
    """A real case made raw: ({sequence: NIfTI file}, the BraTS-ready original's case files)."""
    original = find_cases(brats2018_sample)[2]
    paths, _ = make_raw(read_case(original), tmp_path_factory.mktemp("raw"), np.random.default_rng(0))
    return paths, original


SMALL_CROP = (slice(60, 180), slice(60, 180), slice(30, 120))
"""Around the tumour: for the tests of the way through (files, grids, resuming), not of the accuracy."""


@pytest.fixture(scope="module")
def small_raw_case(brats2018_sample, tmp_path_factory):
    case = read_case(find_cases(brats2018_sample)[2])
    return make_raw(case, tmp_path_factory.mktemp("small"), np.random.default_rng(1), crop=SMALL_CROP)[0]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def on_grid(mask_path, like: nib.Nifti1Image) -> np.ndarray:
    """A mask file resampled (nearest neighbour, no motion) onto another grid, as internal classes."""
    mask = nib.load(mask_path)
    identity = RigidTransform(__import__("SimpleITK").Euler3DTransform(), 0, 0, 0)
    moved = resample(np.asarray(mask.dataobj, np.float32), mask.affine, like.shape[:3], like.affine, identity, True)
    return BRATS2021.to_internal(moved.astype(np.uint8))


def test_a_dicom_study_is_segmented_on_the_native_t1gd_grid_with_a_dicom_seg(raw_case, tmp_path):
    paths, original = raw_case
    volumes = {role: (np.asarray(nib.load(p).dataobj), nib.load(p).affine) for role, p in paths.items()}
    written = write_study(volumes, tmp_path / "study")
    result = glioseg_cli("predict", tmp_path / "study", "--out", tmp_path / "pred")  # the shipped model
    assert result.returncode == 0, result.stderr
    stages = re.search(r"study: ([\d.]+) s: (.*)", result.stderr)  # where the time went, stage by stage
    seconds = {name: float(value) for name, value in (part.rsplit(" ", 1) for part in stages[2].split(", "))}
    assert list(seconds) == ["convert (dcm2niix)", "resample", "register", "write prepared case", "segment",
                             "native grids", "DICOM SEG and SR", "write"]  # fmt: skip
    assert seconds["register"] > 0 and float(stages[1]) == pytest.approx(sum(seconds.values()), abs=0.5)
    native = nib.load(tmp_path / "pred" / "study.nii.gz")
    t1gd = nib.load(paths["T1Gd"])  # what the T1Gd series was written from: its grid is the native grid
    assert native.shape == t1gd.shape and np.allclose(native.affine, t1gd.affine, atol=1e-3)
    # the same case BraTS-ready, predicted as it is, then put on the native grid: the raw path must agree
    assert glioseg_cli("predict", original.images[0].parent, "--out", tmp_path / "ready").returncode == 0
    ready = on_grid(tmp_path / "ready" / f"{original.case_id}.nii.gz", native)
    label = BRATS2021.to_internal(np.asarray(native.dataobj))
    scores = [dice(np.isin(label, r), np.isin(ready, r)) for r in ((1, 2, 3), (2, 3), (3,))]
    # measured with the shipped ensemble: WT 0.964, TC 0.987, ET 0.974 (the previous single model: WT 0.874)
    assert min(scores) >= 0.90, scores  # issue 18's bar for WT, kept for TC and ET too
    volumes_csv = (tmp_path / "pred" / "volumes.csv").read_text().splitlines()
    wt_ml = float(volumes_csv[1].split(",")[1])
    assert wt_ml == pytest.approx((label > 0).sum() * np.prod(native.header.get_zooms()[:3]) / 1000, abs=1e-3)
    assert (tmp_path / "pred" / "study_qc.png").stat().st_size > 10_000

    import highdicom as hd
    import pydicom

    seg_path = tmp_path / "pred" / "study_seg.dcm"
    if shutil.which("dciodvfy"):  # dicom3tools (make test installs it where it may)
        check = subprocess.run(["dciodvfy", str(seg_path)], capture_output=True, text=True)
        assert "Error" not in check.stdout + check.stderr, check.stderr
    seg = hd.seg.segread(seg_path)
    t1gd_series = pydicom.dcmread(written["T1Gd"][0], stop_before_pixels=True).SeriesInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == t1gd_series
    record = json.loads((tmp_path / "pred" / "prepared" / "study" / "prepare" / "prepare.json").read_text())
    chosen = record["sources"]["T1Gd"]  # what the SEG references, recorded once when the study was read
    assert chosen["uid"] == t1gd_series and sorted(chosen["files"]) == sorted(str(f.resolve()) for f in written["T1Gd"])
    codes = {d.segment_number: d.SegmentedPropertyTypeCodeSequence[0].CodeValue for d in seg.SegmentSequence}
    assert codes == {1: "6574001", 2: "79654002", 3: "C113842"}  # necrosis, edema, enhancing lesion (CID 7168)
    volume = seg.get_volume(combine_segments=True)
    voxels = np.argwhere(volume.array > 0)
    world = RAS_FROM_LPS @ (volume.affine[:3, :3] @ voxels.T + volume.affine[:3, 3:])
    index = np.rint(np.linalg.inv(native.affine[:3, :3]) @ (world - native.affine[:3, 3:])).astype(int)
    in_seg = {1: 2, 2: 1, 3: 3}  # segment number -> internal class (core, edema, enhancing)
    assert np.array_equal(np.vectorize(in_seg.get)(volume.array[tuple(voxels.T)]), label[tuple(index)])
    assert len(voxels) == (label > 0).sum()  # every tumour voxel of the NIfTI mask is in the SEG, and no more

    sr_path = tmp_path / "pred" / "study_sr.dcm"  # the measurements beside the SEG, equal to the CSVs
    if shutil.which("dciodvfy"):
        check = subprocess.run(["dciodvfy", str(sr_path)], capture_output=True, text=True)
        assert "Error" not in check.stdout + check.stderr, check.stderr
    sr_volumes, sr_lesions, segmented = sr_values(sr_path)
    with open(tmp_path / "pred" / "volumes.csv") as stream:
        row = next(csv.DictReader(stream))
    assert segmented and sr_volumes == pytest.approx({name: float(row[name]) for name in sr_volumes}, abs=1e-6)
    with open(tmp_path / "pred" / "lesions.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len(sr_lesions) == len(rows) > 0
    with open(tmp_path / "pred" / "quality.csv") as stream:
        quality = next(csv.DictReader(stream))
    assert sr_review(sr_path) == (pytest.approx(float(quality["review_score"])), quality["review_advised"] == "True")
    for read, written in zip(sr_lesions, rows):
        assert (read["kind"], read["lesion"]) == (written["kind"], int(written["lesion"]))
        numbers = [key for key in read if key not in ("kind", "lesion")]
        assert [read[key] for key in numbers] == pytest.approx([float(written[key]) for key in numbers], abs=1e-6)


def test_a_case_folder_on_different_grids_is_prepared_and_masks_go_on_every_grid(small_raw_case, tiny_runs, tmp_path):
    paths = small_raw_case
    case = tmp_path / "inputs" / "raw1"
    case.mkdir(parents=True)
    for role, suffix in (("FLAIR", "flair"), ("T1", "t1"), ("T1Gd", "t1ce"), ("T2", "t2")):
        shutil.copy(paths[role], case / f"raw1_{suffix}.nii.gz")
    out = tmp_path / "pred"
    args = ("predict", tiny_runs(0), case, "--out", out, "--native-grids", "all", "--window", "whole")
    refused = glioseg_cli("predict", tiny_runs(0), case, "--out", out, "--prepare", "never")
    assert refused.returncode == 2 and "--prepare never" in refused.stderr and not out.exists()
    assert glioseg_cli(*args).returncode == 0
    for suffix, role in (("", "T1Gd"), ("_on_flair", "FLAIR"), ("_on_t1", "T1"), ("_on_t2", "T2")):
        mask, source = nib.load(out / f"raw1{suffix}.nii.gz"), nib.load(paths[role])
        assert mask.shape == source.shape and np.allclose(mask.affine, source.affine, atol=1e-4), role
    entry = json.loads((out / "cases.json").read_text())[0]
    assert entry["mask"] == "prepared/raw1.nii.gz" and entry["native_mask"] == "raw1.nii.gz"
    assert read_case(entry["source"]).image.shape[1:] == nib.load(out / entry["mask"]).shape  # for report, viewer
    # interrupted after preparing: the next run segments again without preparing again
    prepared_at = (out / "prepared" / "raw1" / "prepare" / "prepare.json").stat().st_mtime_ns
    (out / "raw1.nii.gz").unlink()
    assert glioseg_cli(*args).returncode == 0 and (out / "raw1.nii.gz").exists()
    assert (out / "prepared" / "raw1" / "prepare" / "prepare.json").stat().st_mtime_ns == prepared_at


def test_raw_scans_lacking_a_sequence_are_prepared_and_segmented_without_it(small_raw_case, tiny_runs, tmp_path):
    paths = small_raw_case
    volumes = {role: (np.asarray(nib.load(p).dataobj), nib.load(p).affine) for role, p in paths.items() if role != "T2"}
    write_study(volumes, tmp_path / "study")
    out = tmp_path / "pred"
    strict = glioseg_cli("predict", tiny_runs(0), tmp_path / "study", "--out", out, "--require-all")
    assert strict.returncode == 2 and "no T2 series found" in strict.stderr and not list(out.rglob("*.nii.gz"))
    result = glioseg_cli("predict", tiny_runs(0), tmp_path / "study", "--out", out, "--window", "whole")
    assert result.returncode == 0, result.stderr
    assert "sequence missing: study: no T2, segmented from FLAIR, T1, T1Gd" in " ".join(result.stderr.split())
    native, t1gd = nib.load(out / "study.nii.gz"), nib.load(paths["T1Gd"])
    assert native.shape == t1gd.shape and np.allclose(native.affine, t1gd.affine, atol=1e-3)
    assert (out / "study_seg.dcm").exists() or "no DICOM SEG" in result.stderr
    assert sorted(p.name for p in (out / "prepared" / "study").glob("*.nii.gz")) == [
        "study_flair.nii.gz", "study_t1.nii.gz", "study_t1ce.nii.gz"]  # fmt: skip
    record = json.loads((out / "prepared" / "study" / "prepare" / "prepare.json").read_text())
    assert set(record["sources"]) == {"FLAIR", "T1", "T1Gd"} and set(record["registration"]) == {"FLAIR", "T1"}
    entry = json.loads((out / "cases.json").read_text())[0]
    assert entry["absent"] == ["T2"] and entry["sequences"] == ["FLAIR", "T1", "T1Gd"]
    folder = tmp_path / "inputs" / "raw2"  # NIfTI on different grids, without a FLAIR: every grid there is
    folder.mkdir(parents=True)
    for role, suffix in (("T1", "t1"), ("T1Gd", "t1ce"), ("T2", "t2")):
        shutil.copy(paths[role], folder / f"raw2_{suffix}.nii.gz")
    nifti = glioseg_cli("predict", tiny_runs(0), folder, "--out", tmp_path / "nifti", "--native-grids", "all",
                        "--window", "whole")  # fmt: skip
    assert nifti.returncode == 0, nifti.stderr
    assert sorted(p.name for p in (tmp_path / "nifti").glob("raw2*.nii.gz")) == [
        "raw2.nii.gz", "raw2_on_t1.nii.gz", "raw2_on_t2.nii.gz"]  # fmt: skip
    (folder / "raw2_t1ce.nii.gz").unlink()
    shutil.copy(paths["FLAIR"], folder / "raw2_flair.nii.gz")
    refused = glioseg_cli("predict", tiny_runs(0), folder, "--out", tmp_path / "no-t1gd")
    assert refused.returncode == 2 and "without a T1Gd" in " ".join(refused.stderr.split())
    assert not (tmp_path / "no-t1gd").exists() or not list((tmp_path / "no-t1gd").rglob("*.nii.gz"))


def test_brats_ready_cases_are_not_prepared_and_dicom_needs_preparing(tiny_runs, brats2018_sample, tmp_path):
    case = find_cases(brats2018_sample)[0].images[0].parent
    assert glioseg_cli("predict", tiny_runs(0), case, "--out", tmp_path / "pred", "--window", "whole").returncode == 0
    assert not (tmp_path / "pred" / "prepared").exists()
    study = tmp_path / "study"
    write_study({"T1Gd": (np.ones((8, 8, 4), np.float32), np.eye(4))}, study)
    refused = glioseg_cli("predict", tiny_runs(0), study, "--out", tmp_path / "dicom", "--prepare", "never")
    assert refused.returncode == 2 and "DICOM study" in refused.stderr and "Traceback" not in refused.stderr
    missing = glioseg_cli("predict", tiny_runs(0), study, "--out", tmp_path / "dicom")
    assert missing.returncode == 2 and "no FLAIR series" in missing.stderr, missing.stderr
    assert not list((tmp_path / "dicom").rglob("*.nii.gz"))


def test_the_viewer_takes_a_zipped_dicom_study(small_raw_case, tiny_runs, tmp_path):
    """The same way as predict: shown on the prepared grid, the mask to download on the native T1Gd grid."""
    import gzip
    import io
    import time
    import zipfile

    from fastapi.testclient import TestClient

    from glioseg.app.viewer import create_app
    from glioseg.inference.predict import load_model

    paths = small_raw_case
    model = load_model(tiny_runs(0), "cpu")
    client = TestClient(create_app(lambda: model, work=tmp_path / "work"))
    volumes = {role: (np.asarray(nib.load(p).dataobj), nib.load(p).affine) for role, p in paths.items()}
    write_study(volumes, tmp_path / "study")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((tmp_path / "study").rglob("*.dcm")):
            zipped.write(path, str(path.relative_to(tmp_path)))
        zipped.writestr("study/README.TXT", b"exported by a PACS")  # left out: not DICOM
    response = client.post("/api/jobs", files=[("files", ("study.zip", archive.getvalue()))])
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.time() + 300
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("done", "failed"):
        assert time.time() < deadline, job
        time.sleep(0.25)
    assert job["status"] == "done", job

    def served(name: str) -> nib.Nifti1Image:
        return nib.Nifti1Image.from_bytes(gzip.decompress(client.get(f"/api/jobs/{job_id}/files/{name}").content))

    t1gd = nib.load(paths["T1Gd"])
    assert served("T1Gd").header.get_zooms()[:3] == (1.0, 1.0, 1.0)  # shown on the prepared grid
    mask = served("segmentation")
    assert mask.shape == t1gd.shape and np.allclose(mask.affine, t1gd.affine, atol=1e-3)  # the native grid
    whole = (np.asarray(mask.dataobj) > 0).sum() * np.prod(t1gd.header.get_zooms()[:3]) / 1000
    assert job["volumes_ml"]["WT"] == pytest.approx(whole, abs=0.01)  # the volumes are the download's
