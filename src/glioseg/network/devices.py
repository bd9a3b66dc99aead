"""Where the network runs and in which precision; shared by training and prediction."""

from __future__ import annotations

import re

import torch

from glioseg.core.config import DEVICES
from glioseg.core.errors import InputError


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device ``--device`` names: ``auto`` (a GPU if visible), ``cpu``, ``cuda`` (GPU ``local_rank``, so
    that each ``torchrun`` process takes its own) or ``cuda:N``. Anything else is refused, never read as the CPU."""
    match = re.fullmatch(r"(auto|cpu|cuda)(?::(\d+))?", name.strip().lower())
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise InputError("--device", f"{name!r} is not a device glioseg knows", f"give one of {DEVICES}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError("--device", "CUDA was asked for but no GPU is visible", "use --device cpu or auto")
    number = int(index) if index is not None else local_rank
    if number >= torch.cuda.device_count():
        raise InputError("--device", f"GPU {number} asked for, {torch.cuda.device_count()} visible",
                         f"give cuda:0 to cuda:{torch.cuda.device_count() - 1}")  # fmt: skip
    return torch.device("cuda", number)


def mixed_precision_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training on ``device``: float16 on CUDA (with a gradient scaler); bfloat16 on a CPU
    that computes it natively (AVX512-BF16 or AMX: training steps 1.4-1.8x faster, benchmarks/README.md); None
    (float32) on other CPUs, where bfloat16 is emulated and slower."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bfloat16():
        return torch.bfloat16
    return None


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16, AMX), which oneDNN's convolutions use."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch.cpu: absent -> False
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
