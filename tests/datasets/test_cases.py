import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from glioseg.core.config import MODALITIES, CohortConfig
from glioseg.core.errors import InputError
from glioseg.core.labels import BRATS2021, BRATS2023, ENHANCING, MSD
from glioseg.datasets.cases import find_cases, read_case, write_label
from glioseg.datasets.layouts import LAYOUTS, Layout, locate_case
from glioseg.datasets.phantoms import write_cohort


def test_same_cohort_reads_back_identically_in_every_layout(cohort_factory):
    by_layout = {layout: [read_case(f) for f in find_cases(cohort_factory(layout))] for layout in LAYOUTS}
    reference = by_layout["brats2021"]
    assert len(reference) == 3
    for layout, cases in by_layout.items():
        assert [c.layout for c in cases] == [layout] * 3
        for case, expected in zip(cases, reference):
            assert case.image.dtype == np.float32 and case.image.shape == (4, 48, 48, 32)
            assert case.label.dtype == np.uint8
            np.testing.assert_array_equal(case.image, expected.image)
            np.testing.assert_array_equal(case.label, expected.label)
            np.testing.assert_allclose(case.affine, expected.affine)
            assert case.spacing == pytest.approx(expected.spacing)
    assert set(np.unique(reference[0].label)) <= {0, 1, 2, 3}
    assert (reference[0].label > 0).any()


def test_label_files_use_each_layouts_convention(cohort_factory):
    brats2021 = find_cases(cohort_factory("brats2021"))[0]
    brats2023 = find_cases(cohort_factory("brats2023"))[0]
    internal = read_case(brats2021).label
    on_disk_2021 = np.asarray(nib.load(brats2021.label).dataobj)
    on_disk_2023 = np.asarray(nib.load(brats2023.label).dataobj)
    assert set(np.unique(on_disk_2021)) <= {0, 1, 2, 4}
    assert (on_disk_2021[internal == ENHANCING] == 4).all()
    assert (on_disk_2023[internal == ENHANCING] == 3).all()


