"""Metrics on hand-made cases, checked against values worked out by hand or by brute force."""

import itertools
import math

import numpy as np
import pytest

from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.evaluation.metrics import EMPTY_HD95, case_metrics, hd95_and_nsd, volumes_ml


def brute_force_hd95(a, b, spacing):
    """Directly from the definition: surface voxels (a 6-neighbour outside), all pairwise distances."""

    def surface(mask):
        points = []
        for index in zip(*np.nonzero(mask)):
            for axis, step in itertools.product(range(3), (-1, 1)):
                neighbour = list(index)
                neighbour[axis] += step
                if not (0 <= neighbour[axis] < mask.shape[axis]) or not mask[tuple(neighbour)]:
                    points.append(index)
                    break
        return np.array(points, float) * np.array(spacing)

    pa, pb = surface(a), surface(b)
    distances = np.linalg.norm(pa[:, None] - pb[None], axis=-1)
    return np.percentile(np.concatenate([distances.min(1), distances.min(0)]), 95)  # both directions pooled


def test_empty_masks_follow_brats_conventions():
    empty = np.zeros((8, 8, 8), np.uint8)
    one = empty.copy()
    one[4, 4, 4] = ENHANCING
    both_empty = case_metrics(empty, empty)
    assert both_empty["ET"]["dice"] == 1.0 and both_empty["ET"]["hd95"] == 0.0 and both_empty["ET"]["nsd"] == 1.0
    assert math.isnan(both_empty["ET"]["sensitivity"]) and both_empty["ET"]["specificity"] == 1.0
    missed = case_metrics(empty, one)
    assert missed["ET"]["dice"] == 0.0 and missed["ET"]["hd95"] == EMPTY_HD95 and missed["ET"]["sensitivity"] == 0.0
    false_alarm = case_metrics(one, empty)
    assert false_alarm["ET"]["dice"] == 0.0 and false_alarm["ET"]["hd95"] == EMPTY_HD95
    assert false_alarm["ET"]["specificity"] == pytest.approx(1 - 1 / 512)


def test_single_voxels_with_anisotropic_spacing():
    a, b = np.zeros((6, 6, 6), bool), np.zeros((6, 6, 6), bool)
    a[1, 1, 1], b[2, 2, 1] = True, True
    hd95, nsd = hd95_and_nsd(a, b, (1.0, 2.0, 3.0))
    assert hd95 == pytest.approx(math.sqrt(1 + 4))
    assert nsd == 0.0
    assert hd95_and_nsd(a, a, (1.0, 2.0, 3.0)) == (0.0, 1.0)


def test_shifted_cube_matches_brute_force_and_hand_dice():
    truth = np.zeros((20, 20, 20), np.uint8)
    truth[5:11, 5:11, 5:11] = EDEMA  # 216 voxels
    prediction = np.zeros_like(truth)
    prediction[7:13, 5:11, 5:11] = EDEMA  # shifted 2 voxels along x: overlap 4 * 36 = 144
    spacing = (0.5, 1.0, 2.0)
    metrics = case_metrics(prediction, truth, spacing)
    assert metrics["WT"]["dice"] == pytest.approx(2 * 144 / (216 + 216))
    assert metrics["edema"]["sensitivity"] == pytest.approx(144 / 216)
    assert metrics["WT"]["hd95"] == pytest.approx(brute_force_hd95(prediction > 0, truth > 0, spacing))
    assert metrics["WT"]["volume_true_ml"] == pytest.approx(216 * 1.0 / 1000)
    assert metrics["WT"]["volume_diff_ml"] == pytest.approx(0.0)
    assert metrics["TC"]["dice"] == 1.0  # both empty


def test_irregular_shapes_match_brute_force():
    rng = np.random.default_rng(0)
    truth = (rng.random((12, 12, 10)) > 0.7).astype(np.uint8) * CORE
    prediction = (rng.random((12, 12, 10)) > 0.75).astype(np.uint8) * CORE
    spacing = (1.0, 1.5, 2.5)
    metrics = case_metrics(prediction, truth, spacing)
    assert metrics["TC"]["hd95"] == pytest.approx(brute_force_hd95(prediction > 0, truth > 0, spacing))


def test_nsd_counts_surface_within_tolerance():
    truth = np.zeros((12, 12, 12), bool)
    truth[3:9, 3:9, 3:9] = True
    shifted = np.roll(truth, 1, axis=0)
    _, tight = hd95_and_nsd(shifted, truth, (1.0, 1.0, 1.0), tolerance_mm=0.5)
    _, loose = hd95_and_nsd(shifted, truth, (1.0, 1.0, 1.0), tolerance_mm=1.0)
    assert 0 < tight < loose == 1.0


def test_classes_and_regions_are_nested_correctly():
    truth = np.array([[[EDEMA, CORE, ENHANCING, 0]]], np.uint8)
    prediction = np.array([[[EDEMA, ENHANCING, ENHANCING, 0]]], np.uint8)
    metrics = case_metrics(prediction, truth, distances=False)
    assert metrics["WT"]["dice"] == 1.0 and metrics["TC"]["dice"] == 1.0
    assert metrics["ET"]["dice"] == pytest.approx(2 / 3) and metrics["core"]["dice"] == 0.0
    assert volumes_ml(truth, (1, 1, 1)) == {"WT": 0.003, "TC": 0.002, "ET": 0.001, "edema": 0.001,
                                            "core": 0.001, "enhancing": 0.001}  # fmt: skip


def test_grids_must_match():
    with pytest.raises(ValueError, match="same grid"):
        case_metrics(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8))
