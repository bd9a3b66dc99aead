"""Random training patches from cached cases, with foreground oversampling.

Batch ``step`` is drawn from its own generator seeded by ``(seed, rank, step)``: no sampler state exists,
so a resumed or re-run training sees exactly the same batches, and loader workers need no coordination.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glioseg.core.labels import ENHANCING
from glioseg.datasets.preprocess import CachedCase
from glioseg.evaluation.lesionwise import components
from glioseg.training.augment import augment_batch, drop_sequences, simulate_thick_slices


def extract_patch(volume: np.ndarray, start: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """``volume[..., start:start+size]`` over the last three axes, zero-padded where it leaves the volume.

    Example: a (4, 100, 120, 90) image, start (-10, 50, 60), size (64, 64, 64) -> (4, 64, 64, 64) whose first
    10 rows along x and last 34 slices along z are padding.
    """
    spatial = volume.shape[-3:]
    out = np.zeros((*volume.shape[:-3], *size), dtype=volume.dtype)
    source, target = [], []
    for begin, length, extent in zip(start, size, spatial):
        low, high = max(int(begin), 0), min(int(begin) + length, extent)
        if high <= low:
            return out
        source.append(slice(low, high))
        target.append(slice(low - int(begin), high - int(begin)))
    lead = (slice(None),) * (volume.ndim - 3)
    out[(*lead, *target)] = volume[(*lead, *source)]
    return out


@dataclass
class PatchBatches(torch.utils.data.Dataset):
    """Map-style dataset: item ``step`` is the whole batch for that optimisation step.

    Each patch is, with probability ``foreground_fraction``, centred on a tumour voxel of a class chosen
    uniformly among the classes the case holds (classes balanced; with ``balance_enhancing_lesions`` an enhancing
    centre is drawn lesion by lesion, :meth:`_enhancing_weights`); otherwise centred uniformly in the volume.
    Returns ``{"image": float32 (B, 4, *patch), "targets": float32 (B, 3, *patch) the edema, core, enhancing
    share of each voxel (the losses' input), "forced": bool (B,), "centre_class": int (B,)}``
    (``centre_class`` is 0 for random patches).
    """

    cases: list[CachedCase]
    patch: tuple[int, int, int]
    batch: int
    foreground_fraction: float = 1 / 3
    seed: int = 0
    rank: int = 0
    augment: bool = True
    modality_dropout: float = 0.0
    thick_slices: float = 0.0
    balance_enhancing_lesions: bool = False

    def __post_init__(self) -> None:
        self._open: dict[int, tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]] = {}  # image, targets, locations
        self._lesion_weights: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return 2**62

    def _case(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        if index not in self._open:  # opened lazily, inside each loader worker
            case = self.cases[index]
            self._open[index] = (case.image(), case.targets(), case.locations())
        return self._open[index]

    def _enhancing_weights(self, index: int) -> np.ndarray:
        """Each enhancing-tumour location's chance to centre a patch when lesions are balanced: every enhancing
        lesion (26-connected component of the cached label) equally likely, its voxels alike, so that a 0.5 mL
        lesion beside a 20 mL one is seen as often (voxel by voxel, 40 times less)."""
        if index not in self._lesion_weights:
            lesions, _ = components(self.cases[index].label() == ENHANCING)
            points = self._case(index)[2][ENHANCING]
            owner = lesions[tuple(points.astype(np.int64).T)]
            counts = np.bincount(owner)
            weights = 1.0 / counts[owner]
            self._lesion_weights[index] = weights / weights.sum()
        return self._lesion_weights[index]

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.rank, step])
        size = np.array(self.patch)
        images = np.empty((self.batch, 4, *self.patch), dtype=np.float32)
        targets = np.empty((self.batch, 3, *self.patch), dtype=np.uint8)
        forced = np.zeros(self.batch, dtype=bool)
        centre_class = np.zeros(self.batch, dtype=np.int64)
        for b in range(self.batch):
            index = int(rng.integers(len(self.cases)))
            image, fractions, locations = self._case(index)
            shape = np.array(image.shape[1:])
            if locations and rng.random() < self.foreground_fraction:
                value = int(rng.choice(sorted(locations)))
                points = locations[value]
                if value == ENHANCING and self.balance_enhancing_lesions:
                    chosen = rng.choice(len(points), p=self._enhancing_weights(index))
                else:
                    chosen = rng.integers(len(points))
                centre = points[chosen].astype(np.int64)
                forced[b], centre_class[b] = True, value
            else:
                centre = (rng.random(3) * shape).astype(np.int64)
            start = centre - size // 2
            images[b] = extract_patch(image, start, self.patch)
            targets[b] = extract_patch(fractions, start, self.patch)
        image_t, targets_t = torch.from_numpy(images), torch.from_numpy(targets).float() / 255
        if self.augment:
            image_t, targets_t = augment_batch(image_t, targets_t, rng)
            image_t = drop_sequences(simulate_thick_slices(image_t, rng, self.thick_slices), rng,
                                     self.modality_dropout)  # fmt: skip
        return {
            "image": image_t,
            "targets": targets_t,
            "forced": torch.from_numpy(forced),
            "centre_class": torch.from_numpy(centre_class),
        }


def worker_init(_: int) -> None:
    """Loader workers use one thread each: the cores belong to the model."""
    torch.set_num_threads(1)


def batch_loader(dataset: PatchBatches, first_step: int, steps: int, workers: int) -> torch.utils.data.DataLoader:
    """Batches ``first_step .. first_step + steps - 1`` in order, prepared by ``workers`` processes."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=range(first_step, first_step + steps),
        num_workers=workers,
        worker_init_fn=worker_init if workers else None,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
