"""ONNX export of a trained network and an ONNX Runtime engine for prediction (`pip install glioseg[onnx]`).

The exported graph takes ``float32 (batch, 4, x, y, z)`` of any size (multiples of the model's divisor) and
returns the logits; prediction wraps a session so the sliding window calls it like the torch module.
`benchmarks/engines_and_loader.py` measures which engine is faster here (ONNX Runtime was 1.58x slower than
torch on this project's 2-core CPU, benchmarks/README.md), so torch stays the default.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from glioseg.core.config import ModelConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.network.unet import UNet3D

AXES = {0: "batch", 2: "x", 3: "y", 4: "z"}


def export_onnx(network: UNet3D, path: Path, patch: tuple[int, int, int]) -> Path:
    """Write ``network`` as ONNX (opset 17, dynamic batch and spatial size), atomically."""
    network = network.eval()
    example = torch.zeros(1, network.config.in_channels, *patch)
    with atomic_path(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on instance norm in eval mode
        torch.onnx.export(network, (example,), str(temporary), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": AXES, "logits": AXES}, opset_version=17, dynamo=False)  # fmt: skip
    return path


class OnnxNetwork:
    """An exported network run by ONNX Runtime, called like the :class:`UNet3D` it came from (a ``model.Network``)."""

    def __init__(self, path: Path, config: ModelConfig, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise InputError(path, "ONNX Runtime is not installed", "pip install 'glioseg[onnx]'") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for missing or damaged files
            raise InputError(path, f"cannot load the ONNX model ({str(error)[:200]})",
                             "export it again: glioseg export RUN --out MODEL.pt --onnx") from None  # fmt: skip
        self.config = config

    def eval(self) -> OnnxNetwork:
        return self

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.session.run(None, {"image": np.ascontiguousarray(image.detach().cpu().numpy())})[0]
        return torch.from_numpy(logits)
