"""The raw-scan catalogue: NIfTI files and DICOM series that cannot be prepared honestly are refused before any work,
naming the file or series and the fix (exit 2, no traceback, nothing written); what users hold (a CD's DICOMDIR)
is read. Small synthetic scans, so each refusal is quick."""

import gzip
import io
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import assert_clear_error, glioseg_cli, glioseg_in_process, no_outputs
from dicom_writer import SEQUENCE_TAGS, new_study, write_series
from glioseg.datasets.layouts import MODALITIES

SHAPE, SPACING = (40, 44, 32), 4.0


def head(seed: int) -> np.ndarray:
    """A smooth blob with texture: something registration and the checks see as an image."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE), indexing="ij"))
    blob = np.exp(-(grid**2).sum(0) * 2.5) * 800
    return (blob * (1 + 0.1 * rng.standard_normal(SHAPE))).astype(np.float32)


def affine() -> np.ndarray:
    matrix = np.diag([SPACING, SPACING, SPACING, 1.0])
    matrix[:3, 3] = -np.array(SHAPE) * SPACING / 2
    return matrix


@pytest.fixture
def raw(tmp_path):
    """Four good NIfTI sequences on one grid: ``{sequence: path}``."""
    paths = {}
    for index, role in enumerate(MODALITIES):
        paths[role] = tmp_path / "in" / f"{role}.nii.gz"
        paths[role].parent.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(head(index), affine()), paths[role])
    return paths


def replace_flair(paths, data, matrix=None, header_change=None):
    nib.save(nib.Nifti1Image(data, affine() if matrix is None else matrix), paths["FLAIR"])
    if header_change:  # the header's bytes changed in the file, as a broken writer leaves them (nibabel would fix)
        raw = gzip.decompress(paths["FLAIR"].read_bytes())
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw), check=False)
        header_change(header)
        paths["FLAIR"].write_bytes(gzip.compress(header.binaryblock + raw[len(header.binaryblock) :]))


# ---- NIfTI damages: each changes the FLAIR -------------------------------------------------------------------


def one_slice(paths):
    replace_flair(paths, head(0)[:, :, 15:16])


def slab_of_three_slices(paths):
    replace_flair(paths, head(0)[:, :, 14:17])


def one_voxel(paths):
    replace_flair(paths, np.ones((1, 1, 1), np.float32))


def all_zero(paths):
    replace_flair(paths, np.zeros(SHAPE, np.float32))


def constant(paths):
    replace_flair(paths, np.full(SHAPE, 7.0, np.float32))


def slices_a_hundredth_of_a_millimetre_apart(paths):
    replace_flair(paths, head(0)[:, :, :8].repeat(125, axis=2), affine() @ np.diag([1, 1, 0.01 / SPACING, 1]))


def voxels_of_a_metre(paths):  # a header in metres read as millimetres
    replace_flair(paths, head(0), affine() @ np.diag([250.0, 250.0, 250.0, 1.0]))


def nan_sform_no_qform(paths):
    def change(header):
        header["qform_code"] = 0
        header["srow_x"] = np.nan
        header["sform_code"] = 1

    replace_flair(paths, head(0), header_change=change)


def zero_sform_no_qform(paths):
    def change(header):
        header["qform_code"] = 0
        header["srow_x"], header["srow_y"], header["srow_z"] = 0, 0, 0
        header["sform_code"] = 1

    replace_flair(paths, head(0), header_change=change)


def zero_spacing(paths):
    def change(header):
        header["qform_code"], header["sform_code"] = 0, 0
        header["pixdim"][1:4] = 0

    replace_flair(paths, head(0), header_change=change)


def rgb(paths):
    colours = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    colours["R"] = (head(0) / 4).astype(np.uint8)
    nib.save(nib.Nifti1Image(colours, affine()), paths["FLAIR"])


def complex_valued(paths):
    replace_flair(paths, head(0).astype(np.complex64) * (1 + 1j))


NIFTI_DAMAGES = [one_slice, slab_of_three_slices, one_voxel, all_zero, constant,
                 slices_a_hundredth_of_a_millimetre_apart, voxels_of_a_metre, nan_sform_no_qform,
                 zero_sform_no_qform, zero_spacing, rgb, complex_valued]  # fmt: skip


def prepare_args(paths, out):
    return ["prepare", *(f for role in MODALITIES for f in (f"--{role.lower()}", paths[role])), "--out", out,
            "--brain-extraction", "none"]  # fmt: skip


@pytest.mark.parametrize("damage", NIFTI_DAMAGES, ids=lambda d: d.__name__)
def test_prepare_refuses_what_it_cannot_register_or_place(raw, tmp_path, damage):
    damage(raw)
    out = tmp_path / "out"
    result = glioseg_in_process("prepare", *prepare_args(raw, out)[1:])
    assert_clear_error(result, "FLAIR.nii.gz")
    assert no_outputs(out)


@pytest.mark.parametrize("damage", [one_slice, constant, voxels_of_a_metre, rgb], ids=lambda d: d.__name__)
def test_predict_refuses_the_same_raw_case_folder(raw, tmp_path, damage):
    """A case folder on different grids is raw input that predict prepares: the same checks refuse it."""
    damage(raw)
    folder = tmp_path / "case7"
    folder.mkdir()
    for role, suffix in zip(MODALITIES, ("flair", "t1", "t1ce", "t2")):
        shutil.copy(raw[role], folder / f"case7_{suffix}.nii.gz")
    nib.save(nib.Nifti1Image(head(3)[:, :, :30], affine()), folder / "case7_t2.nii.gz")  # another grid: raw
    out = tmp_path / "pred"
    assert_clear_error(glioseg_in_process("predict", folder, "--out", out), "case7_flair.nii.gz")
    assert not list(out.rglob("*.nii.gz")) and not list(out.rglob("*.png"))  # no mask, no prepared case


def test_good_raw_files_still_prepare(raw, tmp_path):
    result = glioseg_cli(*prepare_args(raw, tmp_path / "out"), "--case-id", "p1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "p1").glob("*.nii.gz")) == [
        "p1_flair.nii.gz", "p1_t1.nii.gz", "p1_t1ce.nii.gz", "p1_t2.nii.gz"]  # fmt: skip


# ---- DICOM -----------------------------------------------------------------------------------------------------


def study_of(folder, seed=0, patients=None, tags=None):
    """A four-series study; ``patients`` and ``tags`` change a sequence's patient or header."""
    study = new_study()
    written = {}
    for number, role in enumerate(MODALITIES, start=2):
        own = dict(study, **(patients or {}).get(role, {}))
        written[role] = write_series(head(seed + number), affine(), folder / f"S{number}", own, number,
                                     {**SEQUENCE_TAGS[role], **(tags or {}).get(role, {})})  # fmt: skip
    return written


