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

from glioseg.core.config import REFERENCE
from glioseg.core.errors import InputError
from glioseg.datasets.cases import MAX_VOXELS, Case, find_cases, grid_mismatch, open_nifti, read_case
from glioseg.datasets.layouts import MODALITIES, CaseFiles, case_layout, locate_case
from glioseg.raw.prepare import STRIPPED_MAX_ML


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
    niftis = {path: open_nifti(path) for path in files.images if path is not None}
    reference = niftis[files.images[MODALITIES.index(REFERENCE)] or files.first_image]
    for path, nifti in niftis.items():
        mismatch = grid_mismatch(reference, nifti)
        if mismatch:
            if mode == "never":
                raise InputError(path, f"{mismatch.replace('first', 'T1Gd')} (the T1Gd's grid)",
                                 "leave out --prepare never: glioseg then registers the sequences onto the T1Gd "
                                 "itself (or co-register them before)")  # fmt: skip
            return as_raw(files, f"{path.name}: {mismatch.replace('first', 'T1Gd')}")
    return as_raw(files, "--prepare always") if mode == "always" else None


def head_reason(case: Case) -> str | None:
    """Why a case read as BraTS-ready is a head rather than a brain (its T1Gd's non-zero volume, or its first
    sequence's without a T1Gd), or None."""
    seen = REFERENCE if REFERENCE not in case.absent else next(m for m in MODALITIES if m not in case.absent)
    volume = float(np.count_nonzero(case.image[MODALITIES.index(seen)])) * float(np.prod(case.spacing)) / 1000
    if volume <= STRIPPED_MAX_ML:
        return None
    return f"the {seen} holds {volume:.0f} mL of non-zero voxels: a head, not a skull-stripped brain"


def as_raw(files: CaseFiles, reason: str) -> RawInput:
    """The NIfTI files to prepare (four, or three without the one the case lacks), for ``reason``.

    Raises:
        InputError: the T1Gd is absent (raw scans are prepared on its grid).
    """
    if REFERENCE in files.absent:
        raise InputError(files.first_image.parent, f"raw scans to prepare ({reason}) without a T1Gd: glioseg "
                         "registers raw scans onto the T1Gd's grid",
                         "add the T1Gd, or give the case BraTS-ready (co-registered on one grid, skull-stripped): a "
                         "BraTS-ready case may lack its T1Gd")  # fmt: skip
    return RawInput(files.case_id, files.first_image.parent, dict(zip(MODALITIES, files.images)), reason)


def inputs_of(
    paths: list[Path], mode: str, datasets: bool = True, complete: bool = False
) -> list[CaseFiles | RawInput]:
    """What each path holds: a DICOM study (raw), or a case (BraTS folder, MSD 4D file, nnU-Net channel file) or, with
    ``datasets``, a dataset folder's cases; cases whose headers say they are not BraTS-ready come back as
    :class:`RawInput` (the decision that needs the voxels is :func:`read_or_raw`'s). A case may lack one sequence
    unless ``complete`` (``--require-all``).

    Raises:
        InputError: an input glioseg cannot read, raw input under ``never``, or a case id given twice.
    """
    found: list[CaseFiles | RawInput] = []
    for path in paths:
        if path.is_dir() and holds_dicom(path):
            found.append(dicom_input(path, mode))
            continue
        if datasets and path.is_dir() and case_layout(path) is None:
            cases = find_cases(path, complete=complete)
        else:
            cases = [locate_case(path, complete=complete)]
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
