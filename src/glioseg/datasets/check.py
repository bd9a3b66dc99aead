"""`glioseg check`: verify a whole dataset before training on it, listing every problem found."""

from __future__ import annotations

from pathlib import Path

from glioseg.core.errors import InputError
from glioseg.datasets.cases import label_numbering_problem, read_image, read_label
from glioseg.datasets.layouts import CaseFiles, Problem, scan_dataset


def check_case(files: CaseFiles) -> list[Problem]:
    """Problems of one case: unreadable or truncated files, NaN/Inf, empty modalities, grids, labels.

    Reading stops at a case's first bad file, so a case lists one problem at a time.
    """
    try:
        _, reference = read_image(files)
        read_label(files, reference)
    except InputError as error:
        return [Problem.from_error(files.case_id, error)]
    return []


def check_dataset(
    folder: str | Path, label_convention: str | None = None, progress: bool = False
) -> tuple[list[CaseFiles], list[Problem]]:
    """Scan a dataset and read every case fully; ``label_convention`` as ``--label-convention``.

    Returns:
        The cases found and the problems, in case order (an empty list means all is well).
    """
    from rich.progress import track

    cases, problems = scan_dataset(folder, label_convention)
    for files in track(cases, description="checking", disable=not progress):
        problems += check_case(files)
    numbering = None if label_convention else label_numbering_problem(cases, Path(folder))
    if numbering:
        problems.append(Problem.from_error("-", numbering))
    return cases, problems
