"""Lesion-wise scores the way each BraTS challenge's official code computes them, rule by rule.

Since 2023 BraTS ranks by lesion-wise Dice and HD95: every ground-truth lesion is scored against the predicted
components that reach it, and every missed lesion and every false-positive component counts, so a small lesion
weighs as much as a large one. Each year's code has its own rules (and quirks), followed here exactly:

``brats2023`` (``rachitsaluja/BraTS-2023-Metrics``, ``eval.py``, glioma settings), per region WT, TC, ET:
    1. components: 26-connected, of the ground truth and of the prediction;
    2. ground-truth lesions whose dilations (3 iterations of the 18-connected element) touch are one lesion;
    3. a predicted component is a true positive of a lesion if it overlaps that lesion dilated the same way (a
       component may count for several lesions); the others are false positives, whatever their size;
    4. per lesion: Dice and HD95 against the union of its matched components (a missed lesion: 0 and 374 mm);
    5. lesions of at most 50 mm^3 (voxels at 1 mm) are left out of the score and of the counts;
    6. score = sum over lesions / (lesions + false positives), a false positive adding 0 (Dice) or 374 mm (HD95);
       no lesion and no false positive: Dice 1, HD95 0.
    HD95 is DeepMind ``surface-distance``'s robust Hausdorff: surface elements weighted by area, the larger of
    the two directed 95th percentiles (also for the whole-image "legacy" HD95, 374 mm when one mask is empty).
    Sensitivity and specificity as GaNDLF computes them (an empty truth gives sensitivity 0, or 1 if nothing
    is predicted either).

``brats2024`` (``rachitsaluja/BraTS-2024-Metrics``, ``metrics_GLI.py``), per WT, TC, NETC, SNFH, ET and RC:
    as 2023, but
    1. thresholds 10 (ET) and 20 (the others) instead of 50;
    2. the prediction's components are merged by dilation like the ground truth's, and merged predicted lesions of
       at most the threshold in voxels are removed before anything is scored (also before the legacy Dice, HD95
       and NSD, which the 2024 code computes after this removal);
    3. dilation 5 for NETC and RC, 3 for the others: the code tests for "SFNH", so SNFH keeps 3;
    4. NETC, SNFH, ET and RC lesions of ground truth and prediction are regrouped across classes: lesions of one
       class touching (18-connected) the same lesion of a partner class become one lesion (NETC: by ET, then RC;
       ET: by NETC, then RC; RC: by ET, then NETC; SNFH: by ET, RC, then NETC; each against the partner's own
       lesions before regrouping, so the code's two passes give what one does);
    5. penalty 337 mm instead of 374;
    6. lesion-wise and legacy normalised surface Dice at 0.5 and 1 mm, nnU-Net's formula (the mean of both
       directions' shares of surface voxels within the tolerance; 6-connected surfaces); a false positive adds 0.
    Not followed: the 2024 code computes sensitivity and specificity on the arrays of lesion numbers, not on the
    masks; glioseg gives them on the masks, as 2023 does.

``panoptica`` (the registry package ``brats-evaluation``, the official tool since 2025): no merging of lesions,
    no size threshold, one-to-one maximum bipartite matching of overlapping components by Dice; its panoptic
    quality ``pq_dsc`` is the mean Dice of matched pairs times the F1 of the matching (:func:`panoptic_scores`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cc3d
import numpy as np
from scipy import ndimage

from glioseg.core.config import EvaluateConfig
from glioseg.core.labels import CORE, EDEMA, REGION_CLASSES, REGIONS, RESECTION_CAVITY, class_mask
from glioseg.evaluation.metrics import bounding_box, crop_to_tumours, distance_scores, surface_distances

STRUCTURE_CLASSES = {**REGION_CLASSES, "NETC": (CORE,), "SNFH": (EDEMA,), "RC": (RESECTION_CAVITY,)}
"""Every structure a year scores, as internal classes: the BraTS regions and the 2024 classes."""
DILATION = ndimage.generate_binary_structure(3, 2)  # the 18-connected element of the official dilations


@dataclass(frozen=True)
class LesionRules:
    """One year's lesion-wise rules (see the module doc).

    Attributes:
        structures: what is scored, keys of :data:`STRUCTURE_CLASSES`.
        threshold_mm3: ground-truth lesions at or under this volume are left out; per structure.
        dilation: iterations of the 18-connected dilation, for merging lesions and for matching; per structure.
        penalty_mm: HD95 of a missed lesion, of a false positive and of an empty mask against a full one.
        merge_predicted: merge predicted components by dilation too, and drop those at or under the threshold.
        regroup: the 2024 regrouping of lesions across NETC, SNFH, ET and RC.
        nsd_mm: tolerances of the normalised surface Dice (none in 2023).
    """

    structures: tuple[str, ...]
    threshold_mm3: dict[str, float]
    dilation: dict[str, int]
    penalty_mm: float
    merge_predicted: bool = False
    regroup: bool = False
    nsd_mm: tuple[float, ...] = ()


BRATS2023 = LesionRules(REGIONS, dict.fromkeys(REGIONS, 50.0), dict.fromkeys(REGIONS, 3), penalty_mm=374.0)
_STRUCTURES_2024 = ("WT", "TC", "NETC", "SNFH", "ET", "RC")
BRATS2024 = LesionRules(
    _STRUCTURES_2024,
    {name: 10.0 if name == "ET" else 20.0 for name in _STRUCTURES_2024},
    {name: 5 if name in ("NETC", "RC") else 3 for name in _STRUCTURES_2024},
    penalty_mm=337.0, merge_predicted=True, regroup=True, nsd_mm=(0.5, 1.0),
)  # fmt: skip
RULES = {"brats2023": BRATS2023, "brats2024": BRATS2024}
PANOPTICA_STRUCTURES = ("WT", "TC", "ET", "NETC", "SNFH", "RC")
PANOPTICA_PENALTY_MM = 373.0
"""brats-evaluation's HD95 where exactly one mask is empty ("the diameter of the cube in SRI space")."""
REGROUP_PARTNERS = {"NETC": ("ET", "RC"), "ET": ("NETC", "RC"), "RC": ("ET", "NETC"), "SNFH": ("ET", "RC", "NETC")}


