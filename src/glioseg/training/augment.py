"""Data augmentation as batched torch operations (spatial, intensity, MRI bias field; optional thick slices and
modality dropout).

Probabilities and ranges follow nnU-Net's defaults. Parameters come from the caller's numpy generator so
that a batch is reproducible from its step alone. Spatial transforms act on the three spatial axes only,
never on the channel axis, and move the image and its tumour fractions together (the fractions are
interpolated like the image, so a rotated thin rim keeps its partial volume).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from glioseg.core.geometry import rotation_matrix, smooth_random_field


def random_flips(volumes: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mirror each sample along each spatial axis with probability 1/2.

    volumes: ``(B, C, X, Y, Z)`` (image and targets stacked along C, so that they move together).
    """
    volumes = volumes.clone()
    for b in range(volumes.shape[0]):
        axes = [1 + axis for axis in range(3) if rng.random() < 0.5]  # skip the channel axis
        if axes:
            volumes[b] = torch.flip(volumes[b], dims=axes)
    return volumes


def random_rotate_scale(
    volumes: torch.Tensor, rng: np.random.Generator, p_rotate: float = 0.2, p_scale: float = 0.2
) -> torch.Tensor:
    """Rotate (up to 30 degrees per axis) and scale (0.7-1.4) about the patch centre, trilinearly.

    The rotation acts on voxel coordinates (isotropic voxels: millimetres), not on ``affine_grid``'s normalised
    ones, where it would shear a patch whose sides differ. volumes: ``(B, C, X, Y, Z)``; outside: zero.
    """
    matrices = []
    for _ in range(volumes.shape[0]):
        matrix = np.eye(3)
        if rng.random() < p_rotate:
            matrix = rotation_matrix(rng.uniform(-math.pi / 6, math.pi / 6, size=3)) @ matrix
        if rng.random() < p_scale:
            matrix = matrix / rng.uniform(0.7, 1.4)
        matrices.append(matrix)
    if all(np.allclose(m, np.eye(3)) for m in matrices):
        return volumes
    half = np.diag(np.array(volumes.shape[2:], dtype=np.float64) / 2)  # normalised -> voxel coordinates
    in_voxels = np.linalg.inv(half) @ np.stack(matrices) @ half
    theta = torch.zeros((volumes.shape[0], 3, 4))
    theta[:, :, :3] = torch.from_numpy(in_voxels).float().flip(1, 2)  # affine_grid works in (z, y, x)
    grid = F.affine_grid(theta, list(volumes.shape), align_corners=False)
    return F.grid_sample(volumes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_intensity(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Per sample and channel: bias field, brightness, contrast, gamma, Gaussian noise, Gaussian blur."""
    image = image.clone()
    shape = tuple(image.shape[2:])
    for b in range(image.shape[0]):
        for c in range(image.shape[1]):
            x = image[b, c]
            if rng.random() < 0.15:  # smooth multiplicative MRI bias field
                x = x * torch.exp(0.3 * smooth_random_field(rng, shape, 4))
            if rng.random() < 0.15:
                x = x * float(rng.uniform(0.75, 1.25))
            if rng.random() < 0.15:
                mean = x.mean()
                x = (x - mean) * float(rng.uniform(0.75, 1.25)) + mean
            if rng.random() < 0.3:
                low, high = x.min(), x.max()
                span = (high - low).clamp_min(1e-6)
                x = ((x - low) / span) ** float(rng.uniform(0.7, 1.5)) * span + low
            if rng.random() < 0.1:
                noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
                x = x + noise * float(rng.uniform(0, 0.1))
            if rng.random() < 0.2:
                x = gaussian_blur(x, float(rng.uniform(0.5, 1.0)))
            image[b, c] = x
    return image


def gaussian_blur(volume: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(X, Y, Z)`` volume (sigma in voxels)."""
    radius = max(int(3 * sigma), 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = volume[None, None]
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        padding = [0, 0, 0]
        padding[axis] = radius
        x = F.conv3d(x, kernel.view(shape), padding=tuple(padding))
    return x[0, 0]


def augment_batch(
    image: torch.Tensor, targets: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The default training augmentation: rotation/scale and flips of image and targets together, then intensity.

    image ``(B, 4, X, Y, Z)``; targets ``(B, 3, X, Y, Z)`` tumour fractions (sampling.PatchBatches). Shapes unchanged.
    """
    volumes = random_flips(random_rotate_scale(torch.cat([image, targets], dim=1), rng), rng)
    image, targets = volumes[:, : image.shape[1]], volumes[:, image.shape[1] :]
    return random_intensity(image, rng), targets


THICK_SLICE_FACTORS = (1.5, 3.0)
"""How many times thicker simulated slices are than the training grid's voxels: at 2 mm, 3-6 mm slices (clinical
FLAIR and T2 are often 5 mm axial)."""


def simulate_thick_slices(image: torch.Tensor, rng: np.random.Generator, probability: float) -> torch.Tensor:
    """Low-resolution simulation (nnU-Net's SimulateLowResolutionTransform, made anisotropic): each patch, with
    ``probability``, has some of its sequences (each with 1/2, at least one) acquired as thick slices along one axis:
    averaged over :data:`THICK_SLICE_FACTORS` voxels there (a slice integrates its thickness), then interpolated back
    linearly (what a resampled clinical scan looks like). No draw at all when ``probability`` is 0."""
    if probability <= 0:
        return image
    for patch in range(image.shape[0]):
        if rng.random() >= probability:
            continue
        axis, factor = int(rng.integers(3)), float(rng.uniform(*THICK_SLICE_FACTORS))
        channels = [c for c in range(image.shape[1]) if rng.random() < 0.5] or [int(rng.integers(image.shape[1]))]
        size = list(image.shape[2:])
        coarse = size.copy()
        coarse[axis] = max(1, round(size[axis] / factor))
        volumes = image[patch, channels][None]
        thick = F.adaptive_avg_pool3d(volumes, coarse)
        image[patch, channels] = F.interpolate(thick, size=size, mode="trilinear", align_corners=False)[0]
    return image


def drop_sequences(image: torch.Tensor, rng: np.random.Generator, probability: float) -> torch.Tensor:
    """Modality dropout (ModDrop, Neverova et al. 2016): each patch, with ``probability``, loses one sequence (three
    times in four) or two, set to zero, which is how a study missing that sequence reaches the network (zero is the
    brain's mean after z-scoring, and the background). No draw at all when ``probability`` is 0, so recipes without
    it see the batches they always saw."""
    if probability <= 0:
        return image
    for patch in range(image.shape[0]):
        if rng.random() < probability:
            lost = rng.choice(image.shape[1], size=1 if rng.random() < 0.75 else 2, replace=False)
            image[patch, lost] = 0
    return image
