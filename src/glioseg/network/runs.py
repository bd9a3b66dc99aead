"""What a run folder holds and how to read it: checkpoints, their export, the training history.

Training writes these files and prediction, reports and the viewer read them, so they live here rather than in
``train.py`` (prediction never imports the training loop).

A checkpoint is a dict ``{"version", "config", "model", "epoch", ...}``: ``config`` is the run's ``RunConfig`` as
a dict, so a checkpoint alone rebuilds its network. It holds tensors, numbers, strings, lists and dicts only, and is
read by torch's weights-only unpickler: a model file that would run code when loaded is refused before any of it
runs. ``history.jsonl`` holds one JSON line per epoch.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
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


CHECKPOINT_KEYS = ("version", "config", "model", "epoch")
"""What every checkpoint holds (an export holds these only; a run's also its optimiser, schedule and RNG states)."""
NUMPY_ARRAY_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
"""What a run saved before 2026-12-07 needs besides weights: its numpy RNG state was an array (data, not code)."""


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, read as data only (torch's weights-only unpickler), checked to be a glioseg
    checkpoint whose weights are tensors.

    Raises:
        InputError: a missing, damaged or foreign file, or one whose pickle asks for anything but data.
    """
    try:
        with torch.serialization.safe_globals(NUMPY_ARRAY_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "checkpoint not found",
                         f"give a run folder that holds {LAST_CHECKPOINT} or {BEST_CHECKPOINT}") from None  # fmt: skip
    except pickle.UnpicklingError as error:
        named = re.search(r"GLOBAL ([\w.]+)", str(error))
        if named is None:  # not a pickle at all: a damaged file rather than one asking for code
            raise InputError(
                path, "unreadable checkpoint (not a pickle torch can read)", "retrain or re-copy"
            ) from None
        raise InputError(path, f"refused: loading it would call {named.group(1)}, and glioseg loads weights only (a "
                         "model file can run any code it carries)", "use a checkpoint written by glioseg train or "
                         "export, from a source you trust") from None  # fmt: skip
    except Exception as error:  # torch raises many types for a damaged file
        raise InputError(path, f"unreadable checkpoint ({type(error).__name__}: {str(error)[:200]})",
                         "retrain or re-copy") from None  # fmt: skip
    return _checked(state, path)


def _checked(state, path: Path) -> dict:
    """``state`` if it is a glioseg checkpoint: every key of :data:`CHECKPOINT_KEYS`, a config table, weights that
    are named tensors."""
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise InputError(path, "not a glioseg checkpoint", "give a checkpoint written by `glioseg train` or export")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise InputError(path, f"a glioseg checkpoint without its {', '.join(missing)}",
                         "re-export it from its run, or retrain")  # fmt: skip
    weights = state["model"]
    if (
        not isinstance(state["config"], dict)
        or not isinstance(weights, dict)
        or not all(isinstance(name, str) and isinstance(value, torch.Tensor) for name, value in weights.items())
    ):
        raise InputError(path, "its config or weights are not what glioseg writes (a table of settings, named "
                         "tensors)", "re-export it from its run, or retrain")  # fmt: skip
    return state


def read_run_config(path: Path) -> RunConfig:
    """A run folder's ``config.json``.

    Raises:
        InputError: missing, not JSON, or settings this glioseg does not have (or of the wrong type).
    """
    try:
        return RunConfig.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise InputError(path, "not found: this is not a run folder", "give a folder glioseg train wrote") from None
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise InputError(path, f"not a run's settings ({str(error)[:200]})",
                         "restore the file from the run, or train anew") from None  # fmt: skip


def run_config_of(state: dict, path: Path) -> RunConfig:
    """The ``RunConfig`` a checkpoint was trained with."""
    try:
        return RunConfig.from_dict(state["config"])
    except (TypeError, ValueError, AttributeError) as error:
        raise InputError(path, f"checkpoint config does not match this glioseg ({error})", "retrain") from None


def checkpoint_path(run: Path) -> Path:
    """A run folder's best checkpoint (else its last), or a checkpoint file itself."""
    if run.is_dir():
        for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
            if (run / name).exists():
                return run / name
        raise InputError(run, f"no {BEST_CHECKPOINT} or {LAST_CHECKPOINT} in this run folder",
                         "train first, or give another run")  # fmt: skip
    return run


def export_weights(run: Path, out: Path, onnx: bool = False, half: bool = False) -> list[Path]:
    """A run's best (else last) checkpoint, or a checkpoint file, without optimiser and RNG state (what prediction
    needs, a third the size), and with ``onnx`` the network as ONNX beside it (``out`` with suffix ``.onnx``).
    ``half`` stores the weights as float16 (half the size again; they are loaded into float32 networks, so only the
    weights' rounding differs: measure the Dice it moves before shipping such a file)."""
    source = checkpoint_path(run)
    state = load_checkpoint(source)
    config = run_config_of(state, source)
    network = build_network(config.model, state["model"], source)  # the weights fit: checked before writing
    slim = {key: state[key] for key in CHECKPOINT_KEYS}
    slim["model"] = {name: (tensor.half() if half and tensor.is_floating_point() else tensor).contiguous()
                     for name, tensor in state["model"].items()}  # fmt: skip
    save_checkpoint(out, slim)
    if not onnx:
        return [out]
    from glioseg.network.onnx_engine import export_onnx

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
