"""Sliding-window prediction of a preprocessed image with Gaussian importance weighting, mirror test-time
augmentation and ensembles of networks.

The sliding window follows MONAI's ``sliding_window_inference`` (same window positions, same Gaussian,
same padding; tests compare the two) but is written here: importing MONAI costs 2.2 s of a CLI prediction
that takes about 8 s in all (benchmarks/README.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from glioseg.network.unet import Network

MIRRORS = [()] + [dims for n in (1, 2, 3) for dims in itertools.combinations((2, 3, 4), n)]
"""The 8 combinations of flips over the spatial axes of a ``(B, C, X, Y, Z)`` tensor."""


def probabilities_from_logits(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Sigmoid per region, or softmax over classes, along dim 1."""
    return torch.sigmoid(logits) if head == "regions" else torch.softmax(logits, dim=1)


def gaussian_importance(patch: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """Window weights: a Gaussian (sigma = ``sigma_scale`` x size per axis), peak 1, floored at 1e-3."""
    weights = torch.ones(())
    for size in patch:
        x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        weights = weights[..., None] * torch.exp(-(x**2) / (2 * (sigma_scale * size) ** 2))
    return weights.clamp_min(max(float(weights.min()), 1e-3))


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices of windows of ``patch`` along an axis of ``size`` (>= patch), the last one flush with the end."""
    if size == patch:
        return [0]
    step = max(int(patch * (1 - overlap)), 1)
    count = next(n for n in range(1, size + 1) if (n - 1) * step + patch >= size)
    return [min(n * step, size - patch) for n in range(count)]


def sliding_window(image: torch.Tensor, patch: Sequence[int], overlap: float, predictor, batch: int) -> torch.Tensor:
    """Gaussian-weighted average of ``predictor`` over overlapping windows of ``image (1, C, x, y, z)``.

    An image smaller than ``patch`` is zero-padded (half before, half after) and the padding cut off again.
    Returns the ``(1, K, x, y, z)`` output on the image's device.
    """
    spatial = image.shape[2:]
    padding = [(max(p - n, 0) // 2, max(p - n, 0) - max(p - n, 0) // 2) for n, p in zip(spatial, patch)]
    if any(sum(pair) for pair in padding):
        image = torch.nn.functional.pad(image, [v for pair in reversed(padding) for v in pair])
    size = image.shape[2:]
    corners = list(itertools.product(*(window_starts(n, p, overlap) for n, p in zip(size, patch))))
    weights = gaussian_importance(patch).to(image.device)
    total = weight_sum = None
    for first in range(0, len(corners), batch):
        chosen = corners[first : first + batch]
        windows = [tuple(slice(c, c + p) for c, p in zip(corner, patch)) for corner in chosen]
        output = predictor(torch.cat([image[(0, slice(None), *w)][None] for w in windows])).float()
        if total is None:
            total = torch.zeros((1, output.shape[1], *size), device=image.device)
            weight_sum = torch.zeros(size, device=image.device)
        for index, window in enumerate(windows):
            total[(0, slice(None), *window)] += output[index] * weights
            weight_sum[window] += weights
    crop = tuple(slice(before, n - after) for (before, after), n in zip(padding, size))
    return (total / weight_sum)[(slice(None), slice(None), *crop)]


@torch.inference_mode()
def window_probabilities(
    model: Network,
    image: torch.Tensor,
    patch: tuple[int, int, int],
    overlap: float,
    flip: tuple[int, ...] = (),
    batch: int = 2,
) -> torch.Tensor:
    """One member's probabilities for a whole image.

    Args:
        image: ``float32 (1, 4, x, y, z)`` on the model's device; any size (padded to ``patch`` if smaller).
        patch: window size, a multiple of the model's divisor.
        overlap: fraction of a window shared with its neighbour (config.PredictConfig.overlap).
        flip: spatial dims to mirror before predicting (undone after).

    Returns:
        ``float32 (C, x, y, z)`` on the CPU: C = 3 regions or 4 classes.
    """
    model.eval()
    source = torch.flip(image, flip) if flip else image
    logits = sliding_window(source, patch, overlap, model, batch)
    probabilities = probabilities_from_logits(logits.float() / model.config.temperature, model.config.head)
    return (torch.flip(probabilities, flip) if flip else probabilities)[0].cpu()


def ensemble_probabilities(
    models: Sequence[Network],
    image: np.ndarray | torch.Tensor,
    patch: tuple[int, int, int],
    overlap: float,
    mirror: bool = False,
    batch: int = 2,
    device: str | torch.device = "cpu",
    each_member: Callable[[torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean probabilities over networks (folds) x mirrors, and their variance (None for a single member).

    Args:
        image: ``float32 (4, x, y, z)`` preprocessed.
        each_member: called with each network's own probabilities (its mirrors' mean), as they are made.

    Returns:
        ``(C, x, y, z)`` mean and ``(x, y, z)`` variance averaged over channels (an uncertainty map).
    """
    x = image if torch.is_tensor(image) else torch.from_numpy(np.array(image, dtype=np.float32))  # mmap -> memory
    x = x[None].to(device)
    total = squares = None
    members = 0
    flips = MIRRORS if mirror else [()]
    for model in models:
        own = None
        for flip in flips:
            p = window_probabilities(model, x, patch, overlap, flip, batch)
            total = p if total is None else total + p
            squares = p * p if squares is None else squares + p * p
            members += 1
            if each_member is not None:
                own = p if own is None else own + p
        if each_member is not None:
            each_member(own / len(flips))
    mean = total / members
    variance = (squares / members - mean * mean).clamp_min(0).mean(0) if members > 1 else None
    return mean, variance
