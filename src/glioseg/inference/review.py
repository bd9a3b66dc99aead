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

A case segmented without one of its sequences (absent from its folder, or ``--without``) carries what the model's
cross-validation measured in that situation (``missing-sequences.csv`` beside the model's runs: the shipped model's
in the package, ``scripts/experiments.py missing`` writes one for a recipe's folds), and the regions that are
unreliable without it: tumour core and enhancing tumour without the T1Gd (they are defined by contrast enhancement),
and any region whose measured Dice is below :data:`UNRELIABLE_DICE` or was not measured. Such a case is review
advised.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from glioseg.core.config import MODALITIES
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.core.labels import REGION_CLASSES, REGIONS

DOUBT_RANGE = (0.2, 0.8)
"""Probabilities the model is unsure of."""
SCORED_REGION = "ET"
"""The region whose doubt is the review score."""
UNRELIABLE_DICE = 0.5
"""A region whose cross-validated Dice without the case's missing sequence is below this is flagged unreliable: below
.5 a mask is more wrong than right."""
CONTRAST_REGIONS = ("TC", "ET")
"""The regions defined by contrast enhancement: unreliable whenever the T1Gd is absent, whatever was measured."""
MEASUREMENTS = "missing-sequences.csv"
"""A model's Dice per region with each sequence left out (``none``: all four), in the folder that holds its runs."""
ALL_FOUR = "none"


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


Measured = dict[str, dict[str, float]]
"""A model's cross-validated Dice per region, for each situation: ``none`` (all four), or the absent sequence."""


def read_measurements(folder: Path) -> Measured | None:
    """The Dice table :data:`MEASUREMENTS` in ``folder`` (None where there is none).

    Raises:
        InputError: a table without the columns ``without``, ``region`` and ``dice`` (numbers).
    """
    path = folder / MEASUREMENTS
    if not path.is_file():
        return None
    measured: Measured = {}
    try:
        with open(path, newline="") as stream:
            for row in csv.DictReader(stream):
                measured.setdefault(row["without"], {})[row["region"]] = float(row["dice"])
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not a table of Dice per missing sequence ({error!r})",
                         "write it again with scripts/experiments.py missing, or remove it") from None  # fmt: skip
    return measured


@dataclass(frozen=True)
class Review:
    """A case's review score (the members' mean doubt about :data:`SCORED_REGION`), whether a reader should check it
    (score above the threshold, or a sequence absent), each region's mean doubt (the signals), the sequences it
    was segmented without, the Dice the model measured in that situation (None: not measured) and the unreliable
    regions."""

    score: float
    advised: bool
    doubt: dict[str, float]
    absent: tuple[str, ...] = ()
    measured: dict[str, float] | None = None
    unreliable: tuple[str, ...] = ()

    def row(self) -> dict:
        """The columns of ``quality.csv`` (after ``case_id``); absent sequences, unreliable regions space-separated."""
        return {"review_score": round(self.score, 4), "review_advised": self.advised,
                **{f"doubt_{region}": round(value, 4) for region, value in self.doubt.items()},
                "absent": " ".join(self.absent), "unreliable": " ".join(self.unreliable)}  # fmt: skip


def situation(absent: tuple[str, ...]) -> str:
    """The key of :data:`Measured` for a case lacking ``absent``: ``none``, ``T1``, ``FLAIR+T1``."""
    return "+".join(absent) or ALL_FOUR


def unreliable_regions(absent: tuple[str, ...], measured: dict[str, float] | None) -> tuple[str, ...]:
    """The regions not to trust without ``absent`` (module doc)."""
    if not absent:
        return ()
    flagged = {region for region in REGIONS if measured is None or measured.get(region, 0.0) < UNRELIABLE_DICE}
    if "T1Gd" in absent:
        flagged |= set(CONTRAST_REGIONS)
    return tuple(region for region in REGIONS if region in flagged)


def review_of(doubts: list[dict[str, float]], threshold: float, absent: tuple[str, ...] = (),
              measured: Measured | None = None) -> Review:  # fmt: skip
    """The members' doubts (:func:`member_doubt`) -> the case's :class:`Review`; ``absent``: the sequences it was
    segmented without, ``measured`` the model's table (:func:`read_measurements`)."""
    mean = {region: sum(d[region] for d in doubts) / len(doubts) for region in REGIONS}
    dice = (measured or {}).get(situation(absent)) if absent else None
    unreliable = unreliable_regions(absent, dice)
    return Review(mean[SCORED_REGION], mean[SCORED_REGION] > threshold or bool(absent), mean, absent, dice,
                  unreliable)  # fmt: skip


def absent_note(case_id: str, review: dict, measured: Measured | None) -> str | None:
    """The one line that says a case was segmented without a sequence and how well the model does so (from its
    review record, :meth:`Review.row` as ``<case>_review.json`` keeps it), or None for a case with all four."""
    absent = tuple(review.get("absent", "").split())
    if not absent:
        return None
    used = ", ".join(m for m in MODALITIES if m not in absent)
    dice, full = ((measured or {}).get(key) for key in (situation(absent), ALL_FOUR))
    if dice is None:
        accuracy = f"this model's accuracy without {' and '.join(absent)} was not measured"
    else:
        accuracy = f"cross-validated Dice without {' and '.join(absent)}: " + " ".join(
            f"{region} {dice[region]:.2f}" + (f" (all four {full[region]:.2f})" if full else "") for region in REGIONS
        )
    unreliable = review.get("unreliable", "").split()
    flag = f"; {', '.join(unreliable)} unreliable" if unreliable else ""
    return f"{case_id}: no {' or '.join(absent)}, segmented from {used}; {accuracy}{flag}"


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
