"""Cross-validation splits by patient, never by patch (the original project leaked patients across its split), and
never across the scans of one patient (BraTS 2023+ keeps a patient's time points as ``...-000``, ``...-001``)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from glioseg.core.files import atomic_path


def patient_of(case_id: str, group_regex: str) -> str:
    """The patient a case belongs to: the first group of ``group_regex`` where it matches (the whole match if it has
    no group), else the case itself. Example: ``BraTS-GLI-00001-001`` -> ``BraTS-GLI-00001``."""
    match = re.match(group_regex, case_id)
    if match is None:
        return case_id
    return match.group(1) if match.groups() else match.group(0)


def kfold_splits(case_ids: list[str], folds: int, seed: int, group_regex: str) -> list[dict[str, list[str]]]:
    """Seeded k-fold split of case ids by patient: every case is validated in exactly one fold, with the other scans
    of its patient.

    Patients are shuffled, then cut into ``folds`` runs whose case counts come as close as possible to an even split
    (with one case per patient: exactly ``np.array_split`` of the shuffled ids).
    Example: 10 cases, 5 folds -> 5 dicts, each ``{"train": 8 ids, "val": 2 ids}``.
    """
    patients = {case_id: patient_of(case_id, group_regex) for case_id in case_ids}
    sizes = Counter(patients.values())
    if folds < 2 or folds > len(sizes):
        raise ValueError(f"need 2 <= folds <= number of patients ({len(sizes)}), got {folds}")
    order = np.random.default_rng(seed).permutation(sorted(sizes))
    targets = np.cumsum([len(part) for part in np.array_split(np.arange(len(case_ids)), folds)])
    fold_of: dict[str, int] = {}
    placed, fold = 0, 0
    for index, patient in enumerate(order):
        left = len(order) - index  # patients still to place, this one included
        started = fold in fold_of.values()
        if fold < folds - 1 and started and (placed >= targets[fold] or left == folds - 1 - fold):
            fold += 1  # this fold is full, or the folds after it need every patient left
        fold_of[str(patient)] = fold
        placed += sizes[str(patient)]
    return [
        {
            "train": sorted(c for c in case_ids if fold_of[patients[c]] != k),
            "val": sorted(c for c in case_ids if fold_of[patients[c]] == k),
        }
        for k in range(folds)
    ]


def write_splits(path: Path, splits: list[dict[str, list[str]]]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(splits, indent=1))


def read_splits(path: Path) -> list[dict[str, list[str]]]:
    return json.loads(Path(path).read_text())
