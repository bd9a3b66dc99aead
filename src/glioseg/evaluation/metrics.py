"""Segmentation metrics per tumour class and BraTS region, on internal label maps.

Per region (WT, TC, ET) and class (edema, core, enhancing): Dice, HD95 (mm), normalised surface Dice at a
tolerance, sensitivity, specificity and volumes (mL). Surfaces and distances follow medpy / panoptica (the engine
of ``brats-evaluation``, the official BraTS tool since 2025): a surface voxel is a mask voxel with a 6-neighbour
outside the mask; HD95 is the 95th percentile of the surface-to-surface distances of both directions pooled, in mm
(spacing-aware), as panoptica computes it (medpy and MONAI take the larger of the two directed percentiles instead,
which is never smaller); NSD is the mean over both directions of the share of surface voxels within the tolerance
(panoptica's, after GaNDLF and nnU-Net). Each BraTS year's own rules are in ``glioseg.evaluation.lesionwise``.

Empty masks, as the BraTS 2023 code treats them: truth and prediction both empty -> Dice 1, HD95 0,
NSD 1; exactly one empty -> Dice 0, HD95 = ``EMPTY_HD95`` (374 mm, the BraTS 2023 penalty), NSD 0.
Sensitivity is NaN for an empty truth, specificity for a truth that fills the volume.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from glioseg.core.config import EvaluateConfig
from glioseg.core.labels import CLASS_NAMES, REGION_CLASSES, STRUCTURE_NAMES, class_mask

EMPTY_HD95 = 374.0
_SIX_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)


def masks(label: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the regions WT, TC, ET and the classes edema, core, enhancing of a label map."""
    out = {region: class_mask(label, classes) for region, classes in REGION_CLASSES.items()}
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


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=_SIX_NEIGHBOURS, border_value=0)


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The bounding box of a non-empty ``mask`` grown by ``margin`` voxels, within the volume."""
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(present[0]) - margin, 0), min(int(present[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def crop_to_tumours(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both label maps inside the bounding box of their tumours plus one voxel: every component, surface and
    distance is the same there as in the whole volume, at a fraction of the cost (unchanged without a tumour)."""
    tumour = (prediction > 0) | (truth > 0)
    if not tumour.any():
        return prediction, truth
    box = bounding_box(tumour, margin=1)
    return prediction[box], truth[box]


def surface_distances(
    prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each prediction surface voxel to the truth surface, and back.

    Both masks must be non-empty. Everything runs inside the bounding box of the two masks plus one voxel,
    which holds every surface voxel and gives the same erosion as the whole volume.
    """
    box = bounding_box(prediction | truth, margin=1)
    p_surface, t_surface = _surface(prediction[box]), _surface(truth[box])
    scale = np.asarray(spacing)
    t_points, p_points = np.argwhere(t_surface) * scale, np.argwhere(p_surface) * scale
    # nearest surface voxel by k-d tree: the same distances as a distance transform of the box, faster (measured on
    # a real WT shifted 3 voxels: 0.06 s against 0.16 s); a voxel on both surfaces is at distance 0, no lookup
    forward, backward = np.zeros(len(p_points)), np.zeros(len(t_points))
    p_only, t_only = ~t_surface[p_surface], ~p_surface[t_surface]
    if p_only.any():
        forward[p_only] = cKDTree(t_points).query(p_points[p_only])[0]
    if t_only.any():
        backward[t_only] = cKDTree(p_points).query(t_points[t_only])[0]
    return forward, backward


def hd95_and_nsd(
    prediction: np.ndarray,
    truth: np.ndarray,
    spacing: tuple[float, ...],
    tolerance_mm: float = EvaluateConfig.tolerance_mm,
) -> tuple[float, float]:
    """HD95 in mm and normalised surface Dice at ``tolerance_mm`` (BraTS empty-mask conventions)."""
    empty_p, empty_t = not prediction.any(), not truth.any()
    if empty_p and empty_t:
        return 0.0, 1.0
    if empty_p or empty_t:
        return EMPTY_HD95, 0.0
    return distance_scores(*surface_distances(prediction, truth, spacing), tolerance_mm)


def distance_scores(forward: np.ndarray, backward: np.ndarray, tolerance_mm: float) -> tuple[float, float]:
    """HD95 and NSD of the surface distances of both directions: the 95th percentile of them pooled (as the BraTS
    evaluator) and the mean of both directions' shares within the tolerance (as panoptica)."""
    hd95 = float(np.percentile(np.concatenate([forward, backward]), 95))
    within = np.mean(forward <= tolerance_mm) + np.mean(backward <= tolerance_mm)
    return hd95, float(within / 2)


def case_metrics(
    prediction: np.ndarray,
    truth: np.ndarray,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    distances: bool = True,
    tolerance_mm: float = EvaluateConfig.tolerance_mm,
) -> dict[str, dict[str, float]]:
    """All metrics for one case.

    Args:
        prediction, truth: ``(X, Y, Z)`` internal classes on the same grid.
        spacing: voxel size in mm.
        distances: also compute HD95 and NSD (the slow part; validation during training skips them).

    Returns:
        ``{"WT": {"dice", "hd95", "nsd", "sensitivity", "specificity", "volume_pred_ml", "volume_true_ml",
        "volume_diff_ml"}, ..., "enhancing": {...}}``.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} are not on the same grid")
    voxel_ml = float(np.prod(spacing)) / 1000
    tumour = (prediction > 0) | (truth > 0)
    # everything outside the tumours' bounding box is a true negative: count inside it only (fast)
    box = bounding_box(tumour, margin=1) if tumour.any() else (slice(0, 0),) * 3
    predicted, actual = masks(prediction[box]), masks(truth[box])
    outside = prediction.size - predicted["WT"].size
    result = {}
    for name in STRUCTURE_NAMES:
        tp, fp, fn, tn = confusion(predicted[name], actual[name])
        tn += outside
        row = {
            "dice": dice_from_counts(tp, fp, fn),
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
            "volume_pred_ml": (tp + fp) * voxel_ml,
            "volume_true_ml": (tp + fn) * voxel_ml,
            "volume_diff_ml": (fp - fn) * voxel_ml,
        }
        if distances:
            row["hd95"], row["nsd"] = hd95_and_nsd(predicted[name], actual[name], spacing, tolerance_mm)
        result[name] = row
    return result


def volumes_ml(label: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """Tumour volume in mL of each region and class of a label map."""
    voxel_ml = float(np.prod(spacing)) / 1000
    return {name: float(np.count_nonzero(mask)) * voxel_ml for name, mask in masks(label).items()}


def sens_spec_table(prediction, truth: np.ndarray):
    """Sensitivity, specificity and Dice per class (edema, core, enhancing), as a pandas DataFrame.

    The table the original project printed, from one prediction. ``prediction`` is a label array or a
    ``glioseg.inference.predict.Prediction`` (anything ``np.asarray`` turns into internal classes).

    Example:
        >>> sens_spec_table(model.predict(case), case.label)
                   sensitivity  specificity      dice
        edema         0.91         0.998       0.87
        ...
    """
    import pandas as pd

    metrics = case_metrics(np.asarray(prediction), truth, distances=False)
    names = list(CLASS_NAMES.values())
    return pd.DataFrame(
        {key: [metrics[name][key] for name in names] for key in ("sensitivity", "specificity", "dice")}, index=names
    )
