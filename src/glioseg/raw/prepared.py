"""What ``glioseg prepare`` leaves beside a case it made, written by :mod:`glioseg.raw.prepare` and read back by
:mod:`glioseg.inference.native` (masks go back onto the native grids through it) and the CLI.

A prepared case folder ``<case>/`` holds the four sequences in the BraTS 2021 layout and ``prepare/``:
``prepare.json`` (:class:`PrepareRecord`), ``transforms/<sequence>.tfm`` (reference -> input, ITK's convention),
``native_t1gd.nii.gz`` (the T1Gd as it came), ``brain_mask.nii.gz`` and ``qc.png``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from glioseg.datasets.layouts import PREPARE_RECORD


@dataclass(frozen=True)
class PreparedFiles:
    """Where each file of a prepared case's ``prepare/`` folder is."""

    case_folder: Path

    @property
    def folder(self) -> Path:
        return self.case_folder / PREPARE_RECORD

    @property
    def record(self) -> Path:
        return self.folder / "prepare.json"

    @property
    def brain_mask(self) -> Path:
        return self.folder / "brain_mask.nii.gz"

    @property
    def native_reference(self) -> Path:
        """The reference sequence (T1Gd) as it came: the grid masks go back onto, and its QC image."""
        return self.folder / "native_t1gd.nii.gz"

    @property
    def qc(self) -> Path:
        return self.folder / "qc.png"

    def transform(self, role: str) -> Path:
        return self.folder / "transforms" / f"{role}.tfm"


@dataclass(frozen=True)
class PrepareRecord:
    """``prepare.json``: what was done to make the case, and what the way back to the native grids needs.

    Attributes:
        case: the case's name.
        reference: the sequence whose grid (at ``spacing_mm``) the case lies on.
        shape: the prepared grid, voxels.
        input_skull_stripped: whether the reference came skull-stripped already.
        brain_extracted: whether glioseg extracted the brain (deepbet).
        brain_ml: the brain's volume.
        registration: per registered sequence, its rotation (degrees) and translation (mm) onto the reference.
        native_grids: per sequence, the grid it came on: ``{"shape": [X, Y, Z], "affine": 4x4 list}``.
        sources: per sequence, where it came from: ``{"file": path}``, or ``{"series", "uid", "files"}`` (DICOM).
    """

    case: str
    reference: str
    spacing_mm: float
    shape: list[int]
    input_skull_stripped: bool
    brain_extracted: bool
    brain_ml: float
    registration: dict[str, dict[str, float]]
    native_grids: dict[str, dict]
    sources: dict[str, dict]

    def write(self, files: PreparedFiles) -> None:
        files.record.write_text(json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def read(cls, files: PreparedFiles) -> PrepareRecord:
        return cls(**json.loads(files.record.read_text()))
