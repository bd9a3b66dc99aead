"""`glioseg evaluate`: predictions against ground truth, per case and summarised (CSV, JSON, table)."""

from __future__ import annotations

import csv
import json
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioseg.core.config import EvaluateConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.core.labels import CONVENTIONS, STRUCTURE_NAMES, LabelConvention, LabelValueError
from glioseg.datasets.cases import find_cases, grid_mismatch, open_nifti, read_label
from glioseg.datasets.layouts import CaseFiles
from glioseg.evaluation.lesionwise import RULES, lesionwise_scores, panoptic_scores
from glioseg.evaluation.metrics import case_metrics

METRICS = ("dice", "hd95", "nsd", "sensitivity", "specificity", "volume_pred_ml", "volume_true_ml", "volume_diff_ml")
"""Whole-image metrics of every row (glioseg's, which are panoptica's; under a year's rules its legacy ones)."""
RULE_METRICS = {
    "panoptica": ("pq_dsc", "sq_dsc", "sq_hd95", "sq_nsd", "rq", "lesions_tp", "lesions_fp", "lesions_fn"),
    "brats2023": ("lesionwise_dice", "lesionwise_hd95", "lesions_tp", "lesions_fp", "lesions_fn"),
    "brats2024": ("lesionwise_dice", "lesionwise_hd95", "lesionwise_nsd_0.5", "lesionwise_nsd_1.0", "nsd_0.5",
                  "nsd_1.0", "lesions_tp", "lesions_fp", "lesions_fn"),
}  # fmt: skip
"""The columns each ``--rules`` adds beside :data:`METRICS`."""
LESION_STRUCTURES = {"WT": ("WT",), "TC": ("TC",), "ET": ("ET", "enhancing"), "NETC": ("core",),
                     "SNFH": ("edema",), "RC": ("cavity",)}  # fmt: skip
"""Where each lesion-wise structure's scores go among glioseg's rows (ET is both the region and the class)."""
PANOPTICA_ROWS = ("WT", "TC", "ET", "NETC", "SNFH")
"""The panoptica groups glioseg's rows hold (its resection cavity group has no row outside the 2024 rules)."""
LESION_COLUMNS = ("case_id", "structure", "kind", "lesion", "volume_mm3", "counted", "matched", "dice", "hd95",
                  "nsd_0.5", "nsd_1.0")  # fmt: skip


@dataclass
class Results:
    """What ``glioseg evaluate`` found.

    Attributes:
        rows: one per case and structure: ``{"case_id", "structure", <column>: value}``.
        lesions: one per ground-truth lesion and per false-positive component (a year's lesion-wise rules only).
        summary: ``{structure: {column: {"mean", "median", "std", "n"}}}`` (NaN left out of each statistic).
        columns: the metric columns of ``rows``.
    """

    rows: list[dict]
    lesions: list[dict]
    summary: dict
    columns: tuple[str, ...]


def prediction_convention(pred_dir: Path, override: str | None) -> LabelConvention | None:
    """The convention predictions are written in: ``--pred-labels``, else what ``predict.json`` says; None means
    each ground truth's own (glioseg's default when predicting)."""
    labels = override
    manifest = pred_dir / "predict.json"
    if not labels and manifest.exists():
        labels = json.loads(manifest.read_text()).get("labels")
    return CONVENTIONS[labels] if labels else None


def evaluate_case(
    prediction_path: Path, truth: CaseFiles, convention: LabelConvention, settings: EvaluateConfig
) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Metrics of one prediction file against a case's label (grids must match), and its per-lesion rows."""
    reference = open_nifti(truth.label)  # type: ignore[arg-type]
    predicted = open_nifti(prediction_path)
    mismatch = grid_mismatch(reference, predicted)
    if mismatch:
        raise InputError(prediction_path, f"prediction grid: {mismatch} of {truth.label}",
                         "predict on the same images as the ground truth (glioseg keeps their grid)")  # fmt: skip
    truth_label = read_label(truth, reference)
    try:
        prediction = convention.to_internal(np.asanyarray(predicted.dataobj).squeeze())
    except LabelValueError as error:
        raise InputError(prediction_path, str(error), "pass --pred-labels with the predictions' convention") from None
    spacing = tuple(float(z) for z in reference.header.get_zooms()[:3])
    if settings.rules == "panoptica":
        metrics = case_metrics(prediction, truth_label, spacing, distances=False)  # type: ignore[arg-type]
        panoptic = panoptic_scores(prediction, truth_label, spacing, PANOPTICA_ROWS, settings.tolerance_mm)  # type: ignore[arg-type]
        for name, scores in panoptic.items():
            counts = {f"lesions_{key}": scores[key] for key in ("tp", "fp", "fn")}
            values = {key: scores[key] for key in ("dice", "hd95", "nsd", *RULE_METRICS["panoptica"][:5])}
            for structure in LESION_STRUCTURES[name]:
                metrics.setdefault(structure, {}).update(values, **counts)
        return metrics, []
    metrics = case_metrics(prediction, truth_label, spacing, tolerance_mm=settings.tolerance_mm)  # type: ignore[arg-type]
    rules = RULES[settings.rules]
    lesion_rows = []
    for name, score in lesionwise_scores(prediction, truth_label, spacing, rules).items():  # type: ignore[arg-type]
        values = {
            "dice": score.legacy_dice, "hd95": score.legacy_hd95, "sensitivity": score.sensitivity,
            "specificity": score.specificity, "lesionwise_dice": score.lesionwise_dice,
            "lesionwise_hd95": score.lesionwise_hd95, "lesions_tp": score.tp, "lesions_fp": score.fp,
            "lesions_fn": score.fn,
            **{f"lesionwise_nsd_{t}": v for t, v in score.lesionwise_nsd.items()},
            **{f"nsd_{t}": v for t, v in score.legacy_nsd.items()},
        }  # fmt: skip
        for structure in LESION_STRUCTURES[name]:
            metrics.setdefault(structure, {}).update(values)
        where = {"case_id": truth.case_id, "structure": name}
        for lesion in score.lesions:
            lesion_rows.append({**where, "kind": "lesion", "lesion": lesion.lesion, "volume_mm3": lesion.volume_mm3,
                                "counted": lesion.counted, "matched": " ".join(map(str, lesion.matched)),
                                "dice": lesion.dice, "hd95": lesion.hd95,
                                **{f"nsd_{t}": v for t, v in lesion.nsd.items()}})  # fmt: skip
        for component in score.false_positives:
            lesion_rows.append({**where, "kind": "false positive", "lesion": component, "counted": True, "dice": 0.0,
                                "hd95": rules.penalty_mm})  # fmt: skip
    return metrics, lesion_rows


def _evaluate_job(job: tuple) -> tuple[dict[str, dict[str, float]], list[dict]]:
    return evaluate_case(*job)


def evaluate(
    pred_dir: str | Path,
    gt_dir: str | Path,
    pred_labels: str | None = None,
    settings: EvaluateConfig = EvaluateConfig(),
    workers: int = 2,
    case_ids: Collection[str] | None = None,
) -> Results:
    """Evaluate every labelled case of ``gt_dir`` (or those of ``case_ids``) against ``pred_dir/<case_id>.nii.gz``;
    ``pred_labels`` is the predictions' convention (default: what their ``predict.json`` says, else each ground
    truth's own). With ``settings.rules`` a BraTS year, its lesion-wise scores and its own whole-image metrics."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    truths = [c for c in find_cases(gt_dir, settings.label_convention, complete=False)  # labels are what it reads
              if c.label is not None and (case_ids is None or c.case_id in case_ids)]  # fmt: skip
    if not truths:
        raise InputError(gt_dir, "no labelled cases", "give the folder of ground-truth cases")
    convention = prediction_convention(pred_dir, pred_labels)
    jobs = []
    for truth in truths:
        path = pred_dir / f"{truth.case_id}.nii.gz"
        if not path.exists():
            raise InputError(path, "prediction missing for this case", "predict it first (glioseg predict)")
        jobs.append((path, truth, convention or truth.convention, settings))
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_evaluate_job, jobs))
    else:
        results = [_evaluate_job(job) for job in jobs]
    columns = (*METRICS, *RULE_METRICS[settings.rules])
    structures = (*STRUCTURE_NAMES, *(["cavity"] if settings.rules == "brats2024" else []))
    rows = [
        {
            "case_id": truth.case_id,
            "structure": name,
            **{m: metrics.get(name, {}).get(m, float("nan")) for m in columns},
        }
        for truth, (metrics, _) in zip(truths, results)
        for name in structures
    ]
    lesions = [row for _, case_lesions in results for row in case_lesions]
    return Results(rows, lesions, summarise(rows, structures, columns), columns)


def summarise(rows: list[dict], structures: tuple[str, ...], columns: tuple[str, ...]) -> dict:
    summary: dict = {}
    for name in structures:
        for metric in columns:
            values = np.array([r[metric] for r in rows if r["structure"] == name], dtype=float)
            values = values[~np.isnan(values)]
            summary.setdefault(name, {})[metric] = {
                "mean": float(values.mean()) if values.size else float("nan"),
                "median": float(np.median(values)) if values.size else float("nan"),
                "std": float(values.std()) if values.size else float("nan"),
                "n": int(values.size),
            }
    return summary


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, draws: int = 10_000) -> tuple[float, float]:
    """95 % interval of the mean of ``values`` (cases resampled with replacement ``draws`` times): how far a mean
    over this few cases can be trusted."""
    means = rng.choice(values, size=(draws, len(values)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def write_results(results: Results, out: Path) -> tuple[Path, Path]:
    """``out`` (CSV, one row per case and structure), ``out`` with ``.json`` (the summary) and, under a year's
    lesion-wise rules, ``<out stem>_lesions.csv`` (one row per lesion and false positive), atomically."""
    with atomic_path(out) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "structure", *results.columns])
        writer.writeheader()
        writer.writerows(results.rows)
    if results.lesions:
        with (
            atomic_path(out.with_name(f"{out.stem}_lesions.csv")) as temporary,
            open(temporary, "w", newline="") as stream,
        ):
            writer = csv.DictWriter(stream, fieldnames=LESION_COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(results.lesions)
    summary_path = out.with_suffix(".json")
    with atomic_path(summary_path) as temporary:
        temporary.write_text(json.dumps(results.summary, indent=2))
    return out, summary_path
