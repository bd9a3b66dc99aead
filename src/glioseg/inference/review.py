"""Which cases a reader should check before trusting them: a per-case review score from what the model already
knows, and a threshold above which a case is ``review advised``.

The score is the doubt about enhancing tumour: the voxels whose enhancing-tumour probability lies between 0.2 and
0.8, per voxel predicted enhancing (above 0.5), computed for each ensemble member on its own output and averaged.
Where the model is unsure about a small enhancing tumour, its doubtful rim outgrows what it predicts, and a small
enhancing tumour is what the model misses (MODEL_CARD.md). On the 28-case cross-validation (each case scored by the
fold model that did not see it, ``benchmarks/review_signals.py``) it ranked the cases with tumour-core or
enhancing-tumour Dice below 0.5 above all others (AUROC 1.0, from 3 such cases: a weak estimate); the same doubt for
the tumour core and the predicted volumes ranked them less well. The default threshold, 1.0, reads: more of the
enhancing tumour in doubt than predicted.

Each member's doubt is measured on its own output, not on the ensemble's mean (softer, so more in doubt): the
cross-validation, which has one unseen member per case, measures the same quantity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from glioseg.core.files import atomic_path
from glioseg.core.labels import REGION_CLASSES, REGIONS

DOUBT_RANGE = (0.2, 0.8)
"""Probabilities the model is unsure of."""
SCORED_REGION = "ET"
"""The region whose doubt is the review score."""


def region_probability(probabilities: torch.Tensor, head: str, region: str) -> torch.Tensor:
    """``(C, x, y, z)`` network output -> one region's probability: its channel (regions head, WT/TC/ET) or the sum
    of its classes (classes head, background first)."""
    if head == "regions":
        return probabilities[REGIONS.index(region)]
    return probabilities[list(REGION_CLASSES[region])].sum(0)


def member_doubt(probabilities: torch.Tensor, head: str) -> dict[str, float]:
    """One network's doubt per region: voxels with the region's probability in :data:`DOUBT_RANGE`, per voxel it
    predicts in the region (at least one, so that doubt about a region predicted nowhere still counts)."""
    doubt = {}
    for region in REGIONS:
        p = region_probability(probabilities, head, region)
        doubtful = int(((p > DOUBT_RANGE[0]) & (p < DOUBT_RANGE[1])).sum())
        doubt[region] = doubtful / max(int((p > 0.5).sum()), 1)
    return doubt


@dataclass(frozen=True)
class Review:
    """A case's review score (the members' mean doubt about :data:`SCORED_REGION`), whether it is above the
    threshold, and each region's mean doubt (the signals)."""

    score: float
    advised: bool
    doubt: dict[str, float]

    def row(self) -> dict[str, float | bool]:
        """The columns of ``quality.csv`` (after ``case_id``)."""
        return {"review_score": round(self.score, 4), "review_advised": self.advised,
                **{f"doubt_{region}": round(value, 4) for region, value in self.doubt.items()}}  # fmt: skip


def review_of(doubts: list[dict[str, float]], threshold: float) -> Review:
    """The members' doubts (:func:`member_doubt`) -> the case's :class:`Review`."""
    mean = {region: sum(d[region] for d in doubts) / len(doubts) for region in REGIONS}
    return Review(mean[SCORED_REGION], mean[SCORED_REGION] > threshold, mean)


def review_path(out: Path, case_id: str) -> Path:
    """Where a prediction folder keeps a case's review (written before its mask; ``quality.csv`` gathers them)."""
    return out / f"{case_id}_review.json"


def write_review(out: Path, case_id: str, review: Review) -> Path:
    with atomic_path(review_path(out, case_id)) as temporary:
        temporary.write_text(json.dumps(review.row()))
    return review_path(out, case_id)


def read_review(out: Path, case_id: str) -> dict | None:
    """A case's ``quality.csv`` columns, or None where its prediction has none (made before reviews existed)."""
    path = review_path(out, case_id)
    return json.loads(path.read_text()) if path.exists() else None
