"""Which cleaning rules the cross-validation supports: small enhancing tumour, stray components, per region.

Each of the 28 cases is predicted, uncleaned, by the shipped fold model that held it out (docs/model/splits_28.json);
then every variant below cleans those same labels and `glioseg evaluate` scores them (BraTS 2023 rules: whole-image
and lesion-wise Dice per region). A variant is one rule set; all that were tried are listed, and how many is part
of the result. Choosing among them on the same cases flatters the winner, so the choice is also made nested: for
each fold, the variant with the best mean of the six scores on the other four folds' cases is applied to that fold's
cases, and those held-out scores are reported. Last, glioseg's own ``clean_label`` with its defaults must give the
variant it ships, case by case.

    .venv/bin/python benchmarks/cleaning.py --data DATA28 [--work DIR]

DATA28: the 28 cases (``glioseg sample-data DIR --all``). WORK keeps the predictions and each variant's scores, so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from machine import REPO, RESULTS, describe
from scipy import ndimage

from glioseg.core.config import EvaluateConfig, PostprocessConfig, PredictConfig
from glioseg.core.labels import BACKGROUND, CORE, EDEMA, ENHANCING
from glioseg.datasets.cases import find_cases, read_case, write_label
from glioseg.evaluation.evaluate import evaluate
from glioseg.inference.postprocess import clean_label
from glioseg.inference.predict import SHIPPED_MODELS, load_model

REGIONS = ("WT", "TC", "ET")
VARIANTS = {  # name -> rule; every variant tried, in the order tried (the rules: `cleaned` below)
    "none": {"wt_ml": 0, "et_total": 0},
    "shipped before": {},  # 0.1 mL tumour components, 0.5 mL enhancing rule
    "et_total_0": {"et_total": 0},
    "et_total_1": {"et_total": 1.0},
    "et_total_2": {"et_total": 2.0},
    "wt_1": {"wt_ml": 1},
    "wt_3": {"wt_ml": 3},
    "wt_10": {"wt_ml": 10},
    "wt_rel_0.1": {"wt_rel": 0.1},
    "wt_rel_0.2": {"wt_rel": 0.2},
    "et_comp_0.25": {"et_ml": 0.25},
    "et_comp_1": {"et_ml": 1},
    "tc_comp_0.5": {"tc_ml": 0.5},
    "tc_comp_2": {"tc_ml": 2},
    "wt_rel_0.3": {"wt_rel": 0.3},
    "wt_rel_0.5": {"wt_rel": 0.5},
    "wtr.2_et0.1": {"wt_rel": 0.2, "et_ml": 0.1},
    "wtr.2_et0.25": {"wt_rel": 0.2, "et_ml": 0.25},
    "wtr.2_et0.5": {"wt_rel": 0.2, "et_ml": 0.5},
    "wtr.2_etr.1": {"wt_rel": 0.2, "et_rel": 0.1},
    "wtr.2_etr.2": {"wt_rel": 0.2, "et_rel": 0.2},
    "wtr.2_tcr.1": {"wt_rel": 0.2, "tc_rel": 0.1},
    "wtr.2_tcr.2": {"wt_rel": 0.2, "tc_rel": 0.2},
    "wtr.2_tcr.2_etr.2": {"wt_rel": 0.2, "tc_rel": 0.2, "et_rel": 0.2},
    "wtr.2_et0.25_tc0.25": {"wt_rel": 0.2, "et_ml": 0.25, "tc_ml": 0.25},
    "wtr.2_tcr.1_etr.1": {"wt_rel": 0.2, "tc_rel": 0.1, "et_rel": 0.1},
    "wtr.1_tcr.1_etr.1": {"wt_rel": 0.1, "tc_rel": 0.1, "et_rel": 0.1},
    "wtr.3_tcr.3_etr.3": {"wt_rel": 0.3, "tc_rel": 0.3, "et_rel": 0.3},
    "wtr.2_tcr.2_etr.2_et0.1": {"wt_rel": 0.2, "tc_rel": 0.2, "et_rel": 0.2, "et_ml": 0.1},
}
ONE_FRACTION = ("shipped before", "wtr.1_tcr.1_etr.1", "wtr.2_tcr.2_etr.2", "wtr.3_tcr.3_etr.3")
"""The one-parameter family glioseg's ``min_component_fraction`` spans (0, 0.1, 0.2, 0.3 for every region)."""
SHIPPED = "wtr.2_tcr.2_etr.2"
"""The variant glioseg's default PostprocessConfig is (checked case by case)."""


