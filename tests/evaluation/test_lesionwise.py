"""Lesion-wise scores on hand-built cases whose answers follow from each year's rules by hand."""

import numpy as np
import pytest

from glioseg.core.labels import CORE, EDEMA, ENHANCING, RESECTION_CAVITY
from glioseg.evaluation.lesionwise import BRATS2023, BRATS2024, lesionwise_scores, panoptic_scores

SPACING = (1.0, 1.0, 1.0)


def volume(*cubes, value=ENHANCING, shape=(60, 60, 60)):
    """A label map of cubes ``(x, y, z, side)`` of one class."""
    label = np.zeros(shape, np.uint8)
    for x, y, z, side in cubes:
        label[x : x + side, y : y + side, z : z + side] = value
    return label


def test_2023_found_missed_and_false_positive():
    """Two lesions (1000 and 216 mm^3): one found exactly, one missed, and one false positive far away:
    lesion-wise Dice (1 + 0) / (2 + 1), HD95 (0 + 374 + 374) / 3."""
    truth = volume((5, 5, 5, 10), (40, 40, 40, 6))
    prediction = volume((5, 5, 5, 10), (5, 40, 40, 5))
    et = lesionwise_scores(prediction, truth, SPACING, BRATS2023)["ET"]
    assert et.lesionwise_dice == pytest.approx(1 / 3) and et.lesionwise_hd95 == pytest.approx(748 / 3)
    assert (et.tp, et.fn, et.fp) == (1, 1, 1)
    assert et.legacy_dice == pytest.approx(2 * 1000 / (1216 + 1125))
    assert [s.volume_mm3 for s in et.lesions] == [1000.0, 216.0] or sorted(s.volume_mm3 for s in et.lesions) == [
        216,
        1000,
    ]


def test_2023_lesions_whose_dilations_touch_are_one_and_small_ones_are_left_out():
    """Two cubes 4 voxels apart (3-voxel dilations touch) are one lesion; a 27 mm^3 lesion (<= 50) that is missed
    counts neither as a lesion nor as a miss."""
    truth = volume((5, 5, 5, 8), (5, 5, 17, 8), (45, 45, 45, 3))
    prediction = volume((5, 5, 5, 8))  # the first cube only
    et = lesionwise_scores(prediction, truth, SPACING, BRATS2023)["ET"]
    counted = [s for s in et.lesions if s.counted]
    assert len(et.lesions) == 2 and len(counted) == 1
    assert counted[0].volume_mm3 == 1024 and counted[0].dice == pytest.approx(2 * 512 / (1024 + 512))
    assert (et.tp, et.fn, et.fp) == (1, 0, 0)
    assert et.lesionwise_dice == pytest.approx(2 / 3)


def test_empty_masks_follow_the_official_conventions():
    empty = np.zeros((30, 30, 30), np.uint8)
    both = lesionwise_scores(empty, empty, SPACING, BRATS2023)["ET"]
    assert (both.lesionwise_dice, both.lesionwise_hd95, both.legacy_dice, both.legacy_hd95) == (1.0, 0.0, 1.0, 0.0)
    assert both.sensitivity == 1.0
    false_alarm = lesionwise_scores(volume((5, 5, 5, 4), shape=(30, 30, 30)), empty, SPACING, BRATS2023)["ET"]
    assert (false_alarm.lesionwise_dice, false_alarm.lesionwise_hd95) == (0.0, 374.0)
    assert (false_alarm.legacy_dice, false_alarm.legacy_hd95, false_alarm.fp) == (0.0, 374.0, 1)
    missed = lesionwise_scores(empty, volume((5, 5, 5, 6), shape=(30, 30, 30)), SPACING, BRATS2024)["ET"]
    assert (missed.lesionwise_dice, missed.lesionwise_hd95, missed.legacy_hd95) == (0.0, 337.0, 337.0)
    assert missed.lesionwise_nsd == {0.5: 0.0, 1.0: 0.0}


def test_2024_drops_small_predicted_lesions_first_and_uses_its_own_thresholds():
    """A 9-voxel predicted speck (<= 10 for ET) is removed before scoring: no false positive, and the legacy Dice
    is that of the cleaned prediction. A 27 mm^3 lesion counts in 2024 (> 10) but not in 2023 (<= 50)."""
    truth = volume((5, 5, 5, 10), (40, 40, 40, 3))
    speck = np.zeros((60, 60, 60), np.uint8)
    speck[50:53, 5:8, 5] = ENHANCING  # 9 voxels
    prediction = np.maximum(volume((5, 5, 5, 10)), speck)
    et_2024 = lesionwise_scores(prediction, truth, SPACING, BRATS2024)["ET"]
    assert et_2024.fp == 0 and (et_2024.tp, et_2024.fn) == (1, 1)
    assert et_2024.lesionwise_dice == pytest.approx(0.5) and et_2024.lesionwise_hd95 == pytest.approx(337 / 2)
    assert et_2024.legacy_dice == pytest.approx(2 * 1000 / (1027 + 1000))
    et_2023 = lesionwise_scores(prediction, truth, SPACING, BRATS2023)["ET"]
    assert et_2023.fp == 1 and (et_2023.tp, et_2023.fn) == (1, 0)  # the speck counts, the small lesion does not
    assert et_2023.lesionwise_dice == pytest.approx(1 / 2)
    assert et_2024.lesionwise_nsd[1.0] == pytest.approx(0.5)  # the found lesion 1, the missed one 0