def edit_files(files, change):
    for index, path in enumerate(files):
        dataset = pydicom.dcmread(path)
        change(dataset, index)
        dataset.save_as(path)


def no_position(folder):
    edit_files(study_of(folder)["FLAIR"], lambda d, i: delattr(d, "ImagePositionPatient"))
    return "S2"


def zero_pixel_spacing(folder):
    edit_files(study_of(folder)["FLAIR"], lambda d, i: setattr(d, "PixelSpacing", [0, 0]))
    return "S2"


def gantry_tilt(folder):
    def tilt(dataset, index):  # slices still axial, but each shifted along y: a 20 degree tilted stack
        x, y, z = (float(v) for v in dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y + np.tan(np.radians(20)) * SPACING * index, z]
        dataset.GantryDetectorTilt = 20

    edit_files(study_of(folder)["FLAIR"], tilt)
    return "S2"


def orientation_changes_half_way(folder):
    def turn(dataset, index):
        if index >= 16:
            dataset.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]

    edit_files(study_of(folder)["FLAIR"], turn)
    return "S2"


def slices_on_one_position(folder):
    files = study_of(folder)["FLAIR"]
    position = pydicom.dcmread(files[0]).ImagePositionPatient
    edit_files(files, lambda d, i: setattr(d, "ImagePositionPatient", position))
    return "S2"


def slices_a_hundredth_of_a_millimetre_apart_in_dicom(folder):
    written = study_of(folder)
    shutil.rmtree(folder / "S2")  # the study's FLAIR becomes a stack of slices 0.01 mm apart
    other = pydicom.dcmread(written["T1"][0])
    study = {key: getattr(other, key) for key in new_study()}
    thin = affine() @ np.diag([1.0, 1.0, 0.01 / SPACING, 1.0])
    write_series(head(9)[:, :, :8].repeat(40, axis=2), thin, folder / "S9", study, 9, SEQUENCE_TAGS["FLAIR"])
    return "S9"


def claims_a_billion_voxels(folder):
    edit_files(study_of(folder)["FLAIR"], lambda d, i: (setattr(d, "Rows", 65535), setattr(d, "Columns", 65535)))
    return "S2"


