"""What a run folder holds and how to read it: checkpoints, their export, the training history.

Training writes these files and prediction, reports and the viewer read them, so they live here rather than in
``train.py`` (prediction never imports the training loop).

A checkpoint is a dict ``{"version", "config", "model", "epoch", ...}``: ``config`` is the run's ``RunConfig`` as
a dict, so a checkpoint alone rebuilds its network. ``history.jsonl`` holds one JSON line per epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from glioseg.core.config import RunConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.network.unet import build_network

CHECKPOINT_VERSION = 1
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.pt", "best.pt"
"""Written every epoch; written when the mean validation Dice over WT, TC and ET is the best so far."""


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, refusing truncated or foreign files with a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise InputError(path, "checkpoint not found",
                         f"give a run folder that holds {LAST_CHECKPOINT} or {BEST_CHECKPOINT}") from None  # fmt: skip
    except Exception as error:  # torch raises many types for a damaged file
        raise InputError(
            path, f"unreadable checkpoint ({type(error).__name__}: {error})", "retrain or re-copy"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or "model" not in state:
        raise InputError(path, "not a glioseg checkpoint", "give a checkpoint written by `glioseg train`")
    return state


def checkpoint_path(run: Path) -> Path:
    """A run folder's best checkpoint (else its last), or a checkpoint file itself."""
    if run.is_dir():
        for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
            if (run / name).exists():
                return run / name
        raise InputError(run, f"no {BEST_CHECKPOINT} or {LAST_CHECKPOINT} in this run folder",
                         "train first, or give another run")  # fmt: skip
    return run


def export_weights(run: Path, out: Path, onnx: bool = False) -> list[Path]:
    """A run's best (else last) checkpoint, or a checkpoint file, without optimiser and RNG state (what prediction
    needs, a third the size), and with ``onnx`` the network as ONNX beside it (``out`` with suffix ``.onnx``)."""
    state = load_checkpoint(checkpoint_path(run))
    slim = {key: state[key] for key in ("version", "config", "model", "epoch")}
    slim["model"] = {name: tensor.contiguous() for name, tensor in state["model"].items()}
    save_checkpoint(out, slim)
    if not onnx:
        return [out]
    from glioseg.network.onnx_engine import export_onnx

    config = RunConfig.from_dict(state["config"])
    network = build_network(config.model, state["model"], checkpoint_path(run))
    return [out, export_onnx(network, out.with_suffix(".onnx"), config.train.patch)]


def append_history(path: Path, entry: dict) -> None:
    """Add one epoch's line to ``history.jsonl``, flushed to disk before the checkpoint is written."""
    with open(path, "a") as stream:
        stream.write(json.dumps(entry) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def _entries(path: Path) -> list[dict]:
    """The lines of a history file; a last line torn by a kill mid-write is left out (its epoch is redone)."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    entries = []
    for number, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except ValueError:
            if number == len(lines) - 1:
                break
            raise InputError(path, f"line {number + 1} is not JSON", "restore the file, or train anew") from None
    return entries


def truncate_history(path: Path, epochs: int) -> None:
    """Keep the history of the first ``epochs`` epochs only (a run killed after a line, before its checkpoint)."""
    if path.exists():
        kept = [entry for entry in _entries(path) if entry["epoch"] <= epochs]
        with atomic_path(path) as temporary:
            temporary.write_text("".join(json.dumps(entry) + "\n" for entry in kept))


def read_history(run: str | Path) -> list[dict]:
    """The ``history.jsonl`` entries of a run folder, one per finished epoch."""
    return _entries(Path(run) / "history.jsonl")
