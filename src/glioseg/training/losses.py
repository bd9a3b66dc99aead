"""Training losses on tumour fractions.

- ``dice``: the soft Dice loss of the original project, on the three regions (sigmoid).
- ``dice_bce`` (default): soft Dice + binary cross-entropy on the regions WT, TC, ET (sigmoid).
- ``dice_ce``: soft Dice + cross-entropy on the classes background, edema, core, enhancing (softmax).

Targets are the share of each voxel that is edema, core and enhancing tumour (``(B, 3, X, Y, Z)``, see
``glioseg.core.geometry.tumour_fractions``): 0 or 1 on the label's own grid, in between where preprocessing or
augmentation resampled a boundary, so a coarse voxel half on a thin rim is taught "half rim", not a coin toss.
Dice is computed over the whole batch (``batch=True``) so that a patch without tumour does not give a
meaningless per-sample Dice.

The soft Dice is MONAI's ``DiceLoss(batch=True)`` formula written out (``tests/training/test_losses.py`` checks
every loss against MONAI's to 1e-6): importing MONAI took 4.0 s of every ``glioseg train`` start on this
project's 2 cores (measured 2026-12-08; the training itself of a small run is seconds), for three lines of arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from glioseg.core.config import LOSSES
from glioseg.core.labels import REGION_CLASSES, TUMOUR_CLASSES


def regions_target(fractions: torch.Tensor) -> torch.Tensor:
    """``(B, 3, ...)`` edema, core, enhancing shares -> ``(B, 3, ...)`` WT, TC, ET shares (labels.REGION_CLASSES)."""
    channel = {value: index for index, value in enumerate(TUMOUR_CLASSES)}
    return torch.stack(
        [sum(fractions[:, channel[c]] for c in classes) for classes in REGION_CLASSES.values()], dim=1
    ).clamp(0, 1)


def classes_target(fractions: torch.Tensor) -> torch.Tensor:
    """``(B, 3, ...)`` tumour shares -> ``(B, 4, ...)`` background, edema, core, enhancing (summing to 1)."""
    background = (1 - fractions.sum(1, keepdim=True)).clamp_min(0)
    return torch.cat([background, fractions], dim=1)


SMOOTH = 1e-5
"""Added to the Dice's numerator and denominator (MONAI's default): an empty region predicted empty scores 1."""


def soft_dice_loss(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice per channel over the batch and every voxel together, averaged over channels."""
    dims = [0, *range(2, target.ndim)]
    overlap = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    return (1 - (2 * overlap + SMOOTH) / (total + SMOOTH)).mean()


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss ``f(logits (B, C, ...), fractions (B, 3, ...)) -> scalar`` by name (see module doc)."""
    if name == "dice":
        return lambda logits, fractions: soft_dice_loss(torch.sigmoid(logits), regions_target(fractions))
    if name == "dice_bce":  # sigmoid per region: the regions overlap, so no softmax cross-entropy

        def dice_bce(logits: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
            target = regions_target(fractions)
            return soft_dice_loss(torch.sigmoid(logits), target) + F.binary_cross_entropy_with_logits(logits, target)

        return dice_bce
    if name == "dice_ce":  # a 4-channel target: cross-entropy on class shares

        def dice_ce(logits: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
            target = classes_target(fractions)
            return soft_dice_loss(torch.softmax(logits, 1), target) + F.cross_entropy(logits, target)

        return dice_ce
    raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")


def deep_supervision_loss(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    outputs: Sequence[torch.Tensor],
    fractions: torch.Tensor,
) -> torch.Tensor:
    """Weighted sum over resolutions (weights 1, 1/2, 1/4, ... normalised); each coarser level's targets are the
    tumour shares averaged over the fine voxels it covers (area downsampling, not one corner voxel)."""
    weights = [0.5**level for level in range(len(outputs))]
    total = 0.0
    for weight, logits in zip(weights, outputs):
        target = fractions
        if logits.shape[2:] != fractions.shape[2:]:
            target = F.interpolate(fractions, size=logits.shape[2:], mode="area")
        total = total + weight * loss(logits, target)
    return total / sum(weights)
