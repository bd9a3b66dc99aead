"""Training losses on internal label maps, built on MONAI's Dice implementations.

- ``dice``: the soft Dice loss of the original project, on the three regions (sigmoid).
- ``dice_bce`` (default): soft Dice + binary cross-entropy on the regions WT, TC, ET (sigmoid).
- ``dice_ce``: soft Dice + cross-entropy on the classes background, edema, core, enhancing (softmax).

Dice is computed over the whole batch (``batch=True``) so that a patch without tumour does not give a
meaningless per-sample Dice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from glioseg.labels import CORE, EDEMA, ENHANCING

LOSSES = ("dice", "dice_bce", "dice_ce")


def regions_target(label: torch.Tensor) -> torch.Tensor:
    """``(B, X, Y, Z)`` internal classes -> ``(B, 3, X, Y, Z)`` float WT, TC, ET (resection cavity: none)."""
    whole = (label == EDEMA) | (label == CORE) | (label == ENHANCING)
    core = (label == CORE) | (label == ENHANCING)
    return torch.stack([whole, core, label == ENHANCING], dim=1).float()


def classes_target(label: torch.Tensor) -> torch.Tensor:
    """``(B, X, Y, Z)`` internal classes -> ``(B, 1, X, Y, Z)`` long, resection cavity as background."""
    return torch.where(label > ENHANCING, 0, label).long()[:, None]


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss ``f(logits (B, C, ...), label (B, ...) uint8) -> scalar`` by name (see module doc)."""
    from monai.losses import DiceCELoss, DiceLoss

    if name == "dice":
        dice = DiceLoss(sigmoid=True, batch=True)
        return lambda logits, label: dice(logits, regions_target(label))
    if name == "dice_bce":
        # not MONAI's DiceCELoss(sigmoid=True): with more than one channel it applies softmax cross-entropy,
        # which is wrong for overlapping regions (tests/test_losses.py checks the sum below)
        dice, bce = DiceLoss(sigmoid=True, batch=True), torch.nn.BCEWithLogitsLoss()

        def dice_bce(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
            target = regions_target(label)
            return dice(logits, target) + bce(logits, target)

        return dice_bce
    if name == "dice_ce":
        dice_ce = DiceCELoss(softmax=True, to_onehot_y=True, batch=True)
        return lambda logits, label: dice_ce(logits, classes_target(label))
    raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")


def deep_supervision_loss(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], outputs: Sequence[torch.Tensor], label: torch.Tensor
) -> torch.Tensor:
    """Weighted sum over resolutions (weights 1, 1/2, 1/4, ... normalised), labels downsampled by nearest."""
    weights = [0.5**level for level in range(len(outputs))]
    total = 0.0
    for weight, logits in zip(weights, outputs):
        target = label
        if logits.shape[2:] != label.shape[1:]:
            target = F.interpolate(label[:, None].float(), size=logits.shape[2:], mode="nearest")[:, 0].to(label.dtype)
        total = total + weight * loss(logits, target)
    return total / sum(weights)
