"""Probabilities -> internal label map (the network's grid); uncropping to the original grid is added with
prediction."""

from __future__ import annotations

import numpy as np
import torch

from glioseg.labels import label_from_regions


def label_from_probabilities(probabilities: torch.Tensor, head: str, threshold: float = 0.5) -> np.ndarray:
    """``(C, x, y, z)`` probabilities -> ``uint8 (x, y, z)`` internal classes.

    Regions head: WT/TC/ET above ``threshold``, nested (ET wins over TC over WT). Classes head: argmax.
    """
    if head == "regions":
        return label_from_regions((probabilities > threshold).numpy())
    return probabilities.argmax(0).numpy().astype(np.uint8)
