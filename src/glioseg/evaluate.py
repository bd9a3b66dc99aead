"""`glioseg evaluate`: predictions against ground truth, per case and summarised (CSV, JSON, table)."""

from __future__ import annotations

import csv
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from glioseg.config import EvaluateConfig
from glioseg.errors import InputError
from glioseg.io import atomic_path, find_cases, grid_mismatch, open_nifti, read_label
from glioseg.labels import CONVENTIONS, STRUCTURE_NAMES, LabelConvention, LabelValueError
from glioseg.layouts import CaseFiles
from glioseg.metrics import case_metrics

METRICS = ("dice", "hd95", "nsd", "sensitivity", "specificity", "volume_pred_ml", "volume_true_ml", "volume_diff_ml")


def prediction_convention(pred_dir: Path, override: str | None) -> LabelConvention | None:
    """The convention predictions are written in: ``--pred-labels``, else what ``predict.json`` says; None means
    each ground truth's own (glioseg's default when predicting)."""
    labels = override
    manifest = pred_dir / "predict.json"
    if not labels and manifest.exists():
        labels = json.loads(manifest.read_text()).get("labels")
    return CONVENTIONS[labels] if labels else None


def evaluate_case(
    prediction_path: Path, truth: CaseFiles, convention: LabelConvention, tolerance_mm: float
) -> dict[str, dict[str, float]]:
    """Metrics of one prediction file against a case's label (grids must match)."""
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
    return case_metrics(prediction, truth_label, spacing, tolerance_mm=tolerance_mm)  # type: ignore[arg-type]


def _evaluate_job(job: tuple) -> dict[str, dict[str, float]]:
    return evaluate_case(*job)


def evaluate(
    pred_dir: str | Path,
    gt_dir: str | Path,
    pred_labels: str | None = None,
    settings: EvaluateConfig = EvaluateConfig(),
    workers: int = 2,
) -> tuple[list[dict], dict]:
    """Evaluate every labelled case of ``gt_dir`` against ``pred_dir/<case_id>.nii.gz``; ``pred_labels`` is the
    predictions' convention (default: what their ``predict.json`` says, else each ground truth's own).

    Returns:
        Per-case rows ``{"case_id", "structure", <metric>: value}`` and the summary
        ``{structure: {metric: {"mean", "median", "std", "n"}}}`` (NaN values left out of each statistic).
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    truths = [c for c in find_cases(gt_dir, settings.label_convention) if c.label is not None]
    if not truths:
        raise InputError(gt_dir, "no labelled cases", "give the folder of ground-truth cases")
    convention = prediction_convention(pred_dir, pred_labels)
    jobs = []
    for truth in truths:
        path = pred_dir / f"{truth.case_id}.nii.gz"
        if not path.exists():
            raise InputError(path, "prediction missing for this case", "predict it first (glioseg predict)")
        jobs.append((path, truth, convention or truth.convention, settings.tolerance_mm))
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_evaluate_job, jobs))
    else:
        results = [_evaluate_job(job) for job in jobs]
    rows = [
        {"case_id": truth.case_id, "structure": name, **{m: result[name][m] for m in METRICS}}
        for truth, result in zip(truths, results)
        for name in STRUCTURE_NAMES
    ]
    return rows, summarise(rows)


def summarise(rows: list[dict]) -> dict:
    summary: dict = {}
    for name in STRUCTURE_NAMES:
        for metric in METRICS:
            values = np.array([r[metric] for r in rows if r["structure"] == name], dtype=float)
            values = values[~np.isnan(values)]
            summary.setdefault(name, {})[metric] = {
                "mean": float(values.mean()) if values.size else float("nan"),
                "median": float(np.median(values)) if values.size else float("nan"),
                "std": float(values.std()) if values.size else float("nan"),
                "n": int(values.size),
            }
    return summary


def write_results(rows: list[dict], summary: dict, out: Path) -> tuple[Path, Path]:
    """``out`` (CSV, one row per case and structure) and ``out`` with ``.json`` (the summary), atomically."""
    with atomic_path(out) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "structure", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    summary_path = out.with_suffix(".json")
    with atomic_path(summary_path) as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    return out, summary_path