def drop_small(label, region, voxel_ml, min_ml, fraction, value) -> np.ndarray:
    components, count = ndimage.label(region, structure=np.ones((3, 3, 3)))
    if not count:
        return label
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    small = np.flatnonzero((sizes * voxel_ml < min_ml) | (sizes < fraction * sizes.max()))
    label = label.copy()
    label[np.isin(components, small[small > 0])] = value
    return label


def cleaned(label, voxel_ml, wt_ml=0.1, wt_rel=0.0, tc_ml=0.0, tc_rel=0.0, et_ml=0.0, et_rel=0.0, et_total=0.5):
    """The study's rules, written apart from glioseg's so that each can vary alone: tumour components under
    ``wt_ml`` mL or ``wt_rel`` of the largest dropped; core (TC) components under ``tc_ml`` / ``tc_rel`` -> edema;
    enhancing components under ``et_ml`` / ``et_rel`` -> core; all enhancing under ``et_total`` mL -> core."""
    label = drop_small(label, label > 0, voxel_ml, wt_ml, wt_rel, BACKGROUND)
    if tc_ml or tc_rel:
        label = drop_small(label, (label == CORE) | (label == ENHANCING), voxel_ml, tc_ml, tc_rel, EDEMA)
    if et_ml or et_rel:
        label = drop_small(label, label == ENHANCING, voxel_ml, et_ml, et_rel, CORE)
    enhancing = label == ENHANCING
    if enhancing.any() and enhancing.sum() * voxel_ml < et_total:
        label = np.where(enhancing, CORE, label).astype(np.uint8)
    return label


