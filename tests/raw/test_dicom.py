"""DICOM studies (glioseg.raw.dicom, `glioseg series`): real scanner files, unpacked at test time."""

import shutil
import tarfile

import pytest

from conftest import glioseg_cli, real_data
from glioseg.core.errors import InputError
from glioseg.raw.dicom import Series, choose_series, role_of, scan_study


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicom")
    for archive in sorted(real_data("dicom").glob("*.tar.xz")):
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return folder


def series_named(description: str, **changes) -> Series:
    fields = dict(uid="1", number=1, description=description, protocol="", modality="MR", patient="p", study="s",
                  study_description="", files=(), frames=1, image_type=("ORIGINAL", "PRIMARY"), repetition_ms=None,
                  echo_ms=None, inversion_ms=None, contrast_agent="")  # fmt: skip
    return Series(**{**fields, **changes})


@pytest.mark.parametrize(("series", "role"), [
    (series_named("t2_tirm_tra_dark-fluid"), "FLAIR"),
    (series_named("AX FLAIR"), "FLAIR"),
    (series_named("Ax T2 FSE"), "T2"),
    (series_named("sag T1 MPRAGE"), "T1"),
    (series_named("T1 MPRAGE POST"), "T1Gd"),
    (series_named("ax 3d", repetition_ms=8.0, echo_ms=3.0, contrast_agent="Gadovist"), "T1Gd"),
    (series_named("ax ir", repetition_ms=9000.0, echo_ms=90.0, inversion_ms=2500.0), "FLAIR"),
    (series_named("ep2d_diff_3scan_trace_p2"), None),
    (series_named("ADC map", image_type=("DERIVED", "PRIMARY", "ADC")), None),
    (series_named("AAHead_Scout"), None),
    (series_named("t2_swi_tra"), None),
    (series_named("T1 post", modality="CT"), None),
])  # fmt: skip
def test_roles_from_tags(series, role):
    assert role_of(series)[0] == role


def test_real_scanner_series_sorted_and_recognised(unpacked, tmp_path):
    philips = tmp_path / "philips-study"  # the Philips session: a whole-head 3D T1 and a multi-frame field map
    for name in ("cl_1301_ADNI_Sag3D_MPRAGE", "enh_2001_fcMRI_Field_Mapping"):
        shutil.copytree(unpacked / name, philips / name)
    found = scan_study(philips)
    assert [(s.number, len(s.files), s.frames) for s in found] == [(1301, 170, 170), (2001, 1, 212)]
    assert [role_of(s)[0] for s in found] == ["T1", None]
    with pytest.raises(InputError, match="no FLAIR series found.*ADNI_Sag3D MPRAGE"):
        choose_series(philips, found, {})
    enhanced = scan_study(unpacked / "5_anat-T1w_acq-tfl")[0]  # Siemens XA30: timings in the functional groups
    assert (enhanced.frames, enhanced.repetition_ms, enhanced.echo_ms, role_of(enhanced)[0]) == (96, 1800, 2.41, "T1")
    assert role_of(scan_study(unpacked / "GE_mr_0004")[0])[0] is None  # EPI fMRI; its README is skipped


def test_contrast_agent_tag_makes_t1gd_and_studies_are_kept_apart(unpacked):
    rider = unpacked / "RIDER"
    with pytest.raises(InputError, match="holds 2 patients"):
        scan_study(rider)
    patient = next(rider.iterdir())
    with pytest.raises(InputError, match="studies of one patient"):
        scan_study(patient)
    roles = {}
    for study in sorted(patient.iterdir()):
        for series in scan_study(study):
            roles.setdefault(series.description, set()).add(role_of(series)[0])
    assert roles["sag 3d gre +c"] == {"T1Gd"}  # ContrastBolusAgent Magnevist
    assert roles["ax 5 flip"] == {"T1"}


def test_two_candidates_and_a_choice(unpacked):
    """A RIDER study with two axial T1 series (flip angles 5 and 10): ambiguous until --series chooses."""
    study = unpacked / "RIDER" / "RIDER Neuro MRI-3369019796" / "03-21-1904-BRAINRESEARCH-71264"
    result = glioseg_cli("series", study)
    assert result.returncode == 2 and "2 series could be the T1" in result.stderr and "--series T1=" in result.stderr
    assert "ax 5 flip" in result.stdout and "Traceback" not in result.stderr
    result = glioseg_cli("series", study, "--series", "T1=7")
    assert result.returncode == 2 and "no FLAIR series found" in result.stderr  # T1 chosen; FLAIR still missing
    result = glioseg_cli("series", study, "--series", "T1=99")
    assert result.returncode == 2 and "T1=99 names 0 series" in result.stderr


def test_studies_of_one_patient_are_kept_apart(unpacked, tmp_path):
    """The same volunteer supine and prone: two studies in one folder are refused, each alone is read."""
    both = tmp_path / "two-visits"
    for name in ("HFS_3_t1_fl2d_sag", "HFP_2_t1_fl2d_sag"):
        shutil.copytree(unpacked / name, both / name)
    with pytest.raises(InputError, match="2 studies of one patient"):
        scan_study(both)
    assert [role_of(s)[0] for s in scan_study(both / "HFP_2_t1_fl2d_sag")] == ["T1"]


def test_a_truncated_dicom_file_is_named(unpacked, tmp_path):
    study = tmp_path / "broken"
    shutil.copytree(unpacked / "HFS_3_t1_fl2d_sag", study)
    victim = sorted(study.iterdir())[4]
    victim.write_bytes(victim.read_bytes()[:300])  # the preamble and a few header bytes
    result = glioseg_cli("series", study)
    assert result.returncode == 2 and victim.name in result.stderr and "cannot be read" in result.stderr
    assert "Traceback" not in result.stderr