def test_nnunet_channel_order_comes_from_dataset_json(cohort_factory, tmp_path):
    import shutil

    source = cohort_factory("nnunet")
    shuffled = tmp_path / "shuffled"
    shutil.copytree(source, shuffled)
    meta = json.loads((shuffled / "dataset.json").read_text())
    # store channels as T1, T1ce, T2, FLAIR like nnU-Net's BraTS conversion does
    meta["channel_names"] = {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    (shuffled / "dataset.json").write_text(json.dumps(meta))
    case_id = find_cases(source)[0].case_id
    images = shuffled / "imagesTr"
    for new_index, old_index in enumerate((1, 2, 3, 0)):
        shutil.copy(
            source / "imagesTr" / f"{case_id}_{old_index:04d}.nii.gz",
            images / f"{case_id}_{new_index:04d}.nii.gz",
        )
    original = read_case(find_cases(source)[0])
    reordered = read_case(images / f"{case_id}_0000.nii.gz")
    np.testing.assert_array_equal(reordered.image, original.image)


def test_locate_case_from_each_kind_of_path(cohort_factory):
    msd = cohort_factory("msd")
    case = locate_case(msd / "imagesTr" / "BRATS_001.nii.gz")
    assert case.layout == "msd" and case.label == msd / "labelsTr" / "BRATS_001.nii.gz"
    nnunet = locate_case(cohort_factory("nnunet") / "imagesTr" / "BraTS_00002_0003.nii.gz")
    assert nnunet.case_id == "BraTS_00002" and len(nnunet.images) == 4
    folder = locate_case(cohort_factory("brats2023") / "BraTS-GLI-00001-000")
    assert folder.layout == "brats2023" and folder.convention is BRATS2023


@pytest.mark.parametrize(("layout", "lacking"), [("brats2021", "t1ce"), ("brats2023", "t2f"), ("nnunet", "0001")])
def test_a_case_lacking_one_sequence_is_read_without_it_only_where_allowed(cohort_factory, tmp_path, layout, lacking):
    import shutil

    root = Path(shutil.copytree(cohort_factory(layout, cases=2), tmp_path / layout))
    whole = read_case(find_cases(root)[0])
    [removed] = [p for p in root.rglob(f"*{whole.case_id}*{lacking}.nii.gz")]
    removed.unlink()
    modality = {"t1ce": "T1Gd", "t2f": "FLAIR", "0001": "T1"}[lacking]
    with pytest.raises(InputError, match=f"{modality}"):
        find_cases(root)  # training and glioseg check: every case complete
    lacking_case, other = find_cases(root, complete=False)
    assert lacking_case.absent == (modality,) and other.absent == ()
    case = read_case(lacking_case)
    kept = [i for i, m in enumerate(MODALITIES) if m != modality]
    assert case.absent == (modality,) and not case.image[MODALITIES.index(modality)].any()
    np.testing.assert_array_equal(case.image[kept], whole.image[kept])
    assert (case.affine == whole.affine).all() and (case.label == whole.label).all()
    given = next(p for p in lacking_case.images if p is not None)
    named = given.parent if layout != "nnunet" else given  # a case folder, or one of its channel files
    assert read_case(named, complete=False).absent == (modality,)
    with pytest.raises(InputError, match=f"{modality}"):
        read_case(named)
    second = next(p for p in lacking_case.images if p is not None and p != given)
    second.unlink()
    with pytest.raises(InputError, match="images missing: glioseg segments a case that lacks 1 of the four"):
        read_case(named, complete=False)


@pytest.mark.parametrize("convention", [MSD, BRATS2021, BRATS2023])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_write_label_keeps_grid_header_codes_and_round_trips(cohort_factory, tmp_path, layout, convention):
    case = read_case(find_cases(cohort_factory(layout))[0])
    out = write_label(tmp_path / "mask.nii.gz", case.label, case, convention)
    written = nib.load(out)
    source = nib.load(case.files.images[0])
    assert written.shape == case.label.shape
    np.testing.assert_array_equal(written.affine, source.affine)
    for key in ("qform_code", "sform_code", "xyzt_units"):
        assert written.header[key] == source.header[key]
    np.testing.assert_array_equal(convention.to_internal(np.asarray(written.dataobj)), case.label)
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nii.gz"]


def oblique_case(folder, qform_code: int, sform_code: int, same: bool):
    """A BraTS 2021 case on a rotated, anisotropic, left-handed grid, with qform and sform as asked, and header
    fields that describe the image's intensities (which a mask must not inherit)."""
    from glioseg.core.geometry import rotation_matrix

    rotation = rotation_matrix(np.array([0.3, -0.2, 0.5])) @ np.diag([-0.9, 1.1, 2.5])
    qform = np.eye(4)
    qform[:3, :3], qform[:3, 3] = rotation, (-90.0, 120.5, -60.25)
    sform = qform.copy()
    if not same:
        sform[:3, 3] += (3.0, -2.0, 1.5)  # a different transform in the sform
    rng = np.random.default_rng(0)
    folder.mkdir()
    for suffix in ("flair", "t1", "t1ce", "t2", "seg"):
        data = (rng.random((12, 10, 8)) * 4).astype(np.uint8) if suffix == "seg" else rng.random((12, 10, 8))
        data = np.where(data == 3, 4, data).astype(np.uint8) if suffix == "seg" else data.astype(np.float32) + 1
        image = nib.Nifti1Image(data, None)
        image.header.set_qform(qform, code=qform_code)
        image.header.set_sform(sform, code=sform_code)
        image.header.set_xyzt_units("mm", "sec")
        image.header["cal_min"], image.header["cal_max"] = 0.0, 900.0
        image.header["descrip"], image.header["intent_code"] = b"FLAIR 3D TSE", 1002
        nib.save(image, folder / f"{folder.name}_{suffix}.nii.gz")
    return folder


GEOMETRY = ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z",
            "srow_x", "srow_y", "srow_z", "xyzt_units")  # fmt: skip


