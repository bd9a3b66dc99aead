"""``glioseg predict`` with a PACS over DICOMweb, against a real Orthanc: a study fetched (WADO-RS), segmented, its
SEG stored back (STOW-RS) into the same study; a wrong password, an unknown study, a server that is down and a study
without a T1Gd are clear errors that leave nothing behind."""

import pydicom
import pytest

from conftest import assert_clear_error, glioseg_in_process, no_outputs
from dicom_writer import write_phantom_study
from glioseg.raw.dicomweb import PASSWORD_VARIABLE
from orthanc_server import PASSWORD, USER, free_port, orthanc_missing, running_orthanc


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    if orthanc_missing():
        pytest.skip(orthanc_missing())
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def stored_study(orthanc, tmp_path_factory):
    """A phantom study in Orthanc: its StudyInstanceUID and the T1Gd series' UID."""
    written = write_phantom_study(tmp_path_factory.mktemp("study") / "study")
    orthanc.upload([path for paths in written.values() for path in paths])
    first = pydicom.dcmread(written["T1Gd"][0], stop_before_pixels=True)
    return first.StudyInstanceUID, first.SeriesInstanceUID


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)


def test_a_study_from_dicomweb_is_segmented_and_its_seg_stored_in_the_same_study(orthanc, stored_study, password,
                                                                                   tmp_path):  # fmt: skip
    study, t1gd_series = stored_study
    out = tmp_path / "pred"
    result = glioseg_in_process("predict", orthanc.study_url(study), "--out", out, "--store-to", orthanc.dicomweb,
                                "--dicomweb-user", USER)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    for written in (
        f"{study}.nii.gz",
        f"{study}_seg.dcm",
        f"{study}_qc.png",
        "volumes.csv",
        "lesions.csv",
        "cases.json",
    ):  # fmt: skip  (what a local DICOM study gives)
        assert (out / written).exists(), written
    assert (out / "volumes.csv").read_text().splitlines()[1].startswith(study)
    segs = orthanc.series_of(study, "SEG")
    assert len(segs) == 1, segs
    instance = orthanc.rest("GET", f"/series/{segs[0]['ID']}").json()["Instances"][0]
    seg = pydicom.dcmread(__import__("io").BytesIO(orthanc.rest("GET", f"/instances/{instance}/file").content))
    assert seg.StudyInstanceUID == study
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == t1gd_series
    assert seg.SOPInstanceUID == pydicom.dcmread(out / f"{study}_seg.dcm").SOPInstanceUID
    assert len(orthanc.series_of(study, "SR")) == 1  # the measurements went with it


def test_a_wrong_password_is_a_clear_error_and_leaves_nothing(orthanc, stored_study, monkeypatch, tmp_path):
    monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-password")
    url = orthanc.study_url(stored_study[0])
    result = glioseg_in_process("predict", url, "--out", tmp_path / "pred", "--dicomweb-user", USER)
    assert_clear_error(result, url)
    assert "HTTP 401" in result.stdout + result.stderr and PASSWORD_VARIABLE in result.stdout + result.stderr
    assert "not-the-password" not in result.stdout + result.stderr
    assert not (tmp_path / "pred").exists()


def test_a_user_without_the_password_in_the_environment_is_told_where_it_goes(orthanc, stored_study, monkeypatch,
                                                                              tmp_path):  # fmt: skip
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    result = glioseg_in_process("predict", orthanc.study_url(stored_study[0]), "--out", tmp_path / "pred",
                                "--dicomweb-user", USER)  # fmt: skip
    assert_clear_error(result, PASSWORD_VARIABLE)
    assert not (tmp_path / "pred").exists()


def test_an_unknown_study_and_a_server_that_is_down_are_clear_errors(orthanc, password, tmp_path):
    unknown = orthanc.study_url("1.2.826.0.1.3680043.8.498.1")
    result = glioseg_in_process("predict", unknown, "--out", tmp_path / "pred", "--dicomweb-user", USER)
    assert_clear_error(result, unknown)
    assert "no such study" in result.stdout + result.stderr
    down = f"http://127.0.0.1:{free_port()}/dicom-web/studies/1.2.3"
    result = glioseg_in_process("predict", down, "--out", tmp_path / "pred", "--dicomweb-user", USER)
    assert_clear_error(result, down)
    assert "cannot reach the server" in result.stdout + result.stderr
    assert not (tmp_path / "pred").exists()


def test_a_study_without_a_t1gd_is_refused_naming_what_is_missing(orthanc, password, tmp_path):
    written = write_phantom_study(tmp_path / "study", roles=("FLAIR", "T1", "T2"))
    orthanc.upload([path for paths in written.values() for path in paths])
    study = pydicom.dcmread(written["T1"][0], stop_before_pixels=True).StudyInstanceUID
    out = tmp_path / "pred"
    result = glioseg_in_process("predict", orthanc.study_url(study), "--out", out, "--store-to", orthanc.dicomweb,
                                "--dicomweb-user", USER)  # fmt: skip
    assert_clear_error(result, study)
    assert "T1Gd" in result.stdout + result.stderr
    assert no_outputs(out)
    assert orthanc.series_of(study, "SEG") == []


def test_a_web_address_that_names_no_study_is_a_clear_error(tmp_path):
    address = "http://127.0.0.1:8042/dicom-web/series/1.2.3"
    assert_clear_error(glioseg_in_process("predict", address, "--out", tmp_path / "pred"), address)
    assert not (tmp_path / "pred").exists()


def test_store_to_must_be_a_web_address(tmp_path):
    result = glioseg_in_process("predict", tmp_path, "--out", tmp_path / "pred", "--store-to", "pacs:8042")
    assert result.returncode == 2 and "DICOMweb address" in result.stdout + result.stderr
