"""Probabilities -> internal label map, cleaned the way BraTS teams do, and put back on the original grid."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from glioseg.core.config import PostprocessConfig
from glioseg.core.labels import BACKGROUND, CORE, EDEMA, ENHANCING, label_from_regions

REGION_THRESHOLD = 0.5
"""A voxel is in a region (WT, TC, ET) where the region's probability exceeds this."""


def label_from_probabilities(
    probabilities: torch.Tensor | Iterable[torch.Tensor | np.ndarray], head: str
) -> np.ndarray:
    """``(C, x, y, z)`` probabilities -> ``uint8 (x, y, z)`` internal classes: the one rule, on any grid.

    Regions head: WT/TC/ET above :data:`REGION_THRESHOLD`, nested (ET wins over TC over WT). Classes head: argmax,
    ties to the lower class. ``probabilities`` may also be its channels one at a time (a generator): on a large
    native grid only one float volume is then held (:mod:`glioseg.inference.native`).
    """
    if head == "regions":
        return label_from_regions(np.stack([np.asarray(channel > REGION_THRESHOLD) for channel in probabilities]))
    # argmax written as a loop over the few classes: 5x faster than torch's strided argmax, and it streams
    best = label = None
    for value, channel in enumerate(probabilities):
        channel = torch.as_tensor(channel)
        if best is None:
            best, label = channel.clone(), torch.zeros(channel.shape, dtype=torch.uint8)
            continue
        higher = channel > best  # ties keep the lower class, as argmax does
        best = torch.where(higher, channel, best)
        label[higher] = value
    return label.numpy()  # type: ignore[union-attr]


def clean_label(label: np.ndarray, spacing: tuple[float, ...], config: PostprocessConfig) -> np.ndarray:
    """Drop small and stray tumour components, demote stray core and enhancing components, then turn a too-small
    enhancing tumour into core (:class:`PostprocessConfig`). Same shape, uint8."""
    voxel_ml = float(np.prod(spacing)) / 1000
    label = label.copy()
    fraction = config.min_component_fraction
    _replace_small_components(label, label > 0, BACKGROUND, config.min_component_ml / voxel_ml, fraction)
    if fraction:
        _replace_small_components(label, (label == CORE) | (label == ENHANCING), EDEMA, 0, fraction)
        _replace_small_components(label, label == ENHANCING, CORE, 0, fraction)
    enhancing = label == ENHANCING
    if enhancing.any() and enhancing.sum() * voxel_ml < config.min_enhancing_ml:
        label[enhancing] = CORE
    return label


def _replace_small_components(label: np.ndarray, region: np.ndarray, value: int, min_voxels: float,
                              fraction: float) -> None:  # fmt: skip
    """In place: the region's components (26-connected) under ``min_voxels`` or under ``fraction`` of the largest
    become ``value``."""
    components, count = ndimage.label(region, structure=np.ones((3, 3, 3)))
    if count < 1 or (count == 1 and not min_voxels):
        return
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    small = np.flatnonzero((sizes < min_voxels) | (sizes < fraction * sizes.max()))
    label[np.isin(components, small[small > 0])] = value


def to_crop_grid(probabilities: torch.Tensor, box: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Network-grid probabilities ``(C, x, y, z)`` resampled (trilinear) to the crop box's size, if they differ
    (preprocessing changed the voxel size)."""
    crop_size = tuple(b - a for a, b in box)
    if tuple(probabilities.shape[1:]) != crop_size:
        probabilities = F.interpolate(probabilities[None], size=crop_size, mode="trilinear")[0]
    return probabilities


def uncrop_label(label: np.ndarray, box: tuple[tuple[int, int], ...], original_shape: tuple[int, ...]) -> np.ndarray:
    """A crop-box label placed on the file's grid; background outside the box (no brain there)."""
    out = np.zeros(original_shape, dtype=np.uint8)
    out[tuple(slice(a, b) for a, b in box)] = label
    return out


def uncrop_probabilities(
    probabilities: torch.Tensor,
    box: tuple[tuple[int, int], ...],
    original_shape: tuple[int, int, int],
    head: str = "regions",
) -> torch.Tensor:
    """Network-grid probabilities ``(C, x, y, z)`` -> the file's grid ``(C, X, Y, Z)``.

    Resampled to the crop's size (:func:`to_crop_grid`), then placed in the crop box; outside the box (no
    brain) the probability of tumour is 0 and of background 1.
    """
    probabilities = to_crop_grid(probabilities, box)
    out = torch.zeros((probabilities.shape[0], *original_shape), dtype=probabilities.dtype)
    if head == "classes":  # channel 0 is background
        out[0] = 1
    out[(slice(None), *(slice(a, b) for a, b in box))] = probabilities
    return out
