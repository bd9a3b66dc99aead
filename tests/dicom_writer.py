"""Write volumes as DICOM MR series the way a scanner exports them (one file per slice, ImagePositionPatient and
ImageOrientationPatient from the voxel grid, rescaled integer pixels, the tags glioseg.raw.dicom reads the sequence
from), so tests and benchmarks can give real BraTS cases to glioseg as a DICOM study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

LPS = np.array([-1.0, -1.0, 1.0])

SEQUENCE_TAGS = {  # realistic tags per sequence: what a Siemens 3 T exam writes
    "FLAIR": {"SeriesDescription": "t2_tirm_tra_dark-fluid", "RepetitionTime": 9000, "EchoTime": 81,
              "InversionTime": 2500, "ScanningSequence": "SE\\IR"},
    "T1": {"SeriesDescription": "t1_mprage_sag", "RepetitionTime": 2300, "EchoTime": 2.3, "InversionTime": 900,
           "ScanningSequence": "GR\\IR"},
    "T1Gd": {"SeriesDescription": "t1_mprage_tra_post", "RepetitionTime": 2300, "EchoTime": 2.3,
             "InversionTime": 900, "ScanningSequence": "GR\\IR", "ContrastBolusAgent": "Gadovist"},
    "T2": {"SeriesDescription": "t2_tse_tra", "RepetitionTime": 5000, "EchoTime": 95, "ScanningSequence": "SE"},
}  # fmt: skip


def new_study(patient: str = "GLIOSEG^TEST") -> dict:
    return {"PatientName": patient, "PatientID": "GS0001", "PatientBirthDate": "19700101", "PatientSex": "F",
            "StudyInstanceUID": generate_uid(), "StudyDate": "20260101", "StudyTime": "120000", "StudyID": "1",
            "AccessionNumber": "A1", "ReferringPhysicianName": "", "StudyDescription": "MR head",
            "FrameOfReferenceUID": generate_uid()}  # fmt: skip


def write_series(volume: np.ndarray, affine: np.ndarray, folder: Path, study: dict, number: int,
                 tags: dict) -> list[Path]:  # fmt: skip
    """One file per slice along the third voxel axis: rows follow the second axis, columns the first."""
    folder.mkdir(parents=True, exist_ok=True)
    columns_step, rows_step, slice_step = (affine[:3, axis] * LPS for axis in range(3))
    slope = max(float(volume.max()), 1.0) / 30000
    series_uid = generate_uid()
    paths = []
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        for key, value in {**study, **tags}.items():
            setattr(ds, key, value)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.Manufacturer, ds.MagneticFieldStrength = "MR", "SIEMENS", 3
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, number, k + 1
        ds.SeriesDate, ds.SeriesTime, ds.ContentDate, ds.ContentTime = "20260101", "120000", "20260101", "120000"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.ProtocolName = tags["SeriesDescription"]
        ds.MRAcquisitionType = "3D" if "mprage" in tags["SeriesDescription"] else "2D"
        ds.SequenceVariant, ds.ScanOptions = "SP", ""
        ds.PositionReferenceIndicator, ds.PatientPosition = "", "HFS"
        ds.ImagePositionPatient = [float(v) for v in (affine[:3, :3] @ [0, 0, k] + affine[:3, 3]) * LPS]
        ds.ImageOrientationPatient = [float(v) for v in (*columns_step / np.linalg.norm(columns_step),
                                                         *rows_step / np.linalg.norm(rows_step))]  # fmt: skip
        ds.PixelSpacing = [float(np.linalg.norm(rows_step)), float(np.linalg.norm(columns_step))]
        ds.SliceThickness = ds.SpacingBetweenSlices = float(np.linalg.norm(slice_step))
        ds.SliceLocation = float(ds.ImagePositionPatient[2])
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{slope:.10g}", "0", "US"
        pixels = np.clip(np.rint(volume[:, :, k].T / slope), 0, 65535).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        path = folder / f"IM{k + 1:04d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def write_study(volumes: dict[str, tuple[np.ndarray, np.ndarray]], folder: Path) -> dict[str, list[Path]]:
    """``{sequence: (volume, affine)}`` -> a study folder of one series per sequence (and a localiser beside)."""
    study = new_study()
    written = {}
    for number, (role, (volume, affine)) in enumerate(volumes.items(), start=2):
        written[role] = write_series(volume, affine, folder / f"S{number:02d}_{role}", study, number,
                                     SEQUENCE_TAGS[role])  # fmt: skip
    localiser = next(iter(volumes.values()))
    write_series(localiser[0][:, :, ::40], localiser[1] @ np.diag([1, 1, 40, 1.0]), folder / "S01_localizer",
                 study, 1, {"SeriesDescription": "localizer", "RepetitionTime": 8.6, "EchoTime": 4,
                            "ScanningSequence": "GR"})  # fmt: skip
    return written


def write_phantom_study(folder: Path, roles: tuple[str, ...] = ("FLAIR", "T1", "T1Gd", "T2")) -> dict[str, list[Path]]:
    """A small DICOM study of a phantom (2 mm voxels, 50 x 50 x 36 around its tumour; seconds to segment) with the
    series of ``roles``: what the PACS tests store and fetch."""
    from glioseg.datasets.layouts import MODALITIES
    from glioseg.datasets.phantoms import make_phantom

    phantom = make_phantom(0, 3, (120, 120, 78))
    centre = np.round(np.argwhere(phantom.label > 0).mean(0)).astype(int)
    low = np.clip(centre - (25, 25, 18), 0, np.array(phantom.label.shape) - (50, 50, 36))
    crop = tuple(slice(start, start + size) for start, size in zip(low, (50, 50, 36)))
    affine = phantom.affine.copy()
    affine[:3, 3] = phantom.affine[:3, :3] @ low + phantom.affine[:3, 3]
    return write_study({role: (phantom.image[MODALITIES.index(role)][crop], affine) for role in roles}, folder)


def sr_values(path: Path) -> tuple[dict[str, float], list[dict], bool]:
    """What a glioseg DICOM SR says, read back by highdicom: volumes by ``volumes.csv`` column, lesions as
    ``lesions.csv`` rows (kind, lesion, volume and diameters), and whether its class groups reference a SEG."""
    import highdicom as hd

    from glioseg.core.labels import CLASS_NAMES
    from glioseg.raw.dicom_seg import SEGMENTS
    from glioseg.raw.dicom_sr import REGION_NAMES, REVIEW_GROUP

    report = hd.sr.srread(path)
    volumes, lesions = {}, []
    by_code = {code: CLASS_NAMES[value] for value, (_, _, code, _) in SEGMENTS.items()}
    by_label = {label: CLASS_NAMES[value] for value, (label, _, _, _) in SEGMENTS.items()}
    by_region = {name: region for region, name in REGION_NAMES.items()}
    segmented = report.content.get_volumetric_roi_measurement_groups()
    for group in segmented:
        volumes[f"{by_code[group.finding_type.value]}_ml"] = group.get_measurements()[0].value
    for group in report.content.get_image_measurement_groups():
        name = str(group.tracking_identifier)
        values = {m.name.meaning: m.value for m in group.get_measurements()}
        if name == REVIEW_GROUP:
            continue
        if name in by_region or name in by_label:
            volumes[f"{by_region.get(name) or by_label[name]}_ml"] = values["Volume"]
            continue
        kind, _, number = name.split()
        lesions.append({"kind": kind, "lesion": int(number), "volume_ml": values["Volume"],
                        "longest_diameter_mm": values["Long axis"],
                        "perpendicular_diameter_mm": values["Short axis"],
                        "product_mm2": values["Bidimensional product (RANO)"]})  # fmt: skip
    return volumes, lesions, bool(segmented)


def sr_unreliable(path: Path) -> list[str]:
    """The regions a glioseg DICOM SR's review group names unreliable (a sequence absent), read back by highdicom."""
    import highdicom as hd

    from glioseg.raw.dicom_sr import REVIEW_GROUP

    for group in hd.sr.srread(path).content.get_image_measurement_groups():
        if str(group.tracking_identifier) == REVIEW_GROUP:
            return [item.value.value for item in group.get_qualitative_evaluations()[1:]]
    return []


def sr_review(path: Path) -> tuple[float, bool] | None:
    """The review score and flag a glioseg DICOM SR reports, read back by highdicom (None: it reports none)."""
    import highdicom as hd

    from glioseg.raw.dicom_sr import REVIEW_GROUP

    for group in hd.sr.srread(path).content.get_image_measurement_groups():
        if str(group.tracking_identifier) == REVIEW_GROUP:
            advised = group.get_qualitative_evaluations()[0].value.meaning == "Yes"
            return group.get_measurements()[0].value, advised
    return None