def predict_uncleaned(data: Path, folder: Path, splits: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cases = {c.case_id: c for c in find_cases(data)}
    keep_all = PostprocessConfig(min_component_ml=0, min_component_fraction=0, min_enhancing_ml=0)
    for fold, split in enumerate(splits):
        model = None
        for case_id in split["val"]:
            if (folder / f"{case_id}.nii.gz").exists():
                continue
            model = model or load_model(SHIPPED_MODELS[fold])
            case = read_case(cases[case_id])
            write_label(folder / f"{case_id}.nii.gz", model.predict(case, PredictConfig(postprocess=keep_all)).label,
                        case)  # fmt: skip
            print(f"fold {fold}: {case_id} predicted", flush=True)


def internal_labels(data: Path, raw: Path):
    for files in find_cases(data):
        image = nib.load(raw / f"{files.case_id}.nii.gz")
        spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
        yield files, image, files.convention.to_internal(np.asarray(image.dataobj)), spacing


def score_variant(name: str, rule: dict, data: Path, raw: Path, scores: Path) -> Path:
    result = scores / f"{name}.csv"
    if result.exists():
        return result
    folder = scores / f"{name}.tmp"
    folder.mkdir(parents=True, exist_ok=True)
    for files, image, label, spacing in internal_labels(data, raw):
        values = files.convention.from_internal(cleaned(label, np.prod(spacing) / 1000, **rule))
        nib.save(nib.Nifti1Image(values, image.affine, image.header), folder / f"{files.case_id}.nii.gz")
    results = evaluate(folder, data, settings=EvaluateConfig(rules="brats2023"))
    with open(result.with_suffix(".part"), "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "structure", *results.columns])
        writer.writeheader()
        writer.writerows(results.rows)
    result.with_suffix(".part").rename(result)
    shutil.rmtree(folder)
    return result


def per_case(path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """case -> region -> (Dice, lesion-wise Dice)."""
    scores: dict = {}
    for row in csv.DictReader(open(path)):
        if row["structure"] in REGIONS:
            scores.setdefault(row["case_id"], {})[row["structure"]] = (float(row["dice"]),
                                                                       float(row["lesionwise_dice"]))  # fmt: skip
    return scores


def summary(scores: dict, chosen: dict[str, str]) -> dict[str, dict[str, float]]:
    """Mean over cases, each case scored under the variant ``chosen`` for it."""
    cases = sorted(chosen)
    return {region: {"dice": float(np.mean([scores[chosen[c]][c][region][0] for c in cases])),
                     "lesionwise_dice": float(np.mean([scores[chosen[c]][c][region][1] for c in cases]))}
            for region in REGIONS}  # fmt: skip


def objective(scores: dict, name: str, cases: list[str]) -> float:
    return float(np.mean([np.mean([v for pair in scores[name][c].values() for v in pair]) for c in cases]))


def nested(scores: dict, family: tuple[str, ...], fold_of: dict[str, int]) -> tuple[list[str], dict]:
    """Per fold, the family's best variant on the other folds' cases, applied to this fold's cases."""
    picks, chosen = [], {}
    for fold in sorted(set(fold_of.values())):
        others = [c for c, f in fold_of.items() if f != fold]
        best = max(family, key=lambda name: objective(scores, name, others))
        picks.append(best)
        chosen.update({c: best for c, f in fold_of.items() if f == fold})
    return picks, summary(scores, chosen)


def check_shipped_defaults(data: Path, raw: Path) -> int:
    """glioseg's clean_label with its default settings gives the SHIPPED variant on every case."""
    checked = 0
    for _, _, label, spacing in internal_labels(data, raw):
        ours = clean_label(label, spacing, PostprocessConfig())
        assert np.array_equal(ours, cleaned(label, np.prod(spacing) / 1000, **VARIANTS[SHIPPED])), "defaults differ"
        checked += 1
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "cleaning")
    parser.add_argument("--out", type=Path, default=RESULTS / "cleaning.json")
    args = parser.parse_args()
    splits = json.loads((REPO / "docs" / "model" / "splits_28.json").read_text())
    fold_of = {case: fold for fold, split in enumerate(splits) for case in split["val"]}
    raw = args.work / "raw"
    predict_uncleaned(args.data, raw, splits)
    scores = {}
    for name, rule in VARIANTS.items():
        scores[name] = per_case(score_variant(name, rule, args.data, raw, args.work / "scores"))
        means = summary(scores, dict.fromkeys(fold_of, name))
        print(name, " ".join(f"{r} {means[r]['dice']:.3f}/{means[r]['lesionwise_dice']:.3f}" for r in REGIONS),
              flush=True)  # fmt: skip
    result = {
        "machine": describe(),
        "cases": len(fold_of),
        "variants": {
            name: {
                "rule": VARIANTS[name],
                "objective": objective(scores, name, sorted(fold_of)),
                **summary(scores, dict.fromkeys(fold_of, name)),
            }
            for name in VARIANTS
        },  # fmt: skip
        "nested": {},
        "shipped": SHIPPED,
        "shipped_defaults_checked_on_cases": check_shipped_defaults(args.data, raw),
    }
    for family_name, family in (("all variants", tuple(VARIANTS)), ("one fraction", ONE_FRACTION)):
        picks, means = nested(scores, family, fold_of)
        result["nested"][family_name] = {"picks": picks, **means}
    print("| variant | WT | TC | ET | WT lesion-wise | TC lesion-wise | ET lesion-wise |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = [(name, result["variants"][name]) for name in VARIANTS]
    rows += [(f"nested, {name} (picks: {', '.join(v['picks'])})", v) for name, v in result["nested"].items()]
    for name, means in rows:
        cells = [f"{means[r]['dice']:.3f}" for r in REGIONS] + [f"{means[r]['lesionwise_dice']:.3f}" for r in REGIONS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
