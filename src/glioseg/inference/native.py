"""Raw scans in ``glioseg predict``: input that is not BraTS-ready is prepared first (:mod:`glioseg.raw.prepare`),
segmented on the prepared grid, and its mask brought back onto the native grid of the T1Gd as it came (and, on
request, of every other sequence). Each raw case prints where its time went, stage by stage.

What counts as raw is :mod:`glioseg.inference.inputs`'s one decision. The way back interpolates the probabilities
(linear) onto the native grid and takes the label there, as nnU-Net does when it returns to the original spacing
(against nearest-neighbour resampling of the label: a tie, ``benchmarks/native_resampling.py``).

A raw case writes, in the prediction folder: ``<case>.nii.gz`` (the mask on the native T1Gd grid; volumes and
lesions are measured on it), ``<case>_qc.png`` (that mask over the native T1Gd), ``<case>_seg.dcm`` (DICOM SEG,
for DICOM input, :mod:`glioseg.raw.dicom_seg`), ``<case>_on_<sequence>.nii.gz`` (``--native-grids all``), and
``prepared/<case>/`` (the prepared case) with ``prepared/<case>.nii.gz``, its mask on the prepared grid (what the
report and the viewer overlay on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from glioseg.core.config import REFERENCE, PredictConfig
from glioseg.core.files import atomic_path
from glioseg.core.labels import LabelConvention
from glioseg.core.registration import RigidTransform, resample
from glioseg.core.stopwatch import Stopwatch, stages_line
from glioseg.datasets.cases import Case, nifti_like, read_case, write_label
from glioseg.datasets.layouts import MODALITIES, locate_case
from glioseg.evaluation.measurements import measure_case
from glioseg.evaluation.metrics import volumes_ml
from glioseg.inference.inputs import RawInput
from glioseg.inference.postprocess import clean_label, label_from_probabilities
from glioseg.inference.review import Review, write_review
from glioseg.raw.prepare import PREPARED_LAYOUT, prepare
from glioseg.raw.prepared import PreparedFiles, PrepareRecord

PREPARED_FOLDER = "prepared"


@dataclass(frozen=True)
class Grid:
    """A native voxel grid: its header (shape, affine and codes, as the mask written on it keeps them)."""

    header: nib.Nifti1Header

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.header.get_data_shape()[:3])  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        return self.header.get_best_affine()

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(z) for z in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def native_grids(files: PreparedFiles) -> dict[str, Grid]:
    """Every sequence's native grid, from a prepared case's record (the T1Gd's from its kept image's header)."""
    grids = {}
    for role, grid in PrepareRecord.read(files).native_grids.items():
        header = nib.Nifti1Header()
        header.set_data_shape(grid["shape"])
        header.set_sform(np.array(grid["affine"]), 1)
        header.set_qform(np.array(grid["affine"]), 1)
        grids[role] = Grid(header)
    grids[REFERENCE] = Grid(nib.load(files.native_reference).header)
    return grids


def motion_onto(files: PreparedFiles, role: str) -> RigidTransform:
    """Carries a sequence's native points onto the prepared (T1Gd) grid's: what resampling onto the native grid
    needs (the inverse of the registration's reference -> input transform; identity for the T1Gd)."""
    import SimpleITK as sitk

    found = sitk.ReadTransform(str(files.transform(role)))
    return RigidTransform(found if role == REFERENCE else found.GetInverse(), 0.0, 0.0, 0.0)


def native_label(probabilities: torch.Tensor, affine: np.ndarray, grid: Grid, motion: RigidTransform,
                 head: str) -> np.ndarray:  # fmt: skip
    """Prepared-grid probabilities ``(C, X, Y, Z)`` -> internal classes on ``grid``: each channel interpolated
    linearly, one at a time (a 512 x 512 x 300 grid holds one float volume more), into the one rule
    (:func:`glioseg.inference.postprocess.label_from_probabilities`)."""
    channels = (resample(channel.numpy(), affine, grid.shape, grid.affine, motion, labels=False)
                for channel in probabilities)  # fmt: skip
    return label_from_probabilities(channels, head)


def write_on_grid(path: Path, label: np.ndarray, grid: Grid, convention: LabelConvention) -> Path:
    with atomic_path(path) as temporary:
        nib.save(nifti_like(convention.from_internal(label), grid.header, np.uint8), temporary)
    return path


@dataclass(frozen=True)
class RawPrediction:
    """What :func:`predict_raw` made: the prepared case and its internal label there (what the report and the
    viewer show), the native T1Gd mask's path and its volumes (what ``volumes.csv`` reports), the case's review."""

    case: Case
    label: np.ndarray
    native_mask: Path
    volumes_ml: dict[str, float]
    review: Review


def predict_raw(model, raw: RawInput, out: Path, settings: PredictConfig, convention: LabelConvention) -> RawPrediction:
    """Prepare (or reuse what an interrupted run prepared), segment, go back to the native grids; the native
    T1Gd mask last (it marks the case done)."""
    import sys

    print(f"{raw.case_id}: not BraTS-ready ({raw.reason}): prepared first", file=sys.stderr)
    folder = out / PREPARED_FOLDER / raw.case_id
    timings: dict[str, float] = {}
    if not folder.exists():
        prepare(raw.nifti if raw.nifti is not None else raw.source, out / PREPARED_FOLDER, raw.case_id,
                settings_choices(settings), complete=settings.require_all, timings=timings)  # fmt: skip
    clock = Stopwatch(timings)
    files = PreparedFiles(folder)
    case = read_case(locate_case(folder, complete=False))
    prediction = model.predict(case, settings, keep_probabilities=True)
    write_label(out / PREPARED_FOLDER / f"{raw.case_id}.nii.gz", prediction.label, case, convention)
    clock.lap("segment")
    grids = native_grids(files)
    roles = [m for m in MODALITIES if m not in case.absent] if settings.native_grids == "all" else [REFERENCE]
    labels = {}
    for role in roles:
        label = native_label(prediction.probabilities, case.affine, grids[role], motion_onto(files, role),
                             model.config.model.head)  # fmt: skip
        labels[role] = clean_label(label, grids[role].spacing, settings.postprocess)
        if role != REFERENCE:
            write_on_grid(out / f"{raw.case_id}_on_{PREPARED_LAYOUT.suffixes[role]}.nii.gz", labels[role], grids[role],
                          convention)  # fmt: skip
    native_t1gd = nib.load(files.native_reference)
    _save_native_qc(out / f"{raw.case_id}_qc.png", native_t1gd, labels[REFERENCE], raw.case_id)
    clock.lap("native grids")
    if raw.nifti is None:
        _write_dicom_results(out, raw.case_id, labels[REFERENCE], grids[REFERENCE], files, model.fingerprint(),
                             prediction.review)  # fmt: skip
        clock.lap("DICOM SEG and SR")
    write_review(out, raw.case_id, prediction.review)
    native_mask = write_on_grid(out / f"{raw.case_id}.nii.gz", labels[REFERENCE], grids[REFERENCE], convention)
    clock.lap("write")
    print(f"{raw.case_id}: {stages_line(timings)}", file=sys.stderr)
    return RawPrediction(case, prediction.label, native_mask, volumes_ml(labels[REFERENCE], grids[REFERENCE].spacing),
                         prediction.review)  # fmt: skip


def _write_dicom_results(out: Path, case_id: str, label: np.ndarray, grid: Grid, files: PreparedFiles,
                         model_id: str, review: Review) -> None:  # fmt: skip
    """A DICOM study's SEG (``<case>_seg.dcm``) and measurements as an SR (``<case>_sr.dcm``), with the numbers
    ``volumes.csv`` and ``lesions.csv`` will hold (the one :func:`measure_case`)."""
    import sys

    from glioseg.raw.dicom_seg import write_dicom_seg
    from glioseg.raw.dicom_sr import write_dicom_sr

    source = reference_series_files(files)
    seg = write_dicom_seg(out / f"{case_id}_seg.dcm", label, grid.affine, source)
    if seg is None:
        print(f"{case_id}: no tumour found, so no DICOM SEG (a SEG holds a segment); the SR says so", file=sys.stderr)
    volumes, lesions = measure_case(label, grid.affine, grid.header.get_zooms())
    written = review.row()  # the numbers quality.csv holds
    write_dicom_sr(out / f"{case_id}_sr.dcm", volumes, lesions, source, seg, model_id,
                   (float(written["review_score"]), review.advised), review.unreliable)  # fmt: skip


def settings_choices(settings: PredictConfig) -> dict[str, str]:
    from glioseg.raw.dicom import parse_choices

    return parse_choices(list(settings.series))


def reference_series_files(files: PreparedFiles) -> tuple[Path, ...]:
    """The files of the T1Gd series prepare chose (``prepare.json`` records them), which the DICOM SEG references."""
    return tuple(Path(path) for path in PrepareRecord.read(files).sources[REFERENCE]["files"])


def _save_native_qc(path: Path, native_t1gd: nib.Nifti1Image, label: np.ndarray, case_id: str) -> None:
    from glioseg.evaluation.figures import save_case_preview

    image = np.asarray(native_t1gd.dataobj, dtype=np.float32)[None]
    save_case_preview(image, label, path, f"{case_id}: mask on the native T1Gd grid", native_t1gd.affine,
                      columns=("T1Gd (native grid)",))  # fmt: skip
