"""Which cases should a reader check? The review flag (:mod:`glioseg.inference.review`) and the other signals it was
chosen against, measured on the 28-case cross-validation of the shipped model: each case predicted by the one fold
model that held it out (with the shipped temperature), as ``glioseg predict`` runs it, its review computed by the
product's own code (one member here, the ensemble's five averaged in use).

A failure is what issue 35 names: tumour-core or enhancing-tumour Dice below 0.5 (BraTS convention: both empty is
1). Signals: the doubt per region (voxels whose region probability lies between 0.2 and 0.8, per voxel predicted in
the region; the review score is ET's) and the predicted volumes. Prints each signal's AUROC for failure (volumes:
smaller is more suspect) and, at the default threshold, how many failures and how many other cases are flagged.

    .venv/bin/python benchmarks/review_signals.py --data DATA [--out benchmarks/results/review_signals.csv]

DATA: the 28 cases (``glioseg sample-data DIR --all``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path

import numpy as np
from calibration import auroc, shipped_folds
from machine import RESULTS

from glioseg.core.config import PredictConfig
from glioseg.core.labels import REGION_CLASSES
from glioseg.datasets.cases import find_cases, read_case
from glioseg.evaluation.metrics import dice_from_counts
from glioseg.inference.predict import SHIPPED_TEMPERATURE, load_model

FAILURE_DICE = 0.5


def fold_model(checkpoint: Path):
    """One shipped fold model, run as the shipped ensemble runs each member (its temperature)."""
    model = load_model(checkpoint)
    for network in model.networks:
        network.config = dataclasses.replace(network.config, temperature=SHIPPED_TEMPERATURE)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=RESULTS / "review_signals.csv")
    args = parser.parse_args()
    owner, models, rows = shipped_folds(), {}, []
    threshold = PredictConfig().review_threshold
    for files in find_cases(args.data):
        if files.case_id not in owner:
            continue
        checkpoint = owner[files.case_id]
        models[checkpoint] = models.get(checkpoint) or fold_model(checkpoint)
        case = read_case(files)
        prediction = models[checkpoint].predict(case)
        row = {"case_id": files.case_id, "fold": checkpoint.stem}
        for region, classes in REGION_CLASSES.items():
            predicted, true = np.isin(prediction.label, classes), np.isin(case.label, classes)
            tp = int((predicted & true).sum())
            row[f"dice_{region}"] = round(dice_from_counts(tp, int(predicted.sum()) - tp, int(true.sum()) - tp), 4)
            row[f"true_{region}_ml"] = round(float(true.sum() * np.prod(case.spacing) / 1000), 3)
            row[f"{region}_ml"] = round(prediction.volumes_ml[region], 3)
        row.update(prediction.review.row())
        row["failure"] = int(row["dice_TC"] < FAILURE_DICE or row["dice_ET"] < FAILURE_DICE)
        rows.append(row)
        print(f"{files.case_id}: TC {row['dice_TC']:.3f} ET {row['dice_ET']:.3f} review {row['review_score']:.3f}",
              flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    failure = np.array([row["failure"] for row in rows], bool)
    flagged = np.array([row["review_advised"] for row in rows], bool)
    print(
        f"{failure.sum()} failures of {len(rows)}; at threshold {threshold:g}: {(flagged & failure).sum()} of "
        f"{failure.sum()} failures flagged, {(flagged & ~failure).sum()} of {(~failure).sum()} others"
    )
    if 0 < failure.sum() < len(rows):
        for name in ("review_score", "doubt_WT", "doubt_TC", "doubt_ET", "WT_ml", "TC_ml", "ET_ml"):
            values = np.array([float(row[name]) for row in rows]) * (-1 if name.endswith("_ml") else 1)
            print(f"AUROC {name}: {auroc(values, failure):.3f}")


if __name__ == "__main__":
    main()
