"""Small geometry shared by the phantom generator and augmentation."""

from __future__ import annotations

import numpy as np


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation about the three array axes by ``angles`` (radians), applied x first, then y, then z."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx
