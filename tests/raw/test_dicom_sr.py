"""The DICOM SR of a DICOM study's measurements: dciodvfy-clean, read back by highdicom with every number of
volumes.csv and lesions.csv, its class groups referencing the SEG's segments and the T1Gd series; a case without
tumour gets an SR of zero volumes and no SEG."""

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from dicom_writer import sr_review, sr_unreliable, sr_values, write_study
from glioseg.evaluation.measurements import measure_case
from glioseg.raw.dicom_seg import write_dicom_seg
from glioseg.raw.dicom_sr import LOCAL_SCHEME, write_dicom_sr

AFFINE = np.diag([-2.0, -2.0, 2.0, 1.0])
SHAPE = (30, 30, 20)


@pytest.fixture
def t1gd_series(tmp_path):
    volume = np.random.default_rng(0).random(SHAPE).astype(np.float32) * 100
    return tuple(write_study({"T1Gd": (volume, AFFINE)}, tmp_path / "study")["T1Gd"])


def two_lesions() -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    label[5:15, 5:15, 5:12] = 1  # edema around an enhancing core
    label[8:12, 8:12, 7:10] = 3
    label[20:25, 20:24, 10:14] = 2  # a second lesion, necrotic/non-enhancing core only
    return label


def assert_dciodvfy_clean(path) -> None:
    if shutil.which("dciodvfy"):  # dicom3tools (make test installs it where it may)
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        assert "Error" not in check.stdout + check.stderr, check.stderr


def test_the_sr_holds_every_measurement_and_references_the_seg(t1gd_series, tmp_path):
    label = two_lesions()
    seg = write_dicom_seg(tmp_path / "case_seg.dcm", label, AFFINE, t1gd_series)
    volumes, lesions = measure_case(label, AFFINE, (2.0, 2.0, 2.0))
    sr = write_dicom_sr(tmp_path / "case_sr.dcm", volumes, lesions, t1gd_series, seg, "model-fingerprint", (1.25, True))
    assert_dciodvfy_clean(sr)
    assert sr_review(sr) == (1.25, True)
    read_volumes, read_lesions, segmented = sr_values(sr)
    assert segmented
    assert read_volumes == {name: value for name, value in volumes.items() if name != "ET_ml"}  # ET is the class
    assert len(read_lesions) == len(lesions) == 3  # two whole-tumour lesions, one enhancing
    for read, row in zip(read_lesions, lesions):
        assert read == {key: row[key] for key in read}

    dataset = pydicom.dcmread(sr)
    seg_dataset = pydicom.dcmread(seg)
    t1gd = pydicom.dcmread(t1gd_series[0], stop_before_pixels=True)
    assert dataset.StudyInstanceUID == t1gd.StudyInstanceUID and dataset.PatientID == t1gd.PatientID
    evidence = {item.SeriesInstanceUID for study in dataset.CurrentRequestedProcedureEvidenceSequence
                for item in study.ReferencedSeriesSequence}  # fmt: skip
    assert evidence == {t1gd.SeriesInstanceUID, seg_dataset.SeriesInstanceUID}
    import highdicom as hd

    for group in hd.sr.srread(sr).content.get_volumetric_roi_measurement_groups():
        assert group.referenced_segment.referenced_sop_instance_uid == seg_dataset.SOPInstanceUID
        assert group.referenced_segment.source_series_for_segmentation.value == t1gd.SeriesInstanceUID
        assert group.get_measurements()[0].unit.value == "mL"
    text = []
    dataset.walk(lambda _, element: text.append(str(element.value)) if element.VR in ("UT", "LO", "SH") else None)
    text = " ".join(text)
    assert "model-fingerprint" in text and "glioseg" in text  # the algorithm and model named
    assert LOCAL_SCHEME in {item.CodingSchemeDesignator for item in dataset.CodingSchemeIdentificationSequence}


def test_without_tumour_the_sr_says_so_and_references_no_seg(t1gd_series, tmp_path):
    label = np.zeros(SHAPE, np.uint8)
    assert write_dicom_seg(tmp_path / "case_seg.dcm", label, AFFINE, t1gd_series) is None
    volumes, lesions = measure_case(label, AFFINE, (2.0, 2.0, 2.0))
    sr = write_dicom_sr(tmp_path / "case_sr.dcm", volumes, lesions, t1gd_series, None, "m", (0.0, False))
    assert_dciodvfy_clean(sr)
    assert sr_review(sr) == (0.0, False) and sr_unreliable(sr) == []
    lacking = write_dicom_sr(tmp_path / "lacking_sr.dcm", volumes, lesions, t1gd_series, None, "m", (0.0, True),
                             unreliable=("TC", "ET"))  # fmt: skip
    assert_dciodvfy_clean(lacking)
    assert sr_review(lacking) == (0.0, True) and sr_unreliable(lacking) == ["TC", "ET"]
    read_volumes, read_lesions, segmented = sr_values(sr)
    assert not segmented and read_lesions == []
    assert set(read_volumes) == {"WT_ml", "TC_ml", "edema_ml", "core_ml", "enhancing_ml"}
    assert all(value == 0 for value in read_volumes.values())