def test_2024_regroups_core_lesions_that_touch_one_enhancing_lesion():
    """Two necrotic cores 8 voxels apart inside one enhancing rim are one NETC lesion in 2024 (they touch the same
    ET lesion), so finding one of them scores that lesion's Dice, not one found and one missed."""
    truth = np.zeros((60, 60, 60), np.uint8)
    truth[10:40, 10:40, 10:40] = ENHANCING
    truth[14:20, 14:20, 14:36] = CORE
    truth[30:36, 30:36, 14:36] = CORE  # NETC components 10 voxels apart: dilations (5 each) do not join them
    truth[45:55, 45:55, 45:55] = RESECTION_CAVITY
    truth[0:5, 0:5, 0:5] = EDEMA
    prediction = truth.copy()
    prediction[30:36, 30:36, 14:36] = ENHANCING  # the second core predicted as enhancing
    netc = lesionwise_scores(prediction, truth, SPACING, BRATS2024)["NETC"]
    assert len(netc.lesions) == 1 and netc.lesions[0].volume_mm3 == 2 * 6 * 6 * 22
    assert netc.lesionwise_dice == pytest.approx(2 * 792 / (1584 + 792))
    rc = lesionwise_scores(prediction, truth, SPACING, BRATS2024)["RC"]
    assert rc.lesionwise_dice == 1.0 and rc.tp == 1


def test_panoptica_matches_one_to_one_without_merging_or_thresholds():
    """The same case as the first 2023 test: panoptica's pq_dsc is 1 (Dice of the one pair) x F1 1/(1 + 1/2 + 1/2);
    two lesions merged by the 2023 rules are two for panoptica, one of them found."""
    truth = volume((5, 5, 5, 10), (40, 40, 40, 6))
    prediction = volume((5, 5, 5, 10), (5, 40, 40, 5))
    et = panoptic_scores(prediction, truth, SPACING)["ET"]
    assert et == {"pq_dsc": 0.5, "sq_dsc": 1.0, "sq_hd95": 0.0, "sq_nsd": 1.0, "rq": 0.5, "tp": 1, "fp": 1, "fn": 1,
                  "dice": 2 * 1000 / (1000 + 216 + 1000 + 125), "hd95": et["hd95"], "nsd": et["nsd"]}  # fmt: skip
    assert et["hd95"] > 30 and 0 < et["nsd"] < 1  # whole image: the missed cube and the false one are far away
    merged = volume((5, 5, 5, 8), (5, 5, 17, 8))
    found = volume((5, 5, 5, 8))
    assert panoptic_scores(found, merged, SPACING)["ET"]["pq_dsc"] == pytest.approx(1 / (1 + 0.5))
    assert lesionwise_scores(found, merged, SPACING, BRATS2023)["ET"].lesionwise_dice == pytest.approx(2 / 3)


def test_panoptica_pairs_each_component_once_maximising_the_total_dice():
    """One predicted component overlapping two true ones is matched to the one it overlaps best; the other is missed.
    No component anywhere gives NaN (panoptica's edge case), components but no overlap give 0."""
    truth = volume((5, 5, 5, 10), (5, 5, 20, 4))
    prediction = volume((5, 5, 5, 10))
    prediction[8:10, 8:10, 15:22] = ENHANCING  # a bridge reaching the small lesion
    et = panoptic_scores(prediction, truth, SPACING)["ET"]
    assert (et["tp"], et["fp"], et["fn"]) == (1, 0, 1) and et["rq"] == pytest.approx(2 / 3)
    big = 1000
    assert et["sq_dsc"] == pytest.approx(2 * big / (big + big + 2 * 2 * 7 - 2 * 2 * 0))
    empty = np.zeros((20, 20, 20), np.uint8)
    assert np.isnan(panoptic_scores(empty, empty, SPACING)["ET"]["pq_dsc"])
    apart = panoptic_scores(volume((1, 1, 1, 3), shape=(20, 20, 20)), volume((12, 12, 12, 3), shape=(20, 20, 20)),
                            SPACING)["ET"]  # fmt: skip
    assert (apart["pq_dsc"], apart["sq_dsc"], apart["sq_hd95"], apart["tp"]) == (0.0, 0.0, float("inf"), 0)