@dataclass
class LesionScore:
    """One ground-truth lesion: its volume, whether a predicted component reached it, its Dice and HD95."""

    lesion: int
    volume_mm3: float
    matched: list[int]
    dice: float
    hd95: float
    nsd: dict[float, float] = field(default_factory=dict)
    counted: bool = True  # over the volume threshold


@dataclass
class StructureScore:
    """Lesion-wise and whole-image ("legacy") scores of one structure of one case."""

    lesionwise_dice: float
    lesionwise_hd95: float
    tp: int
    fp: int
    fn: int
    legacy_dice: float
    legacy_hd95: float
    sensitivity: float
    specificity: float
    lesions: list[LesionScore]
    false_positives: list[int]
    lesionwise_nsd: dict[float, float] = field(default_factory=dict)
    legacy_nsd: dict[float, float] = field(default_factory=dict)


def dilated(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``mask`` dilated by ``iterations`` of the 18-connected element (computed in its bounding box: the same)."""
    out = np.zeros_like(mask, dtype=bool)
    if mask.any():
        box = bounding_box(mask, iterations)
        out[box] = ndimage.binary_dilation(mask[box], structure=DILATION, iterations=iterations)
    return out


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of ``mask`` (``int32`` ids from 1) and their count, by ``cc3d``, the library the BraTS
    2023 and 2024 code and panoptica use: its numbering breaks panoptica's ties between equally good matches alike,
    and it labels 8x or more faster than ``scipy.ndimage.label`` on a BraTS-sized mask (measured here)."""
    labels, count = cc3d.connected_components(mask, connectivity=26, return_N=True)
    return labels.astype(np.int32, copy=False), int(count)


def merged_lesions(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Label each voxel of ``mask`` with its lesion: components whose dilations touch are one lesion. ``int32``."""
    grown, _ = components(dilated(mask, iterations))
    return np.where(mask, grown, 0).astype(np.int32)


def robust_hd95(reference: np.ndarray, prediction: np.ndarray, spacing: tuple[float, ...], penalty: float) -> float:
    """DeepMind ``surface-distance``'s robust Hausdorff at 95 %, as the BraTS 2023/2024 code takes it; ``penalty``
    where exactly one mask is empty (the code's infinity), 0 where both are. The library is called only with two
    non-empty masks: its empty-mask branch uses ``np.Inf``, which NumPy 2 removed."""
    if not reference.any() and not prediction.any():
        return 0.0
    if not reference.any() or not prediction.any():
        return penalty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # it imports from scipy.ndimage's old namespaces
        import surface_distance

        box = bounding_box(reference | prediction, 1)
        distances = surface_distance.compute_surface_distances(reference[box], prediction[box], tuple(spacing))
        return float(surface_distance.compute_robust_hausdorff(distances, 95))


def nnunet_nsd(prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...], tolerance: float) -> float:
    """The normalised surface Dice of nnU-Net (and the BraTS 2024 code): the mean over both directions of the share
    of surface voxels (6-connected surfaces) within ``tolerance`` mm of the other surface; 1 if both masks are
    empty, 0 if one is."""
    if not prediction.any() and not reference.any():
        return 1.0
    if not prediction.any() or not reference.any():
        return 0.0
    forward, backward = surface_distances(prediction, reference, spacing)
    within = np.mean(forward <= tolerance) + np.mean(backward <= tolerance)
    return float(within / (2 + 1e-8))  # tp_a + tp_b over the four shares, which sum to 2


def gandlf_sensitivity_specificity(
    prediction: np.ndarray, reference: np.ndarray, outside: int = 0
) -> tuple[float, float]:
    """Sensitivity and specificity as GaNDLF (and the BraTS 2023 code) compute them on two boolean masks (and
    ``outside`` more background voxels)."""
    predicted, actual = int(prediction.sum()), int(reference.sum())
    tp = int((prediction & reference).sum())
    tn = int((~prediction & ~reference).sum()) + outside
    tiny = np.finfo(float).tiny
    sensitivity = 1.0 if predicted == 0 and actual == 0 else tp / (actual + tiny)
    return sensitivity, tn / (tn + predicted - tp + tiny)


def _regroup(lesions: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """2024: lesions (ids) touching the same partner lesion share one id. Each lesion takes the id of the first
    partner it touches, in the code's order (sorted pairs); untouched lesions keep theirs; one touching pair changes
    nothing (the code relabels only from two pairs on)."""
    pairs = []
    for lesion in (int(v) for v in np.unique(lesions) if v):
        touched = np.unique(partner[dilated(lesions == lesion, 1)])
        pairs += [(lesion, int(p)) for p in touched if p]
    if len(pairs) <= 1:
        return lesions
    next_id, group_of = int(lesions.max()) + 1, {}
    for _, partner_id in sorted(pairs):
        if partner_id not in group_of:
            group_of[partner_id], next_id = next_id, next_id + 1
    relabelled = lesions.copy()
    seen = set()
    for lesion, partner_id in sorted(pairs):
        if lesion not in seen:
            seen.add(lesion)
            relabelled[lesions == lesion] = group_of[partner_id]
    return relabelled


def _consecutive(lesions: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..n in their order (the 2024 code's ``reorder_labels_nifti``)."""
    values = np.unique(lesions)
    lookup = np.zeros(int(values.max()) + 1, dtype=np.int32)
    lookup[values[values > 0]] = np.arange(1, int((values > 0).sum()) + 1)
    return lookup[lesions]


def lesion_maps(masks: dict[str, np.ndarray], rules: LesionRules, predicted: bool) -> dict[str, np.ndarray]:
    """The lesion ids of each structure's mask under ``rules``: merged by dilation (ground truth, and 2024
    predictions, then small predicted lesions dropped), regrouped across classes (2024); plain 26-connected
    components for 2023 predictions."""
    maps = {}
    for name in rules.structures:
        mask = masks[name]
        if predicted and not rules.merge_predicted:
            maps[name] = components(mask)[0]
            continue
        lesions = merged_lesions(mask, rules.dilation[name])
        if predicted:  # 2024: merged predicted lesions of at most the threshold (in voxels) are removed
            sizes = np.bincount(lesions.ravel())
            small = np.flatnonzero(sizes <= rules.threshold_mm3[name])
            lesions = np.where(np.isin(lesions, small[small > 0]), 0, lesions).astype(np.int32)
        maps[name] = lesions
    if rules.regroup:
        originals = dict(maps)
        for name, partners in REGROUP_PARTNERS.items():
            if name in maps:
                for partner in partners:
                    maps[name] = _regroup(maps[name], originals[partner])
                maps[name] = _consecutive(maps[name])
    return maps


def structure_masks(label: np.ndarray, structures: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: class_mask(label, STRUCTURE_CLASSES[name]) for name in structures}


def score_structure(
    predicted: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, ...],
    rules: LesionRules,
    name: str,
    outside: int = 0,
) -> StructureScore:
    """Lesion-wise and legacy scores of one structure, from the lesion ids of the prediction and the truth (on a
    crop of the volume: ``outside`` background voxels around it count as true negatives)."""
    voxel_mm3 = float(np.prod(spacing))
    penalty, threshold, iterations = rules.penalty_mm, rules.threshold_mm3[name], rules.dilation[name]
    prediction_mask, reference_mask = predicted > 0, reference > 0
    both_empty = not prediction_mask.any() and not reference_mask.any()
    legacy_dice = 1.0 if both_empty else _dice(prediction_mask, reference_mask)
    legacy_hd95 = robust_hd95(reference_mask, prediction_mask, spacing, penalty)
    sensitivity, specificity = gandlf_sensitivity_specificity(prediction_mask, reference_mask, outside)
    lesions, reached = [], set()
    for lesion in range(1, int(reference.max()) + 1):
        truth = reference == lesion
        hits = [int(v) for v in np.unique(predicted[dilated(truth, iterations)]) if v]
        reached.update(hits)
        matched = np.isin(predicted, hits) if hits else np.zeros_like(truth)
        score = LesionScore(lesion, float(truth.sum()) * voxel_mm3, hits, _dice(matched, truth),
                            robust_hd95(truth, matched, spacing, penalty),
                            {t: nnunet_nsd(matched, truth, spacing, t) for t in rules.nsd_mm})  # fmt: skip
        score.counted = score.volume_mm3 > threshold
        lesions.append(score)
    false_positives = sorted(int(v) for v in np.unique(predicted) if v and v not in reached)
    counted = [s for s in lesions if s.counted]
    denominator = len(counted) + len(false_positives)

    def mean_over_lesions(values: list[float], empty: float, penalty_each: float = 0.0) -> float:
        return empty if denominator == 0 else (sum(values) + penalty_each * len(false_positives)) / denominator

    return StructureScore(
        lesionwise_dice=mean_over_lesions([s.dice for s in counted], 1.0),
        lesionwise_hd95=mean_over_lesions([s.hd95 for s in counted], 0.0, penalty),
        tp=sum(bool(s.matched) for s in counted),
        fp=len(false_positives),
        fn=sum(not s.matched for s in counted),
        legacy_dice=legacy_dice,
        legacy_hd95=legacy_hd95,
        sensitivity=sensitivity,
        specificity=specificity,
        lesions=lesions,
        false_positives=false_positives,
        lesionwise_nsd={t: mean_over_lesions([s.nsd[t] for s in counted], 1.0) for t in rules.nsd_mm},
        legacy_nsd={t: nnunet_nsd(prediction_mask, reference_mask, spacing, t) for t in rules.nsd_mm},
    )


def _dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """``2 |A & B| / (|A| + |B|)``, as the official code (callers handle two empty masks)."""
    return 2.0 * float((prediction & reference).sum()) / float(prediction.sum() + reference.sum())


def lesionwise_scores(
    prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...], rules: LesionRules
) -> dict[str, StructureScore]:
    """Every structure's scores for one case under one year's rules.

    Args:
        prediction, truth: ``(X, Y, Z)`` internal classes on one grid.
        spacing: voxel size, mm.
    """
    # everything happens within the tumours' bounding box grown by the widest dilation: the same lesions, merges and
    # distances as in the whole volume, the voxels outside only true negatives (for the specificity)
    tumour = (prediction > 0) | (truth > 0)
    outside = 0
    if tumour.any():
        box = bounding_box(tumour, margin=max(rules.dilation.values()) + 1)
        prediction, truth = prediction[box], truth[box]
        outside = tumour.size - prediction.size
    predicted = lesion_maps(structure_masks(prediction, rules.structures), rules, predicted=True)
    reference = lesion_maps(structure_masks(truth, rules.structures), rules, predicted=False)
    return {name: score_structure(predicted[name], reference[name], spacing, rules, name, outside)
            for name in rules.structures}  # fmt: skip


def _joint_box(a: tuple[slice, ...], b: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The box holding two components' boxes and one voxel around them (surfaces and distances are the same there)."""
    return tuple(
        slice(max(min(x.start, y.start) - 1, 0), min(max(x.stop, y.stop) + 1, n)) for x, y, n in zip(a, b, shape)
    )


def panoptic_scores(
    prediction: np.ndarray,
    truth: np.ndarray,
    spacing: tuple[float, ...],
    structures: tuple[str, ...] = PANOPTICA_STRUCTURES,
    tolerance_mm: float = EvaluateConfig.tolerance_mm,
) -> dict[str, dict[str, float]]:
    """Panoptica's scores as ``brats-evaluation`` configures them for gliomas.

    Instances: 26-connected components, matched one to one by maximum bipartite matching of Dice among overlapping
    pairs (scipy's ``linear_sum_assignment`` on 1 - Dice, as panoptica); per matched pair Dice, HD95 and NSD at
    ``tolerance_mm`` (glioseg's, which are panoptica's); ``sq_*`` their means, ``rq`` the F1 of the matching,
    ``pq_dsc = sq_dsc * rq``. No component in either mask gives NaN; components but no match give sq_dsc 0, sq_nsd 0,
    sq_hd95 inf. Whole image (``hd95``, ``nsd``): panoptica calls its global metrics without the voxel spacing, so
    HD95 is in voxels (mm at BraTS's 1 mm) and NSD takes its default tolerance of 0.5 voxel (only coinciding surface
    voxels count); both empty: NaN (Dice too), one empty: HD95 373 (its penalty), NSD 0.

    Returns:
        ``{structure: {"dice", "hd95", "nsd", "pq_dsc", "sq_dsc", "sq_hd95", "sq_nsd", "rq", "tp", "fp", "fn"}}``.
    """
    from scipy.optimize import linear_sum_assignment

    prediction, truth = crop_to_tumours(prediction, truth)
    isotropic = len(set(spacing)) == 1
    out = {}
    for name in structures:
        classes = STRUCTURE_CLASSES[name]
        reference, references = components(class_mask(truth, classes))
        predicted, predictions = components(class_mask(prediction, classes))
        if not references and not predictions:
            whole = dict.fromkeys(("dice", "hd95", "nsd"), float("nan"))
        else:
            whole = {"dice": _dice(predicted > 0, reference > 0), "hd95": PANOPTICA_PENALTY_MM, "nsd": 0.0}
        pairs: list[tuple[int, int]] = []
        scores = []
        if references and predictions:
            in_voxels = surface_distances(predicted > 0, reference > 0, (1.0, 1.0, 1.0))
            whole["hd95"], whole["nsd"] = distance_scores(*in_voxels, 0.5)
            pair_codes = reference.astype(np.int64) * (predictions + 1) + predicted
            overlap = np.bincount(pair_codes.ravel(), minlength=(references + 1) * (predictions + 1))
            overlap = overlap.reshape(references + 1, predictions + 1)
            sizes_r, sizes_p = overlap.sum(1)[1:], overlap.sum(0)[1:]
            dice = 2 * overlap[1:, 1:] / (sizes_r[:, None] + sizes_p[None, :])
            rows, columns = linear_sum_assignment(np.where(dice >= 1e-6, 1 - dice, 1 + 1e-6))
            pairs = [(int(r), int(c)) for r, c in zip(rows, columns) if dice[r, c] >= 1e-6]
            boxes_r, boxes_p = ndimage.find_objects(reference), ndimage.find_objects(predicted)
            for r, c in pairs:
                if dice[r, c] == 1.0:  # the same voxels: no distance to measure
                    scores.append((1.0, 0.0, 1.0))
                    continue
                if references == predictions == 1 and isotropic:  # the pair is the whole image: reuse its distances
                    forward, backward = (d * spacing[0] for d in in_voxels)
                else:
                    box = _joint_box(boxes_r[r], boxes_p[c], reference.shape)
                    forward, backward = surface_distances(predicted[box] == c + 1, reference[box] == r + 1, spacing)
                scores.append((dice[r, c], *distance_scores(forward, backward, tolerance_mm)))
        tp, fp, fn = len(pairs), predictions - len(pairs), references - len(pairs)
        if references + predictions == 0:
            sq_dsc = sq_hd95 = sq_nsd = rq = float("nan")
        elif tp == 0:
            sq_dsc, sq_hd95, sq_nsd, rq = 0.0, float("inf"), 0.0, 0.0
        else:
            sq_dsc, sq_hd95, sq_nsd = (float(np.mean(values)) for values in zip(*scores))
            rq = tp / (tp + 0.5 * fp + 0.5 * fn)
        out[name] = {**whole, "pq_dsc": sq_dsc * rq, "sq_dsc": sq_dsc, "sq_hd95": sq_hd95, "sq_nsd": sq_nsd, "rq": rq,
                     "tp": tp, "fp": fp, "fn": fn}  # fmt: skip
    return out
