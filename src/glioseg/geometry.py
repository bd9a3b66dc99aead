"""Small geometry shared by the phantom generator and augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation about the three array axes by ``angles`` (radians), applied x first, then y, then z."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def smooth_random_field(rng: np.random.Generator, shape: tuple[int, ...], cells: int) -> torch.Tensor:
    """Smooth random field ``float32 shape``: Gaussian noise on a ``cells``-per-axis grid, trilinearly upsampled."""
    coarse = torch.from_numpy(rng.standard_normal((1, 1, *[cells] * len(shape)), dtype=np.float32))
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0, 0]
