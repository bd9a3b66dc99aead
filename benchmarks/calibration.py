"""Do the predicted probabilities mean what they say? Calibration of cross-validation predictions, per region.

Each case is predicted by the fold run that held it out (as `glioseg crossval`), its class probabilities kept. Per
region (WT = 1 - background, TC = core + enhancing, ET = enhancing): the expected calibration error (15
equal-width bins of the predicted probability; |mean probability - share truly in the region| weighted by the
bin's voxels), over the brain and near the tumour (within 10 voxels of the true or predicted whole tumour, where
the easy background does not dilute it); then temperature scaling, fitted fold by fold on the other folds' cases
(the NLL over a grid of temperatures, on a random sample of brain voxels; class probabilities p -> softmax(log p
/ T), which is exact temperature scaling of the logits); and whether uncertainty flags errors: the AUROC of the
voxel's entropy for wrong against right voxels (argmax class against the truth).

    .venv/bin/python benchmarks/calibration.py [RUN0 RUN1 ...] --data DATA [--sample 100000]

Without runs: the shipped model's five fold models, each on the cases docs/model/splits_28.json held out from it
(DATA: the 28 cases, ``glioseg sample-data DIR --all``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from machine import REPO
from scipy import ndimage
from scipy.stats import rankdata

from glioseg.datasets.cases import find_cases, read_case
from glioseg.inference.predict import SHIPPED_MODELS, load_model
from glioseg.workflows.crossval import held_out_cases

BINS = 15
NEAR_VOXELS = 10
TEMPERATURES = np.round(np.arange(0.5, 3.01, 0.05), 2)
REGIONS = {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}


def region_probabilities(classes: np.ndarray) -> dict[str, np.ndarray]:
    """``(4, n)`` class probabilities (background, edema, core, enhancing) -> each region's probability."""
    return {name: classes[list(members)].sum(0) for name, members in REGIONS.items()}


def calibration_bins(probability: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(3, BINS)``: per bin the sum of probabilities, of truths, and the count."""
    index = np.minimum((probability * BINS).astype(int), BINS - 1)
    return np.stack([np.bincount(index, weights=w, minlength=BINS) for w in (probability, truth.astype(float),
                                                                             np.ones_like(probability))])  # fmt: skip


def ece(bins: np.ndarray) -> float:
    sums, truths, counts = bins
    filled = counts > 0
    return float(np.sum(np.abs(sums[filled] - truths[filled])) / counts.sum())


def scaled(log_p: np.ndarray, temperature: float) -> np.ndarray:
    z = log_p / temperature
    z = z - z.max(0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(0, keepdims=True)


def nll(log_p: np.ndarray, label: np.ndarray, temperature: float) -> float:
    p = scaled(log_p, temperature)
    return float(-np.mean(np.log(p[label, np.arange(label.size)] + 1e-12)))


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    ranks = rankdata(score)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def shipped_folds() -> dict[str, Path]:
    """Case id -> the shipped fold model that held it out."""
    splits = json.loads((REPO / "docs" / "model" / "splits_28.json").read_text())
    return {case: SHIPPED_MODELS[fold] for fold, split in enumerate(splits) for case in split["val"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=100_000, help="brain voxels per case for the fits")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calibration.json")
    args = parser.parse_args()
    owner = held_out_cases(args.runs) if args.runs else shipped_folds()
    rng = np.random.default_rng(0)
    per_fold: dict[str, dict] = {}
    for files in find_cases(args.data):
        if files.case_id not in owner:
            continue
        run = str(owner[files.case_id])
        checkpoint = Path(run) / "last.pt" if Path(run).is_dir() else Path(run)
        fold = per_fold.setdefault(run, {"model": load_model(checkpoint), "log_p": [], "label": [],
                                         "bins": {r: np.zeros((3, BINS)) for r in REGIONS},
                                         "near": {r: np.zeros((3, BINS)) for r in REGIONS}})  # fmt: skip
        case = read_case(files)
        probabilities = fold["model"].predict(case, keep_probabilities=True).probabilities.numpy()
        brain = case.image.any(0)
        classes, label = probabilities[:, brain], case.label[brain]
        for region, p in region_probabilities(classes).items():
            fold["bins"][region] += calibration_bins(p, np.isin(label, REGIONS[region]))
        # near the tumour: within 10 voxels of the true or the predicted whole tumour (where the decisions are)
        near = ndimage.binary_dilation((case.label > 0) | (probabilities[0] < 0.5), iterations=NEAR_VOXELS) & brain
        for region, p in region_probabilities(probabilities[:, near]).items():
            fold["near"][region] += calibration_bins(p, np.isin(case.label[near], REGIONS[region]))
        pick = rng.choice(label.size, size=min(args.sample, label.size), replace=False)
        fold["log_p"].append(np.log(classes[:, pick] + 1e-12))
        fold["label"].append(label[pick].astype(int))
        print(f"{files.case_id}: predicted by {Path(run).name}", flush=True)
    folds = list(per_fold)
    result: dict = {"cases": sum(len(f["label"]) for f in per_fold.values()), "runs": folds}
    totals = {r: sum(per_fold[f]["bins"][r] for f in folds) for r in REGIONS}
    result["ece"] = {r: ece(totals[r]) for r in REGIONS}
    result["ece_near_tumour"] = {r: ece(sum(per_fold[f]["near"][r] for f in folds)) for r in REGIONS}
    # temperature fitted on the other folds, applied to each fold's sample
    after = {r: np.zeros((3, BINS)) for r in REGIONS}
    temperatures = {}
    for fold in folds:
        others = [f for f in folds if f != fold]
        log_p = np.concatenate([x for f in others for x in per_fold[f]["log_p"]], axis=1)
        label = np.concatenate([x for f in others for x in per_fold[f]["label"]])
        best = min(TEMPERATURES, key=lambda t: nll(log_p, label, t))
        temperatures[Path(fold).name] = float(best)
        for x, y in zip(per_fold[fold]["log_p"], per_fold[fold]["label"]):
            for region, p in region_probabilities(scaled(x, best)).items():
                after[region] += calibration_bins(p, np.isin(y, REGIONS[region]))
    before = {r: np.zeros((3, BINS)) for r in REGIONS}
    for fold in folds:  # the same samples, unscaled, so that before and after compare like with like
        for x, y in zip(per_fold[fold]["log_p"], per_fold[fold]["label"]):
            for region, p in region_probabilities(np.exp(x)).items():
                before[region] += calibration_bins(p, np.isin(y, REGIONS[region]))
    result["temperature"] = temperatures
    result["ece_sample_before"] = {r: ece(before[r]) for r in REGIONS}
    result["ece_sample_after_temperature"] = {r: ece(after[r]) for r in REGIONS}
    log_p = np.concatenate([x for f in folds for x in per_fold[f]["log_p"]], axis=1)
    label = np.concatenate([y for f in folds for y in per_fold[f]["label"]])
    p = np.exp(log_p)
    entropy = -(p * log_p).sum(0)
    wrong = p.argmax(0) != label
    result["error_rate_sample"] = float(wrong.mean())
    result["entropy_auroc_wrong_vs_right"] = auroc(entropy, wrong)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
