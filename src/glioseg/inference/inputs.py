"""What an input is, decided in one place for ``glioseg predict`` and the viewer: a BraTS-ready case, or raw scans
to prepare first (:mod:`glioseg.inference.native`).

Raw means: a DICOM study folder; a case folder whose sequences lie on different grids (both seen from the headers,
before any work); or a T1Gd with a head around the brain (more than :data:`glioseg.raw.prepare.STRIPPED_MAX_ML` of
non-zero voxels, seen once the case is read). ``--prepare always`` prepares every case folder, ``never`` refuses
raw input (``config.PREPARE_MODES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioseg.core.errors import InputError
from glioseg.datasets.cases import MAX_VOXELS, Case, find_cases, grid_mismatch, open_nifti, read_case
from glioseg.datasets.layouts import MODALITIES, CaseFiles, locate_case
from glioseg.raw.prepare import REFERENCE, STRIPPED_MAX_ML


@dataclass(frozen=True)
class RawInput:
    """A case to prepare before segmenting: a DICOM study (``nifti`` None), or four NIfTI files not ready as they are
    (``reason`` says why)."""

    case_id: str
    source: Path
    nifti: dict[str, Path] | None
    reason: str


def holds_dicom(folder: Path) -> bool:
    """Whether a folder holds DICOM files (Part 10: 'DICM' after the preamble) and no NIfTI file."""
    from glioseg.raw.dicom import is_part10

    found = False
    for path in folder.rglob("*"):
        if path.name.endswith((".nii", ".nii.gz")):
            return False
        found = found or (path.is_file() and is_part10(path))
    return found


def dicom_input(folder: Path, mode: str) -> RawInput:
    """A DICOM study folder as raw input (refused under ``never``)."""
    if mode == "never":
        raise InputError(folder, "a DICOM study, which must be prepared before it is segmented",
                         "leave out --prepare never (or run glioseg prepare, then predict its output)")  # fmt: skip
    return RawInput(folder.name, folder, None, "a DICOM study")


def raw_input_of(files: CaseFiles, mode: str) -> RawInput | None:
    """The case as raw input if its headers say it must be prepared (or ``mode`` is always), else None.

    Raises:
        InputError: sequences on different grids under ``never``; ``always`` for a one-file (MSD, 4D) case.
    """
    if len(files.images) != len(MODALITIES):
        if mode == "always":
            raise InputError(files.images[0], "one 4D file holds all four sequences on one grid: nothing to prepare",
                             "leave out --prepare always for this case")  # fmt: skip
        return None
    niftis = [open_nifti(path) for path in files.images]
    reference = niftis[MODALITIES.index(REFERENCE)]
    for path, nifti in zip(files.images, niftis):
        mismatch = grid_mismatch(reference, nifti)
        if mismatch:
            if mode == "never":
                raise InputError(path, f"{mismatch.replace('first', 'T1Gd')} (the T1Gd's grid)",
                                 "leave out --prepare never: glioseg then registers the sequences onto the T1Gd "
                                 "itself (or co-register them before)")  # fmt: skip
            return as_raw(files, f"{path.name}: {mismatch.replace('first', 'T1Gd')}")
    return as_raw(files, "--prepare always") if mode == "always" else None


def head_reason(case: Case) -> str | None:
    """Why a case read as BraTS-ready is a head rather than a brain (its T1Gd's non-zero volume), or None."""
    volume = float(np.count_nonzero(case.image[MODALITIES.index(REFERENCE)])) * float(np.prod(case.spacing)) / 1000
    if volume <= STRIPPED_MAX_ML:
        return None
    return f"the T1Gd holds {volume:.0f} mL of non-zero voxels: a head, not a skull-stripped brain"


def as_raw(files: CaseFiles, reason: str) -> RawInput:
    """Four NIfTI files to prepare, for ``reason``."""
    return RawInput(files.case_id, files.images[0].parent, dict(zip(MODALITIES, files.images)), reason)


def inputs_of(paths: list[Path], mode: str, datasets: bool = True) -> list[CaseFiles | RawInput]:
    """What each path holds: a DICOM study (raw), or a case (BraTS folder, MSD 4D file, nnU-Net channel file) or, with
    ``datasets``, a dataset folder's cases; cases whose headers say they are not BraTS-ready come back as
    :class:`RawInput` (the decision that needs the voxels is :func:`read_or_raw`'s).

    Raises:
        InputError: an input glioseg cannot read, raw input under ``never``, or a case id given twice.
    """
    found: list[CaseFiles | RawInput] = []
    for path in paths:
        if path.is_dir() and holds_dicom(path):
            found.append(dicom_input(path, mode))
            continue
        try:
            cases = [locate_case(path)]
        except InputError:
            if not (datasets and path.is_dir()):
                raise
            cases = find_cases(path)
        found += [raw_input_of(files, mode) or files for files in cases]
    ids = [c.case_id for c in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(paths[0], f"case ids given more than once: {duplicates}", "give each case once")
    return found


def read_or_raw(files: CaseFiles, mode: str, max_voxels: int = MAX_VOXELS) -> Case | RawInput:
    """The case read as it is; under ``auto``, raw input instead if its T1Gd is a head (:func:`head_reason`)."""
    case = read_case(files, max_voxels)
    reason = head_reason(case) if mode == "auto" else None
    return as_raw(files, reason) if reason else case
