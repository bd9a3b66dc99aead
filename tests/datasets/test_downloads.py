"""Every official download read as it unpacks: real BraTS 2018 sample cases arranged exactly as each release ships
its data (folder shape, file names, compression, spreadsheets beside the cases, label numbering, its known quirks),
given top folder first to `check` (and, for the layouts training treats differently, `train` and `predict`), with no
conversion.

The real cases are taken at every second voxel (120 x 120 x 78 at 2 mm): still real scans and expert labels, a
quarter of the reading time."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import glioseg_cli
from glioseg.core.labels import BRATS2021, BRATS2023, CORE, EDEMA, ENHANCING, MSD, RESECTION_CAVITY
from glioseg.datasets.cases import find_cases, read_case
from glioseg.datasets.layouts import MODALITIES

# The official file names, spelled here rather than taken from glioseg's registry, so the test checks the registry
BRATS2021_SUFFIXES = {"FLAIR": "flair", "T1": "t1", "T1Gd": "t1ce", "T2": "t2"}
BRATS2023_SUFFIXES = {"FLAIR": "t2f", "T1": "t1n", "T1Gd": "t1c", "T2": "t2w"}

SAMPLE_CASES = ("Brats18_TCIA02_135_1", "Brats18_CBICA_ABM_1", "Brats18_2013_20_1")


@pytest.fixture(scope="module")
def real(brats2018_sample):
    """``[(image (4, X, Y, Z) float32, internal label, affine)]`` of three real cases at 2 mm."""
    cases = []
    for name in SAMPLE_CASES:
        case = read_case(brats2018_sample / name)
        affine = case.affine @ np.diag([2.0, 2.0, 2.0, 1.0])
        cases.append((case.image[:, ::2, ::2, ::2].copy(), case.label[::2, ::2, ::2].copy(), affine))
    return cases


def save(array: np.ndarray, affine: np.ndarray, path: Path, dtype=np.int16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array).astype(dtype), affine), path)
    return path


def brats_case(folder: Path, case_id: str, case, suffixes: dict, separator: str, convention, ending=".nii.gz"):
    image, label, affine = case
    for index, modality in enumerate(MODALITIES):
        save(image[index], affine, folder / case_id / f"{case_id}{separator}{suffixes[modality]}{ending}")
    if convention is not None:
        save(convention.from_internal(label), affine, folder / case_id / f"{case_id}{separator}seg{ending}", np.uint8)
    return folder / case_id


def brats2018(root: Path, real) -> Path:
    """MICCAI_BraTS_2018_Data_Training/{HGG,LGG}/Brats18_*/..., survival_data.csv at the top."""
    top = root / "MICCAI_BraTS_2018_Data_Training"
    for grade, case_id, case in (("HGG", "Brats18_TCIA02_135_1", real[0]), ("HGG", "Brats18_CBICA_ABM_1", real[1]),
                                 ("LGG", "Brats18_2013_20_1", real[2])):  # fmt: skip
        brats_case(top / grade, case_id, case, BRATS2021_SUFFIXES, "_", BRATS2021)
    (top / "survival_data.csv").write_text("Brats18ID,Age,Survival,ResectionStatus\nBrats18_TCIA02_135_1,60,300,GTR\n")
    return root


def brats2019(root: Path, real) -> Path:
    """MICCAI_BraTS_2019_Data_Training/{HGG,LGG}/BraTS19_*/..., name_mapping.csv and survival_data.csv."""
    top = root / "MICCAI_BraTS_2019_Data_Training"
    for grade, case_id, case in (("HGG", "BraTS19_TCIA02_135_1", real[0]), ("HGG", "BraTS19_CBICA_ABM_1", real[1]),
                                 ("LGG", "BraTS19_2013_20_1", real[2])):  # fmt: skip
        brats_case(top / grade, case_id, case, BRATS2021_SUFFIXES, "_", BRATS2021)
    (top / "name_mapping.csv").write_text("Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,BraTS_2019_subject_ID\n")
    (top / "survival_data.csv").write_text("BraTS19ID,Age,Survival,ResectionStatus\n")
    return root


def brats2020(root: Path, real) -> Path:
    """MICCAI_BraTS2020_TrainingData/BraTS20_Training_NNN/*.nii (not gzipped), name_mapping.csv, survival_info.csv;
    case 355's label shipped as W39_1998.09.19_Segm.nii."""
    top = root / "MICCAI_BraTS2020_TrainingData"
    brats_case(top, "BraTS20_Training_001", real[0], BRATS2021_SUFFIXES, "_", BRATS2021, ".nii")
    brats_case(top, "BraTS20_Training_002", real[1], BRATS2021_SUFFIXES, "_", BRATS2021, ".nii")
    odd = brats_case(top, "BraTS20_Training_355", real[2], BRATS2021_SUFFIXES, "_", None, ".nii")
    save(BRATS2021.from_internal(real[2][1]), real[2][2], odd / "W39_1998.09.19_Segm.nii", np.uint8)
    (top / "name_mapping.csv").write_text("Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,BraTS_2019_subject_ID,"
                                          "BraTS_2020_subject_ID\nHGG,NA,NA,NA,BraTS20_Training_001\n")  # fmt: skip
    (top / "survival_info.csv").write_text("Brats20ID,Age,Survival_days,Extent_of_Resection\n")
    return root


def brats2021(root: Path, real) -> Path:
    """BraTS2021_Training_Data/BraTS2021_NNNNN/*.nii.gz (the RSNA-ASNR-MICCAI release)."""
    for number, case in enumerate(real):
        brats_case(root / "BraTS2021_Training_Data", f"BraTS2021_{number:05d}", case, BRATS2021_SUFFIXES, "_",
                   BRATS2021)  # fmt: skip
    return root


def brats2023(root: Path, real) -> Path:
    """ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData/BraTS-GLI-NNNNN-000/*-t2f/-t1n/-t1c/-t2w/-seg.nii.gz; the
    first patient scanned twice (time points -000 and -001)."""
    top = root / "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData"
    for case_id, case in (("BraTS-GLI-00000-000", real[0]), ("BraTS-GLI-00000-001", real[1]),
                          ("BraTS-GLI-00002-000", real[2])):  # fmt: skip
        brats_case(top, case_id, case, BRATS2023_SUFFIXES, "-", BRATS2023)
    return root


def brats2024(root: Path, real) -> Path:
    """BraTS2024-BraTS-GLI-TrainingData/training_data1_v2/BraTS-GLI-NNNNN-100/...: post-treatment cases, one with a
    resection cavity (4) and no enhancing tumour (3), as this release rightly has."""
    top = root / "BraTS2024-BraTS-GLI-TrainingData" / "training_data1_v2"
    brats_case(top, "BraTS-GLI-02057-100", real[0], BRATS2023_SUFFIXES, "-", BRATS2023)
    brats_case(top, "BraTS-GLI-02058-100", real[1], BRATS2023_SUFFIXES, "-", BRATS2023)
    image, label, affine = real[2]
    cavity = np.where(label == ENHANCING, RESECTION_CAVITY, label).astype(np.uint8)
    brats_case(top, "BraTS-GLI-02059-101", (image, cavity, affine), BRATS2023_SUFFIXES, "-", BRATS2023)
    return root


def msd(root: Path, real) -> Path:
    """Task01_BrainTumour/imagesTr/BRATS_NNN.nii.gz (4D), labelsTr, imagesTs, dataset.json, macOS ._ files; here the
    channels are stored in another order than MSD's, which only dataset.json's "modality" says."""
    top = root / "Task01_BrainTumour"
    order = (3, 0, 2, 1)  # T2, FLAIR, T1Gd, T1
    names = {0: "FLAIR", 1: "T1w", 2: "t1gd", 3: "T2w"}
    for number, (image, label, affine) in enumerate(real, start=1):
        folder = "imagesTs" if number == 3 else "imagesTr"
        save(np.stack([image[c] for c in order], axis=-1), affine, top / folder / f"BRATS_{number:03d}.nii.gz")
        if folder == "imagesTr":
            save(MSD.from_internal(label), affine, top / "labelsTr" / f"BRATS_{number:03d}.nii.gz", np.uint8)
        (top / folder / f"._BRATS_{number:03d}.nii.gz").write_bytes(b"\0\5\26\7 AppleDouble")
    meta = {"name": "BRATS", "tensorImageSize": "4D", "modality": {str(i): names[c] for i, c in enumerate(order)},
            "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
            "numTraining": 2, "numTest": 1}  # fmt: skip
    (top / "dataset.json").write_text(json.dumps(meta))
    return root


def nnunet(root: Path, real) -> Path:
    """Dataset137_BraTS2021/imagesTr/<case>_000X.nii.gz, labelsTr/<case>.nii.gz, dataset.json with channel names in
    nnU-Net's own BraTS order (T1, T1ce, T2, FLAIR) and the region-based labels nnU-Net uses for BraTS."""
    top = root / "Dataset137_BraTS2021"
    order = (1, 2, 3, 0)  # T1, T1Gd, T2, FLAIR
    for number, (image, label, affine) in enumerate(real):
        for channel, source in enumerate(order):
            save(image[source], affine, top / "imagesTr" / f"BraTS2021_{number:05d}_{channel:04d}.nii.gz")
        save(MSD.from_internal(label), affine, top / "labelsTr" / f"BraTS2021_{number:05d}.nii.gz", np.uint8)
    meta = {"channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"},
            "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
            "regions_class_order": [1, 2, 3], "numTraining": 3, "file_ending": ".nii.gz"}  # fmt: skip
    (top / "dataset.json").write_text(json.dumps(meta))
    return root


DOWNLOADS = [brats2018, brats2019, brats2020, brats2021, brats2023, brats2024, msd, nnunet]


@pytest.mark.parametrize("download", DOWNLOADS, ids=lambda d: d.__name__)
def test_a_whole_download_reads_with_its_real_labels(real, tmp_path, download):
    top = download(tmp_path, real)
    cases = find_cases(top)
    assert len(cases) == 3
    read = sorted((read_case(files) for files in cases), key=lambda c: c.image[0].sum())
    expected = sorted(real, key=lambda c: c[0][0].sum())
    for case, (image, label, _) in zip(read, expected):
        np.testing.assert_array_equal(case.image, image)  # every channel where it belongs
        if case.label is not None:
            if download is brats2024 and (case.label == RESECTION_CAVITY).any():
                label = np.where(label == ENHANCING, RESECTION_CAVITY, label)
            np.testing.assert_array_equal(case.label, label)
    labelled = [c for c in read if c.label is not None]
    assert len(labelled) == (2 if download is msd else 3)
    assert {EDEMA, CORE, ENHANCING} <= set(np.unique(np.concatenate([c.label.ravel() for c in labelled])))


@pytest.mark.parametrize("download", DOWNLOADS, ids=lambda d: d.__name__)
def test_check_takes_the_top_folder(real, tmp_path, download):
    top = download(tmp_path / "download", real)
    checked = glioseg_cli("check", top)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "3 cases" in checked.stderr and "read as" in checked.stderr


# train and predict find cases as check does; these layouts also differ in what training does with them: two time
# points of one patient (BraTS 2023), a 4D file per case with unlabelled test cases (MSD), channel files (nnU-Net)
@pytest.mark.parametrize("download", [brats2023, msd, nnunet], ids=lambda d: d.__name__)
def test_train_and_predict_take_the_top_folder(real, tmp_path, download):
    top = download(tmp_path / "download", real)
    run = tmp_path / "run"
    trained = glioseg_cli("train", top, "--out", run, "--cache", tmp_path / "cache", "--folds", "2", "--patch", "16",
                          "16", "16", "--width", "4", "--depth", "3", "--epochs", "1", "--steps-per-epoch", "1",
                          "--workers", "0", "--spacing", "4", "4", "4")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    splits = json.loads((run / "splits.json").read_text())
    if download is brats2023:  # two time points of one patient: always in the same fold
        assert any({"BraTS-GLI-00000-000", "BraTS-GLI-00000-001"} <= set(s["val"]) for s in splits)
    out = tmp_path / "predictions"
    predicted = glioseg_cli("predict", run, top, "--out", out)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert len(list(out.glob("*.nii.gz"))) == 3
