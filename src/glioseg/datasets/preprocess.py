"""Crop to the brain, optionally resample, z-score inside the brain; cache the result once per dataset.

The crop box is kept so predictions can be put back on the original grid (postprocess.uncrop). The cache
holds one folder per case (``image.npy`` float32 (4, x, y, z), ``targets.npy`` uint8 (3, x, y, z): the share of
each voxel that is edema, core and enhancing tumour in 255ths, ``label.npy`` uint8 the class holding most of each
voxel, ``locations.npz`` foreground voxels per class for the sampler, ``meta.json`` last), written atomically; a
case is rebuilt when its source files (size, mtime), the preprocessing settings or ``PREPROCESS_VERSION`` change.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glioseg.core.config import PreprocessConfig
from glioseg.core.files import atomic_path
from glioseg.core.geometry import label_from_fractions, tumour_fractions
from glioseg.core.labels import TUMOUR_CLASSES
from glioseg.datasets.cases import Case, read_case
from glioseg.datasets.layouts import CaseFiles

MAX_LOCATIONS = 20000
"""Foreground voxels remembered per class and case for foreground oversampling."""
PREPROCESS_VERSION = 2
"""Part of every cache key: raise it when the cached arrays change meaning, so that old caches are rebuilt.
2: labels resampled as tumour fractions (trilinear one-hot), not nearest neighbour."""


@dataclass(frozen=True)
class Preprocessed:
    """A case as the network sees it.

    Attributes:
        image: ``float32 (4, x, y, z)`` z-scored inside the brain, zero outside, cropped (and resampled).
        fractions: ``float32 (3, x, y, z)`` share of each voxel that is edema, core, enhancing (the training
            target), or None without a label.
        label: ``uint8 (x, y, z)`` the class holding most of each voxel, or None.
        box: ``((start, stop), ...)`` the crop in the original grid, per axis.
        original_shape: the file's grid.
        spacing: voxel size of ``image`` in mm.
    """

    image: np.ndarray
    fractions: np.ndarray | None
    label: np.ndarray | None
    box: tuple[tuple[int, int], ...]
    original_shape: tuple[int, int, int]
    spacing: tuple[float, float, float]


def brain_box(image: np.ndarray, margin: int) -> tuple[tuple[int, int], ...]:
    """Bounding box of voxels non-zero in any modality (BraTS data are skull-stripped), plus a margin."""
    brain = np.any(image != 0, axis=0)
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(brain.any(axis=other))
        box.append((max(int(present[0]) - margin, 0), min(int(present[-1]) + 1 + margin, brain.shape[axis])))
    return tuple(box)


def zscore_inside(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Each modality to zero mean and unit std inside ``brain``; zero outside. ``float32 (4, x, y, z)``."""
    out = np.zeros_like(image, dtype=np.float32)
    for channel in range(image.shape[0]):
        values = image[channel][brain]
        std = float(values.std()) or 1.0
        out[channel][brain] = (values - float(values.mean())) / std
    return out


