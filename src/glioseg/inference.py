"""Sliding-window prediction of a preprocessed image with Gaussian importance weighting (MONAI's
``sliding_window_inference``), mirror test-time augmentation and ensembles of networks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch

from glioseg.model import UNet3D

MIRRORS = [()] + [dims for n in (1, 2, 3) for dims in itertools.combinations((2, 3, 4), n)]
"""The 8 combinations of flips over the spatial axes of a ``(B, C, X, Y, Z)`` tensor."""


def probabilities_from_logits(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Sigmoid per region, or softmax over classes, along dim 1."""
    return torch.sigmoid(logits) if head == "regions" else torch.softmax(logits, dim=1)


@torch.inference_mode()
def window_probabilities(
    model: UNet3D,
    image: torch.Tensor,
    patch: tuple[int, int, int],
    overlap: float = 0.5,
    flip: tuple[int, ...] = (),
    batch: int = 2,
) -> torch.Tensor:
    """One member's probabilities for a whole image.

    Args:
        image: ``float32 (1, 4, x, y, z)`` on the model's device; any size (padded to ``patch`` if smaller).
        patch: window size, a multiple of the model's divisor.
        overlap: fraction of a window shared with its neighbour (0.5 = nnU-Net's default, 0.25 = cheap).
        flip: spatial dims to mirror before predicting (undone after).

    Returns:
        ``float32 (C, x, y, z)`` on the CPU: C = 3 regions or 4 classes.
    """
    from monai.inferers import sliding_window_inference

    model.eval()
    source = torch.flip(image, flip) if flip else image
    logits = sliding_window_inference(
        source, roi_size=patch, sw_batch_size=batch, predictor=model, overlap=overlap, mode="gaussian"
    )
    probabilities = probabilities_from_logits(logits.float(), model.config.head)
    return (torch.flip(probabilities, flip) if flip else probabilities)[0].cpu()


def ensemble_probabilities(
    models: Sequence[UNet3D],
    image: np.ndarray | torch.Tensor,
    patch: tuple[int, int, int],
    overlap: float = 0.5,
    mirror: bool = False,
    batch: int = 2,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean probabilities over networks (folds) x mirrors, and their variance (None for a single member).

    Args:
        image: ``float32 (4, x, y, z)`` preprocessed.

    Returns:
        ``(C, x, y, z)`` mean and ``(x, y, z)`` variance averaged over channels (an uncertainty map).
    """
    x = image if torch.is_tensor(image) else torch.from_numpy(np.array(image, dtype=np.float32))  # mmap -> memory
    x = x[None].to(device)
    total = squares = None
    members = 0
    for model in models:
        for flip in MIRRORS if mirror else [()]:
            p = window_probabilities(model, x, patch, overlap, flip, batch)
            total = p if total is None else total + p
            squares = p * p if squares is None else squares + p * p
            members += 1
    mean = total / members
    variance = (squares / members - mean * mean).clamp_min(0).mean(0) if members > 1 else None
    return mean, variance
