import dataclasses

import numpy as np
import pytest
import torch

from glioseg.core.config import PostprocessConfig
from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.inference.postprocess import clean_label, label_from_probabilities, uncrop_probabilities

ABSOLUTE_ONLY = {"min_component_ml": 0.01, "min_component_fraction": 0}


def test_small_components_dropped_and_small_enhancing_becomes_core():
    label = np.zeros((30, 30, 30), np.uint8)
    label[2:12, 2:12, 2:12] = EDEMA  # 1 mL at 1 mm
    label[5:8, 5:8, 5:8] = ENHANCING  # 27 voxels = 0.027 mL: too small to be trusted
    label[25, 25, 25] = EDEMA  # a lone voxel
    cleaned = clean_label(label, (1.0, 1.0, 1.0), PostprocessConfig(**ABSOLUTE_ONLY, min_enhancing_ml=0.5))
    assert cleaned[25, 25, 25] == 0
    assert not (cleaned == ENHANCING).any() and (cleaned[5:8, 5:8, 5:8] == CORE).all()
    kept = clean_label(label, (1.0, 1.0, 1.0), PostprocessConfig(**ABSOLUTE_ONLY, min_enhancing_ml=0.01))
    assert (kept[5:8, 5:8, 5:8] == ENHANCING).all()
    # thresholds are in mL: at 3 mm voxels the lone voxel is 0.027 mL and survives a 0.01 mL threshold
    coarse = clean_label(label, (3.0, 3.0, 3.0), PostprocessConfig(**ABSOLUTE_ONLY, min_enhancing_ml=0.5))
    assert coarse[25, 25, 25] == EDEMA


def test_stray_components_of_each_region_go_relative_to_the_largest():
    label = np.zeros((40, 40, 40), np.uint8)
    label[2:22, 2:22, 2:22] = EDEMA  # the tumour, 8 mL
    label[5:15, 5:15, 5:15] = CORE  # its core, 1 mL
    label[7:13, 7:13, 7:13] = ENHANCING  # its enhancing part, 0.216 mL
    label[18:20, 18:20, 18:20] = CORE  # a stray core component in the edema, 8 voxels
    label[5, 5:7, 5:7] = ENHANCING  # a stray enhancing component in the core, 4 voxels
    label[30:38, 30:38, 30:38] = EDEMA  # a satellite of 0.512 mL: 6 % of the largest
    label[24:36, 2:16, 2:16] = EDEMA  # a second lesion of 2.352 mL: 29 % of the largest, kept
    rules = PostprocessConfig(min_component_ml=0.1, min_component_fraction=0.2, min_enhancing_ml=0.1)
    cleaned = clean_label(label, (1.0, 1.0, 1.0), rules)
    assert (cleaned[30:38, 30:38, 30:38] == 0).all() and (cleaned[24:36, 2:16, 2:16] == EDEMA).all()
    assert (cleaned[18:20, 18:20, 18:20] == EDEMA).all()  # stray core -> edema
    assert (cleaned[5, 5:7, 5:7] == CORE).all() and (cleaned[7:13, 7:13, 7:13] == ENHANCING).all()  # stray -> core
    kept = clean_label(label, (1.0, 1.0, 1.0), dataclasses.replace(rules, min_component_fraction=0))
    assert np.array_equal(kept, label)  # 0 keeps every component (all above 0.1 mL)


def test_label_from_region_and_class_probabilities():
    regions = torch.tensor([[0.9, 0.9, 0.2], [0.1, 0.8, 0.1], [0.0, 0.7, 0.0]]).view(3, 3, 1, 1)
    assert label_from_probabilities(regions, "regions").ravel().tolist() == [EDEMA, ENHANCING, 0]
    classes = torch.tensor([[0.1, 0.7], [0.2, 0.1], [0.6, 0.1], [0.1, 0.1]]).view(4, 2, 1, 1)
    assert label_from_probabilities(classes, "classes").ravel().tolist() == [CORE, 0]


@pytest.mark.parametrize("head, channels", [("regions", 3), ("classes", 4)])
def test_channels_one_at_a_time_give_the_same_label(head, channels):
    """The native grids feed the rule one resampled channel at a time (numpy): the label must not change."""
    probabilities = torch.rand(channels, 9, 8, 7, generator=torch.Generator().manual_seed(0))
    probabilities[:, 0, 0, 0] = 0.5  # a tie on the threshold and between classes
    whole = label_from_probabilities(probabilities, head)
    streamed = label_from_probabilities((channel.numpy() for channel in probabilities), head)
    assert np.array_equal(whole, streamed) and whole.dtype == streamed.dtype == np.uint8


def test_uncrop_places_and_resamples():
    probabilities = torch.ones(3, 2, 2, 2)
    out = uncrop_probabilities(probabilities, ((2, 6), (0, 4), (1, 5)), (8, 6, 7))
    assert out.shape == (3, 8, 6, 7)
    assert out[:, 2:6, 0:4, 1:5].min() == 1 and out.sum() == 3 * 64  # resampled 2^3 -> 4^3, nothing outside
    # values: a parabola along x, 4 -> 8 voxels, is linearly interpolated at the fine voxels' centres
    coarse = torch.tensor([0.0, 0.1, 0.4, 0.9])
    ramp = uncrop_probabilities(coarse.view(1, 4, 1, 1).expand(3, 4, 2, 2).contiguous(), ((0, 8), (0, 4), (0, 4)),
                                (8, 4, 4))  # fmt: skip
    centres = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(ramp[0, :, 0, 0].numpy(), np.interp(centres, np.arange(4), coarse.numpy()), atol=1e-6)
    classes = uncrop_probabilities(torch.zeros(4, 4, 4, 4), ((0, 4), (0, 4), (0, 4)), (5, 5, 5), head="classes")
    assert classes[0, 4, 4, 4] == 1  # outside the crop: background