def resampled_shape(shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(max(int(round(n * s / t)), 1) for n, s, t in zip(shape, spacing, target))


def preprocess_case(case: Case, config: PreprocessConfig) -> Preprocessed:
    """Crop to the brain, resample (if ``config.spacing_mm``; trilinear), z-score. The label follows the image as
    tumour fractions (:func:`glioseg.core.geometry.tumour_fractions`), resampled exactly as the image is."""
    box = brain_box(case.image, config.crop_margin)
    crop = tuple(slice(a, b) for a, b in box)
    image, spacing = case.image[(slice(None), *crop)], case.spacing
    size = image.shape[1:]
    if config.spacing_mm is not None and tuple(config.spacing_mm) != tuple(spacing):
        size = resampled_shape(size, spacing, config.spacing_mm)
        image = F.interpolate(torch.from_numpy(np.ascontiguousarray(image))[None], size=size, mode="trilinear")[0]
        image, spacing = image.numpy(), tuple(float(s) for s in config.spacing_mm)
    fractions = label = None
    if case.label is not None:
        fractions = tumour_fractions(case.label[crop], size)
        fractions, label = fractions.numpy(), label_from_fractions(fractions)
    brain = np.any(image != 0, axis=0)
    return Preprocessed(zscore_inside(image, brain), fractions, label, box, case.image.shape[1:], spacing)


# ---- cache ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedCase:
    """A cached case: arrays open memory-mapped on demand (cheap to send to loader workers)."""

    case_id: str
    folder: Path

    def image(self) -> np.ndarray:
        return np.load(self.folder / "image.npy", mmap_mode="r")

    def label(self) -> np.ndarray:
        return np.load(self.folder / "label.npy", mmap_mode="r")

    def targets(self) -> np.ndarray:
        """``uint8 (3, x, y, z)``: edema, core, enhancing share of each voxel, in 255ths."""
        return np.load(self.folder / "targets.npy", mmap_mode="r")

    def locations(self) -> dict[int, np.ndarray]:
        """Foreground voxel coordinates ``(n, 3)`` per internal class present."""
        with np.load(self.folder / "locations.npz") as stored:
            return {int(key): stored[key] for key in stored.files}

    def meta(self) -> dict:
        return json.loads((self.folder / "meta.json").read_text())


def source_fingerprint(files: CaseFiles) -> list[list]:
    """What identifies a case's source: path, size and modification time of each file, how its label numbers the
    compartments (``--label-convention`` changes the cached labels) and which channel holds which modality."""
    paths = [path for path in (*files.images, files.label) if path is not None]
    reading = [[[k, v] for k, v in sorted(files.convention.file_to_internal.items())], list(files.channels)]  # as JSON
    return [[str(Path(p).resolve()), os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in paths] + [reading]


def settings_key(config: PreprocessConfig) -> str:
    """Names a cache: the preprocessing settings and the version of what is cached."""
    settings = {**asdict(config), "version": PREPROCESS_VERSION}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def cache_folder(cache_root: Path, dataset: Path, config: PreprocessConfig) -> Path:
    """``<cache_root>/<dataset name>-<hash of its path>/<hash of the settings>``."""
    dataset = Path(dataset).resolve()
    tag = hashlib.sha256(str(dataset).encode()).hexdigest()[:8]
    return Path(cache_root) / f"{dataset.name}-{tag}" / settings_key(config)


def _is_current(folder: Path, fingerprint: list[list]) -> bool:
    try:
        return json.loads((folder / "meta.json").read_text())["source"] == fingerprint
    except (OSError, ValueError, KeyError):
        return False


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.save(stream, array)


def save_locations(path: Path, label: np.ndarray) -> None:
    """Up to :data:`MAX_LOCATIONS` voxel coordinates of each tumour class in ``label`` (a fixed random choice), for
    the sampler's foreground oversampling."""
    rng = np.random.default_rng(0)
    locations = {}
    for value in TUMOUR_CLASSES:
        where = np.argwhere(label == value).astype(np.int16)
        if len(where) > MAX_LOCATIONS:
            where = where[np.sort(rng.choice(len(where), MAX_LOCATIONS, replace=False))]
        if len(where):
            locations[str(value)] = where
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **locations)


def cache_case(files: CaseFiles, folder: Path, config: PreprocessConfig) -> CachedCase:
    """Preprocess one case into ``folder`` unless its cache is current; ``meta.json`` is written last."""
    fingerprint = source_fingerprint(files)
    if not _is_current(folder, fingerprint):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").unlink(missing_ok=True)  # stale until rewritten
        result = preprocess_case(read_case(files), config)
        shape = result.image.shape[1:]
        label = result.label if result.label is not None else np.zeros(shape, np.uint8)
        fractions = result.fractions if result.fractions is not None else np.zeros((3, *shape), np.float32)
        save_npy(folder / "image.npy", result.image)
        save_npy(folder / "targets.npy", np.round(fractions * 255).astype(np.uint8))
        save_npy(folder / "label.npy", label)
        save_locations(folder / "locations.npz", label)
        meta = {
            "case_id": files.case_id,
            "source": fingerprint,
            "box": result.box,
            "original_shape": result.original_shape,
            "spacing": result.spacing,
            "labelled": result.label is not None,
            "settings": asdict(config),
        }
        with atomic_path(folder / "meta.json") as temporary:
            temporary.write_text(json.dumps(meta))
    return CachedCase(files.case_id, folder)


def _cache_one(args: tuple[CaseFiles, Path, PreprocessConfig]) -> CachedCase:
    torch.set_num_threads(1)
    return cache_case(*args)


def cache_dataset(
    cases: list[CaseFiles],
    dataset: Path,
    cache_root: Path,
    config: PreprocessConfig,
    workers: int = 2,
    progress: bool = True,
) -> list[CachedCase]:
    """Preprocess every case once (in parallel, with a progress bar); current caches are reused, so an
    interrupted run resumes where it stopped."""
    from rich.progress import track

    root = cache_folder(cache_root, dataset, config)
    jobs = [(files, root / files.case_id, config) for files in cases]
    if workers <= 1 or len(jobs) <= 1:
        return [cache_case(*job) for job in track(jobs, description="caching", disable=not progress)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_cache_one, jobs)
        return list(track(results, total=len(jobs), description="caching", disable=not progress))
