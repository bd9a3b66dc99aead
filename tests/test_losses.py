import pytest
import torch
import torch.nn.functional as F

from glioseg.losses import deep_supervision_loss, make_loss, regions_target


def label_and_perfect_logits():
    label = torch.zeros(1, 4, 4, 4, dtype=torch.uint8)
    label[0, :2, :2, :2] = 1  # edema
    label[0, 2:, 2:, 2:] = 3  # enhancing
    logits = (regions_target(label) * 2 - 1) * 50  # confident and right
    return label, logits


def test_regions_target_nested():
    label = torch.tensor([[0, 1, 2, 3, 4]], dtype=torch.uint8).view(1, 5, 1, 1)
    target = regions_target(label)[0, :, :, 0, 0]
    assert target.tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 0]]


def test_soft_dice_known_values():
    label, logits = label_and_perfect_logits()
    dice = make_loss("dice")
    assert dice(logits, label).item() == pytest.approx(0.0, abs=1e-4)
    assert dice(-logits, label).item() == pytest.approx(1.0, abs=1e-3)
    # probabilities of one half everywhere: Dice = 2 * (0.5 n_pos) / (0.5 n + n_pos) per region
    half = torch.zeros_like(logits)
    target = regions_target(label)
    n = label.numel()
    expected = [1 - (2 * 0.5 * t.sum()) / (0.5 * n + t.sum()) for t in target[0]]
    assert dice(half, label).item() == pytest.approx(float(torch.stack(expected).mean()), abs=1e-4)


def test_dice_bce_adds_binary_cross_entropy():
    label, _ = label_and_perfect_logits()
    logits = torch.randn(1, 3, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = make_loss("dice")(logits, label) + F.binary_cross_entropy_with_logits(logits, regions_target(label))
    assert make_loss("dice_bce")(logits, label).item() == pytest.approx(expected.item(), rel=1e-5)


def test_dice_ce_on_classes():
    label, _ = label_and_perfect_logits()
    perfect = F.one_hot(label.long(), 4).permute(0, 4, 1, 2, 3).float() * 100
    assert make_loss("dice_ce")(perfect, label).item() == pytest.approx(0.0, abs=1e-4)
    uniform = torch.zeros(1, 4, 4, 4, 4)
    assert make_loss("dice_ce")(uniform, label).item() > 1.0  # CE alone is log 4 = 1.39


def test_deep_supervision_weights_coarser_outputs_less():
    label, logits = label_and_perfect_logits()
    coarse_wrong = -torch.ones(1, 3, 2, 2, 2) * 50
    loss = deep_supervision_loss(make_loss("dice"), [logits, coarse_wrong], label)
    # full resolution perfect (weight 1), coarse level (weight 1/2) all wrong: 0.5 * ~1 / 1.5
    assert loss.item() == pytest.approx(1 / 3, abs=0.02)


def test_unknown_loss():
    with pytest.raises(ValueError, match="dice_bce"):
        make_loss("focal")