@pytest.mark.parametrize(
    ("qform_code", "sform_code", "same"), [(1, 1, True), (1, 2, False), (2, 0, False), (0, 2, True)],
    ids=["oblique", "qform-differs-from-sform", "sform-code-0", "qform-code-0"],
)  # fmt: skip
def test_a_written_mask_keeps_the_geometry_exactly_and_nothing_else(tmp_path, qform_code, sform_code, same):
    case = read_case(oblique_case(tmp_path / "Case_1", qform_code, sform_code, same))
    out = write_label(tmp_path / "mask.nii.gz", case.label, case)
    written, source = nib.load(out), nib.load(case.files.images[0])
    for key in GEOMETRY:
        np.testing.assert_array_equal(written.header[key], source.header[key], err_msg=key)
    np.testing.assert_array_equal(written.header["pixdim"][:4], source.header["pixdim"][:4])
    np.testing.assert_allclose(written.affine, source.affine, atol=1e-6)
    assert written.get_data_dtype() == np.uint8 and written.shape == case.label.shape
    assert written.header["cal_max"] == 0 and written.header["intent_code"] == 0  # the FLAIR's are not a mask's
    assert written.header["descrip"].tobytes().strip(b"\0") == b""
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(nib.load(case.files.label).dataobj))


def test_every_real_brats2018_case_reads(brats2018_sample):
    cases = find_cases(brats2018_sample)
    assert len(cases) == 12
    for files in cases:
        case = read_case(files)
        assert case.image.shape == (4, 240, 240, 155) and case.image.dtype == np.float32
        assert case.convention is BRATS2021 and case.spacing == (1.0, 1.0, 1.0)
        assert np.allclose(np.diag(case.affine), [-1, -1, 1, 1])
        assert set(np.unique(case.label)) <= {0, 1, 2, 3} and (case.label > 0).any()
        # FLAIR is the first channel: edema is brighter than normal brain on FLAIR
        brain = case.image[0] > 0
        assert case.image[0][case.label == 1].mean() > case.image[0][brain & (case.label == 0)].mean()


def test_real_brats2018_label_convention_is_converted(brats2018_sample):
    files = find_cases(brats2018_sample)[0]
    on_disk = np.asarray(nib.load(files.label).dataobj)
    case = read_case(files)
    np.testing.assert_array_equal(case.label == 1, on_disk == 2)  # edema: BraTS 2 -> internal 1
    np.testing.assert_array_equal(case.label == 2, on_disk == 1)  # core: BraTS 1 -> internal 2
    np.testing.assert_array_equal(case.label == 3, on_disk == 4)  # enhancing: 4 -> 3


def test_real_brats2023_case_reads_without_label(brats2023_sample):
    case = read_case(brats2023_sample / "BraTS-GLI-00001-000")
    assert case.layout == "brats2023" and case.label is None
    assert case.image.shape == (4, 240, 240, 155)
    assert case.files.images[0].name.endswith("-t2f.nii.gz")  # FLAIR first


def test_not_a_case_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no BraTS-named NIfTI files"):
        read_case(tmp_path)


def test_a_new_case_folder_layout_is_one_record(monkeypatch, tmp_path):
    """Adding a layout means adding its record to the registry: phantoms are written in it and read back."""
    record = Layout("brats2030", "BraTS 2030", BRATS2023, "BraTS-X-{:04d}",
                    {"FLAIR": "fl", "T1": "t1pre", "T1Gd": "t1post", "T2": "t2w", "label": "mask"}, ".")  # fmt: skip
    monkeypatch.setitem(LAYOUTS, "brats2030", record)
    write_cohort(tmp_path, CohortConfig(2, "brats2030", shape=(24, 24, 16)))
    assert sorted(p.name for p in (tmp_path / "BraTS-X-0001").iterdir()) == [
        "BraTS-X-0001.fl.nii.gz", "BraTS-X-0001.mask.nii.gz", "BraTS-X-0001.t1post.nii.gz",
        "BraTS-X-0001.t1pre.nii.gz", "BraTS-X-0001.t2w.nii.gz",
    ]  # fmt: skip
    cases = find_cases(tmp_path)
    assert [(c.case_id, c.layout, c.convention) for c in cases] == [
        ("BraTS-X-0001", "brats2030", BRATS2023), ("BraTS-X-0002", "brats2030", BRATS2023)
    ]  # fmt: skip
    assert read_case(cases[0]).label.any()
