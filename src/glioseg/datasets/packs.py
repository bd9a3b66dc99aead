"""Training packs: a labelled dataset preprocessed as training reads it, in one small folder that travels.

A GPU machine or a cluster node may hold neither the source NIfTI files nor room for them; a pack holds what the
training loop reads (the cache of :mod:`glioseg.datasets.preprocess`) and nothing more. ``glioseg train PACK`` trains
from it as from the dataset itself: the same case ids, so the same patient splits.

``PACK/pack.json`` (written last): the format version, the preprocessing settings, the z-score step, and per case its
id, its role (``dataset``: split into folds; ``extra``: added to every fold's training set, never validated on, as
``--extra-data``) and its cache metadata. ``PACK/<case_id>.npz.xz``, an ``.npz`` compressed by lzma (a fifth smaller
than the ``.npz``'s own zip): ``image`` int16 z-scores in steps of ``1/STEPS_PER_SD`` (an error below 0.01 standard
deviations, far under the augmentation's own noise; float16 compresses to 1.4 times the size), ``targets`` and
``label`` uint8 as cached. Training unpacks a pack into the cache once (keyed by the content of ``pack.json``; the
sampler's foreground locations are recomputed from the label), so the loop reads cache folders whichever the source.
28 BraTS cases and 8 phantoms at 2 mm: 23.4 MiB.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from glioseg.core.config import PreprocessConfig, RunConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.datasets.preprocess import CachedCase, cache_dataset, save_locations, save_npy

PACK_FILE = "pack.json"
PACK_VERSION = 1
STEPS_PER_SD = 32
"""z-scores are stored as int16 multiples of 1/32 of a standard deviation."""
ROLES = ("dataset", "extra")
MEMBER_SUFFIX = ".npz.xz"


def is_pack(path: Path) -> bool:
    return (Path(path) / PACK_FILE).is_file()


def write_pack(
    cases: list,
    extra: list,
    dataset: Path,
    extra_dataset: Path | None,
    out: Path,
    config: PreprocessConfig,
    cache_root: Path,
    workers: int = 2,
    progress: bool = True,
) -> tuple[Path, int]:
    """Pack the labelled ``cases`` of ``dataset`` (and ``extra`` ones of ``extra_dataset``) preprocessed by
    ``config`` into the folder ``out``, whole or not at all; returns it and its size in bytes."""
    if out.exists():
        raise InputError(out, "already exists", "remove it, or choose another --out")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    entries = []
    for role, files, source in (("dataset", cases, dataset), ("extra", extra, extra_dataset)):
        if not files:
            continue
        for cached in cache_dataset(files, source, cache_root, config, workers, progress):
            _pack_case(cached, staging / f"{cached.case_id}{MEMBER_SUFFIX}")
            meta = cached.meta()
            entries.append({"case_id": cached.case_id, "role": role,
                            **{key: meta[key] for key in ("box", "original_shape", "spacing")}})  # fmt: skip
    record = {"version": PACK_VERSION, "preprocess": asdict(config), "steps_per_sd": STEPS_PER_SD, "cases": entries}
    (staging / PACK_FILE).write_text(json.dumps(record, indent=1))
    staging.rename(out)
    return out, sum(path.stat().st_size for path in out.iterdir())


def _pack_case(cached: CachedCase, path: Path) -> None:
    image = np.clip(np.round(np.asarray(cached.image()) * STEPS_PER_SD), -32767, 32767).astype(np.int16)
    arrays = io.BytesIO()
    np.savez(arrays, image=image, targets=np.asarray(cached.targets()), label=np.asarray(cached.label()))
    path.write_bytes(lzma.compress(arrays.getvalue()))


def read_pack_record(pack: Path) -> dict:
    """``pack.json``, checked to be a pack this glioseg reads."""
    path = Path(pack) / PACK_FILE
    try:
        record = json.loads(path.read_text())
        if record["version"] != PACK_VERSION or not all(c["role"] in ROLES for c in record["cases"]):
            raise ValueError("another format")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(path, f"not a training pack this glioseg reads ({error})",
                         "pack the dataset again with glioseg pack") from None  # fmt: skip
    return record


def pack_settings(pack: Path) -> PreprocessConfig:
    """The preprocessing a pack was made with (training must ask for the same), read as a run's config.json is."""
    try:
        return RunConfig.from_dict({"preprocess": read_pack_record(pack)["preprocess"]}).preprocess
    except (ValueError, TypeError) as error:
        raise InputError(Path(pack) / PACK_FILE, f"not a training pack this glioseg reads ({error})",
                         "pack the dataset again with glioseg pack") from None  # fmt: skip


def open_pack(pack: Path, cache_root: Path) -> dict[str, list[CachedCase]]:
    """The pack's cases by role, unpacked into ``cache_root`` once (``meta.json`` last: an interrupted unpacking
    is redone)."""
    pack = Path(pack)
    record = read_pack_record(pack)
    key = hashlib.sha256((pack / PACK_FILE).read_bytes()).hexdigest()[:12]
    root = Path(cache_root) / f"pack-{pack.resolve().name}-{key}"
    by_role: dict[str, list[CachedCase]] = {role: [] for role in ROLES}
    for entry in record["cases"]:
        folder = root / entry["case_id"]
        if not (folder / "meta.json").exists():
            _unpack_case(pack / f"{entry['case_id']}{MEMBER_SUFFIX}", folder, record, entry)
        by_role[entry["role"]].append(CachedCase(entry["case_id"], folder))
    return by_role


def _unpack_case(source: Path, folder: Path, record: dict, entry: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with np.load(io.BytesIO(lzma.decompress(source.read_bytes())), allow_pickle=False) as stored:
            image, targets, label = stored["image"], stored["targets"], stored["label"]
    except (OSError, ValueError, KeyError, lzma.LZMAError) as error:
        raise InputError(source, f"unreadable pack member ({error})", "copy the pack again") from None
    save_npy(folder / "image.npy", image.astype(np.float32) / record["steps_per_sd"])
    save_npy(folder / "targets.npy", targets)
    save_npy(folder / "label.npy", label)
    save_locations(folder / "locations.npz", label)
    meta = {**entry, "source": "pack", "labelled": True, "settings": record["preprocess"]}
    with atomic_path(folder / "meta.json") as temporary:
        temporary.write_text(json.dumps(meta))
