"""Cross-validation splits by patient, never by patch (the original project leaked patients across its split)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from glioseg.io import atomic_path


def kfold_splits(case_ids: list[str], folds: int = 5, seed: int = 0) -> list[dict[str, list[str]]]:
    """Seeded k-fold split of case ids: every case is validated in exactly one fold.

    Example: 10 cases, 5 folds -> 5 dicts, each ``{"train": 8 ids, "val": 2 ids}``.
    """
    if folds < 2 or folds > len(case_ids):
        raise ValueError(f"need 2 <= folds <= number of cases ({len(case_ids)}), got {folds}")
    order = np.random.default_rng(seed).permutation(sorted(case_ids))
    parts = np.array_split(order, folds)
    return [
        {
            "train": sorted(str(c) for j, part in enumerate(parts) if j != k for c in part),
            "val": sorted(str(c) for c in parts[k]),
        }
        for k in range(folds)
    ]


def write_splits(path: Path, splits: list[dict[str, list[str]]]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(splits, indent=1))


def read_splits(path: Path) -> list[dict[str, list[str]]]:
    return json.loads(Path(path).read_text())
