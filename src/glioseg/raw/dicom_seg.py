"""A mask as DICOM SEG (highdicom): one segment per tumour class, referencing the T1Gd series it was drawn on, so
a PACS viewer overlays it on that series.

The mask lies on the NIfTI grid dcm2niix made of the series; each DICOM pixel takes the mask voxel at its own
position (ImagePositionPatient, ImageOrientationPatient, PixelSpacing of its frame: single-frame series and enhanced
multi-frame images alike), so frames, rows and columns follow the DICOM files, not dcm2niix's voxel order.
Codes: DICOM's context group for brain lesions (CID 7168): Necrosis (SCT 6574001, which DICOM also uses for the
non-enhancing core), Edema (SCT 79654002), and Enhancing Lesion (NCIt C113842: SNOMED CT has no such concept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.core.version import __version__
from glioseg.raw.dicom import frame_geometry

SEGMENTS = {  # internal class -> (segment label, coding scheme, code, meaning)
    CORE: ("Necrotic and non-enhancing tumour core", "SCT", "6574001", "Necrosis"),
    EDEMA: ("Peritumoural edema", "SCT", "79654002", "Edema"),
    ENHANCING: ("Enhancing tumour", "NCIt", "C113842", "Enhancing Lesion"),
}
SERIES_DESCRIPTION = "glioseg tumour segmentation (research use only)"


def frames_of(label: np.ndarray, affine: np.ndarray, datasets: list) -> np.ndarray:
    """``(frames, rows, columns)`` internal classes: the label voxel nearest each DICOM pixel (0 off the grid)."""
    to_voxel = np.linalg.inv(affine)
    frames = []
    for dataset in datasets:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
        for position, row_direction, column_direction, (row_spacing, column_spacing) in frame_geometry(dataset):
            lps = (position[:, None, None] + row_direction[:, None, None] * column_spacing * c
                   + column_direction[:, None, None] * row_spacing * r)  # fmt: skip
            ras = lps * np.array([-1.0, -1.0, 1.0])[:, None, None]
            voxel = np.rint(np.tensordot(to_voxel[:3, :3], ras, axes=1) + to_voxel[:3, 3, None, None]).astype(int)
            inside = np.all((voxel >= 0) & (voxel < np.array(label.shape)[:, None, None]), axis=0)
            frame = np.zeros((rows, columns), np.uint8)
            frame[inside] = label[voxel[0][inside], voxel[1][inside], voxel[2][inside]]
            frames.append(frame)
    return np.stack(frames)


def write_dicom_seg(path: Path, label: np.ndarray, affine: np.ndarray, source_files: tuple[Path, ...]) -> Path | None:
    """Write ``label`` (internal classes on the grid ``affine``) as a DICOM SEG of the series ``source_files``; None
    (nothing written) when the label holds no tumour, since a SEG needs a segment with pixels."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    datasets = [pydicom.dcmread(p) for p in source_files]
    if len(datasets) > 1:  # single-frame series: in slice order, as viewers stack them
        normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
        datasets.sort(key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))))
    frames = frames_of(label, affine, datasets)
    present = [value for value in SEGMENTS if (frames == value).any()]
    if not present:
        return None
    numbered = np.zeros_like(frames)
    for number, value in enumerate(present, start=1):  # segment numbers run 1, 2, ... without gaps
        numbered[frames == value] = number
    algorithm = hd.AlgorithmIdentificationSequence(name="glioseg", version=__version__,
                                                   family=codes.cid7162.ArtificialIntelligence)  # fmt: skip
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=SEGMENTS[value][0],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=Code(SEGMENTS[value][2], SEGMENTS[value][1], SEGMENTS[value][3]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            anatomic_regions=[codes.SCT.Brain],
        )
        for number, value in enumerate(present, start=1)
    ]
    try:
        segmentation = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=numbered,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=int(getattr(datasets[0], "SeriesNumber", 0) or 0) + 1000,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="glioseg",
            manufacturer_model_name="glioseg 3D U-Net",
            software_versions=__version__,
            device_serial_number="none",
            series_description=SERIES_DESCRIPTION,
        )
    except (ValueError, AttributeError) as error:
        raise InputError(Path(source_files[0]).parent, f"no DICOM SEG can reference this series ({error})",
                         "use the NIfTI mask, or export the T1Gd series with its full header") from None  # fmt: skip
    with atomic_path(path) as temporary:
        segmentation.save_as(temporary)
    return path
