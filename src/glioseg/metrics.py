"""Overlap metrics per tumour class and BraTS region, on internal label maps.

Empty-mask conventions follow the BraTS 2023 evaluator: when both truth and prediction are empty, Dice is 1
(and HD95 0); when only one of them is empty, Dice is 0.
"""

from __future__ import annotations

import numpy as np

from glioseg.labels import CLASS_NAMES, REGION_CLASSES


def masks(label: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the regions WT, TC, ET and the classes edema, core, enhancing of a label map."""
    out = {region: np.isin(label, classes) for region, classes in REGION_CLASSES.items()}
    out.update({name: label == value for value, name in CLASS_NAMES.items()})
    return out


def confusion(prediction: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` of two boolean masks."""
    tp = int(np.count_nonzero(prediction & truth))
    predicted, actual = int(np.count_nonzero(prediction)), int(np.count_nonzero(truth))
    fp, fn = predicted - tp, actual - tp
    return tp, fp, fn, prediction.size - tp - fp - fn


def dice_from_counts(tp: int, fp: int, fn: int) -> float:
    """``2 tp / (2 tp + fp + fn)``; 1.0 when truth and prediction are both empty (BraTS convention)."""
    denominator = 2 * tp + fp + fn
    return 1.0 if denominator == 0 else 2 * tp / denominator


def overlap_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Dice, sensitivity and specificity per region and class.

    Args:
        prediction, truth: ``(X, Y, Z)`` internal classes on the same grid.

    Returns:
        ``{"WT": {"dice": ..., "sensitivity": ..., "specificity": ...}, ..., "enhancing": {...}}``.
        Sensitivity is NaN where the truth is empty, specificity where it fills the volume.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} are not on the same grid")
    predicted, actual = masks(prediction), masks(truth)
    result = {}
    for name in predicted:
        tp, fp, fn, tn = confusion(predicted[name], actual[name])
        result[name] = {
            "dice": dice_from_counts(tp, fp, fn),
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        }
    return result
