import pytest
import torch
import torch.nn.functional as F

from glioseg.core.geometry import tumour_fractions
from glioseg.training.losses import classes_target, deep_supervision_loss, make_loss, regions_target


def fractions_and_perfect_logits():
    label = torch.zeros(4, 4, 4, dtype=torch.uint8)
    label[:2, :2, :2] = 1  # edema
    label[2:, 2:, 2:] = 3  # enhancing
    fractions = tumour_fractions(label.numpy())[None]  # (1, 3, 4, 4, 4)
    logits = (regions_target(fractions) * 2 - 1) * 50  # confident and right
    return fractions, logits


def test_regions_target_nested_and_resection_cavity_in_none():
    label = torch.tensor([0, 1, 2, 3, 4], dtype=torch.uint8).view(5, 1, 1)
    target = regions_target(tumour_fractions(label.numpy())[None])[0, :, :, 0, 0]
    assert target.tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 0]]


def test_soft_targets_keep_partial_volume():
    """A voxel half enhancing rim, half background is half in every region holding ET, and half background."""
    fractions = torch.tensor([0.0, 0.0, 0.5]).view(1, 3, 1, 1, 1)
    assert regions_target(fractions).flatten().tolist() == [0.5, 0.5, 0.5]
    assert classes_target(fractions).flatten().tolist() == [0.5, 0.0, 0.0, 0.5]


def test_soft_dice_known_values():
    fractions, logits = fractions_and_perfect_logits()
    dice = make_loss("dice")
    assert dice(logits, fractions).item() == pytest.approx(0.0, abs=1e-4)
    assert dice(-logits, fractions).item() == pytest.approx(1.0, abs=1e-3)
    # probabilities of one half everywhere: Dice = 2 * (0.5 n_pos) / (0.5 n + n_pos) per region
    half = torch.zeros_like(logits)
    target = regions_target(fractions)
    n = fractions[0, 0].numel()
    expected = [1 - (2 * 0.5 * t.sum()) / (0.5 * n + t.sum()) for t in target[0]]
    assert dice(half, fractions).item() == pytest.approx(float(torch.stack(expected).mean()), abs=1e-4)


def test_dice_bce_adds_binary_cross_entropy():
    fractions, _ = fractions_and_perfect_logits()
    logits = torch.randn(1, 3, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    target = regions_target(fractions)
    expected = make_loss("dice")(logits, fractions) + F.binary_cross_entropy_with_logits(logits, target)
    assert make_loss("dice_bce")(logits, fractions).item() == pytest.approx(expected.item(), rel=1e-5)


def test_dice_ce_on_classes():
    fractions, _ = fractions_and_perfect_logits()
    perfect = classes_target(fractions) * 100
    assert make_loss("dice_ce")(perfect, fractions).item() == pytest.approx(0.0, abs=1e-4)
    uniform = torch.zeros(1, 4, 4, 4, 4)
    assert make_loss("dice_ce")(uniform, fractions).item() > 1.0  # CE alone is log 4 = 1.39


def test_deep_supervision_weights_coarser_outputs_less_and_averages_targets():
    fractions, logits = fractions_and_perfect_logits()
    coarse_wrong = -torch.ones(1, 3, 2, 2, 2) * 50
    loss = deep_supervision_loss(make_loss("dice"), [logits, coarse_wrong], fractions)
    # full resolution perfect (weight 1), coarse level (weight 1/2) all wrong: 0.5 * ~1 / 1.5
    assert loss.item() == pytest.approx(1 / 3, abs=0.02)
    # the coarse level is taught the share of tumour in each 2x2x2 block, not one corner voxel of it
    seen = []
    thin = torch.zeros(1, 3, 4, 4, 4)
    thin[0, 2, 1] = 1  # a one-voxel enhancing slab at x = 1: a corner voxel (x = 0) would miss it
    deep_supervision_loss(lambda out, target: seen.append(target) or out.sum() * 0, [logits, coarse_wrong], thin)
    assert torch.allclose(seen[1][0, 2, 0], torch.full((2, 2), 0.5)) and not seen[1][0, 2, 1].any()


@pytest.mark.parametrize("name", ["dice", "dice_bce", "dice_ce"])
def test_each_loss_equals_monais(name):
    """The hand-written soft Dice is MONAI's DiceLoss(batch=True) (with its BCE or soft-target cross-entropy)."""
    from monai.losses import DiceCELoss, DiceLoss

    generator = torch.Generator().manual_seed(1)
    fractions = torch.rand(2, 3, 6, 5, 4, generator=generator) / 3  # shares summing to <= 1
    fractions[1, 2] = 0  # a region absent from one sample: the batch Dice still counts the other
    channels = 4 if name == "dice_ce" else 3
    logits = torch.randn(2, channels, 6, 5, 4, generator=generator) * 3
    if name == "dice_ce":
        expected = DiceCELoss(softmax=True, batch=True)(logits, classes_target(fractions))
    else:
        target = regions_target(fractions)
        expected = DiceLoss(sigmoid=True, batch=True)(logits, target)
        if name == "dice_bce":
            expected = expected + F.binary_cross_entropy_with_logits(logits, target)
    assert make_loss(name)(logits, fractions).item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-7)


def test_unknown_loss():
    with pytest.raises(ValueError, match="dice_bce"):
        make_loss("focal")
