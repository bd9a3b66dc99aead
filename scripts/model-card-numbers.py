"""The numbers MODEL_CARD.md reports from a cross-validation's metrics.csv: per region the mean, median and a 95 %
bootstrap interval (cases resampled, 10 000 times, seed 0) of whole-image and lesion-wise Dice and HD95, and the
per-case table in Markdown.

    .venv/bin/python scripts/model-card-numbers.py CV_DIR/metrics.csv [--cases CASE_IDS_FILE]
"""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np

from glioseg.evaluation.evaluate import bootstrap_interval

REGIONS = ("WT", "TC", "ET")
COLUMNS = ("dice", "lesionwise_dice", "hd95", "lesionwise_hd95")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("metrics")
    parser.add_argument("--cases", help="a file of case ids, one per line: only these cases")
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.metrics)))
    if args.cases:
        keep = set(open(args.cases).read().split())
        rows = [r for r in rows if r["case_id"] in keep]
    rng = np.random.default_rng(0)
    cases = sorted({r["case_id"] for r in rows})
    print(f"{len(cases)} cases")
    print("| region | number | mean | 95 % interval | median |")
    print("| --- | --- | --- | --- | --- |")
    for region in REGIONS:
        for column in COLUMNS:
            values = np.array([float(r[column]) for r in rows if r["structure"] == region and r.get(column) not in
                               (None, "", "nan")])  # fmt: skip
            values = values[~np.isnan(values)]
            if not len(values):
                continue
            low, high = bootstrap_interval(values, rng)
            print(f"| {region} | {column} | {values.mean():.3f} | {low:.3f}-{high:.3f} | {np.median(values):.3f} |")
    print()
    header = [f"{r} Dice" for r in REGIONS] + [f"{r} lesion-wise" for r in REGIONS] + ["WT mL true / predicted"]
    print("| case | " + " | ".join(header) + " |")
    print("|" + " --- |" * (2 * len(REGIONS) + 2))
    by = {(r["case_id"], r["structure"]): r for r in rows}
    for case in cases:
        dice = [float(by[(case, g)]["dice"]) for g in REGIONS]
        lesionwise = [float(by[(case, g)].get("lesionwise_dice") or math.nan) for g in REGIONS]
        wt = by[(case, "WT")]
        volumes = f"{float(wt['volume_true_ml']):.1f} / {float(wt['volume_pred_ml']):.1f}"
        print(f"| {case} | " + " | ".join(f"{v:.3f}" for v in dice + lesionwise) + f" | {volumes} |")


if __name__ == "__main__":
    main()