def another_patient(folder):
    other = {"PatientName": "OTHER^PERSON", "PatientID": "", "PatientBirthDate": "19500505"}
    study_of(folder, patients={"FLAIR": other})
    return "OTHER^PERSON"


def another_session(folder):
    study_of(folder, patients={"T2": {"FrameOfReferenceUID": pydicom.uid.generate_uid()}})
    return "frame of reference"


DICOM_DAMAGES = [no_position, zero_pixel_spacing, gantry_tilt, orientation_changes_half_way, slices_on_one_position,
                 slices_a_hundredth_of_a_millimetre_apart_in_dicom, claims_a_billion_voxels, another_patient,
                 another_session]  # fmt: skip


@pytest.mark.parametrize("damage", DICOM_DAMAGES, ids=lambda d: d.__name__)
def test_dicom_whose_geometry_or_patient_is_a_guess_is_refused(tmp_path, damage):
    named = damage(tmp_path / "study")
    assert_clear_error(glioseg_in_process("prepare", tmp_path / "study", "--out", tmp_path / "out"), named)
    assert no_outputs(tmp_path / "out")


def test_series_and_predict_refuse_the_same_way(tmp_path):
    """``series`` and ``predict`` choose the series through the same checks as ``prepare``."""
    named = no_position(tmp_path / "study")
    assert_clear_error(glioseg_cli("series", tmp_path / "study"), named)
    assert_clear_error(glioseg_cli("predict", tmp_path / "study", "--out", tmp_path / "pred"), named)
    assert not list((tmp_path / "pred").rglob("*.nii.gz"))


def test_series_says_which_sequence_a_study_lacks_and_refuses_a_study_without_t1gd(tmp_path):
    written = study_of(tmp_path / "study")
    shutil.rmtree(written["T2"][0].parent)
    listed = glioseg_cli("series", tmp_path / "study")
    assert listed.returncode == 0, listed.stderr
    assert "T1Gd = series 4, T2 = none (segmented without it)" in " ".join(listed.stdout.split())
    shutil.rmtree(written["T1Gd"][0].parent)
    refused = glioseg_cli("series", tmp_path / "study")
    assert refused.returncode == 2 and "no T1Gd series found" in refused.stderr


def test_the_reason_for_an_orientation_change_is_given(tmp_path):
    orientation_changes_half_way(tmp_path / "study")
    result = glioseg_in_process("prepare", tmp_path / "study", "--out", tmp_path / "out")
    assert "orientation" in result.stderr and "echoes" not in result.stderr


def cd_export(source, target):
    """A study as a CD or PACS export writes it: DICOMDIR at the root, PT*/ST*/SE*/IM* files (pydicom's FileSet)."""
    from pydicom.fileset import FileSet

    files = FileSet()
    for path in sorted(source.rglob("*.dcm")):
        files.add(pydicom.dcmread(path))
    files.write(target)
    return target


def test_a_cd_export_with_a_dicomdir_is_read(tmp_path):
    study_of(tmp_path / "study", patients={"T2": {"PatientName": "GLIOSEG^TEST^^"}})  # one name, written two ways
    export = cd_export(tmp_path / "study", tmp_path / "cd")
    assert (export / "DICOMDIR").exists() and not list(export.rglob("*.dcm"))
    listed = glioseg_cli("series", export)
    assert listed.returncode == 0, listed.stderr
    assert "T1Gd = series 4" in " ".join(listed.stdout.split())
    result = glioseg_cli("prepare", export, "--out", tmp_path / "out", "--brain-extraction", "none")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out" / "cd").glob("*.nii.gz"))) == 4


def test_a_zipped_cd_export_is_taken_by_the_viewer(tmp_path):
    """The same export uploaded to the viewer as a zip: its DICOMDIR is not a damaged DICOM file."""
    import zipfile

    from glioseg.app.uploads import receive_upload
    from glioseg.core.config import UploadLimits

    study_of(tmp_path / "study")
    export = cd_export(tmp_path / "study", tmp_path / "cd")
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(p for p in export.rglob("*") if p.is_file()):
            zipped.write(path, path.relative_to(export))
    with open(archive, "rb") as stream:
        source = receive_upload([(stream, "cd.zip")], tmp_path / "job", UploadLimits())
    assert source.is_dir() and len([p for p in source.rglob("*") if p.is_file()]) == 4 * SHAPE[2] + 1
