"""Sliding-window prediction of a preprocessed image, with Gaussian importance weighting and optional
mirror test-time augmentation (MONAI's ``sliding_window_inference`` does the windowing)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from glioseg.model import UNet3D


def probabilities_from_logits(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Sigmoid per region, or softmax over classes, along dim 1."""
    return torch.sigmoid(logits) if head == "regions" else torch.softmax(logits, dim=1)


@torch.inference_mode()
def sliding_window_probabilities(
    model: UNet3D,
    image: np.ndarray | torch.Tensor,
    patch: tuple[int, int, int],
    overlap: float = 0.5,
    mirror: bool = False,
    batch: int = 2,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Probabilities for a whole preprocessed image.

    Args:
        image: ``float32 (4, x, y, z)``; any size (padded to at least ``patch`` internally).
        patch: window size, a multiple of the model's divisor.
        overlap: fraction of a window shared with its neighbour (0.5 = nnU-Net's default, 0.25 = cheap).
        mirror: also predict the 7 mirrored copies (all combinations of spatial flips) and average.

    Returns:
        ``float32 (C, x, y, z)`` on the CPU: C = 3 regions or 4 classes.
    """
    from monai.inferers import sliding_window_inference

    model.eval()
    x = torch.as_tensor(np.asarray(image) if not torch.is_tensor(image) else image)[None].to(device)
    flips = [()] + ([c for n in (1, 2, 3) for c in itertools.combinations((2, 3, 4), n)] if mirror else [])
    total = None
    for dims in flips:
        source = torch.flip(x, dims) if dims else x
        logits = sliding_window_inference(
            source, roi_size=patch, sw_batch_size=batch, predictor=model, overlap=overlap, mode="gaussian"
        )
        probabilities = probabilities_from_logits(logits.float(), model.config.head)
        probabilities = torch.flip(probabilities, dims) if dims else probabilities
        total = probabilities if total is None else total + probabilities
    return (total / len(flips))[0].cpu()
