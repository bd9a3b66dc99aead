"""OpenVINO (Intel's CPU inference runtime; the ``openvino`` wheel from the registry, nothing downloaded at run time)
as a prediction engine: the same trained network, converted from its torch module and run by OpenVINO's CPU plugin.

Measured on this project's 2 cores (`benchmarks/README.md`, "OpenVINO"): one shipped fold network on a batch of two
48^3 windows in 0.23 s against torch's 0.49 s, logits within 2.3e-4. Converting a network takes about 5 s (the
module is traced), so the converted graph (OpenVINO IR: ``.xml`` and float32 ``.bin``) is kept in
:data:`OPENVINO_CACHE`, named by the checkpoint's content hash: the first prediction with a model converts it, later
ones read it. The graph is compiled once per input shape (the sliding window's batches: at most two shapes), and
OpenVINO's own cache keeps the compiled programme beside it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from glioseg.core.config import CACHE_DIR
from glioseg.core.errors import InputError
from glioseg.network.unet import UNet3D, divisor

OPENVINO_CACHE = CACHE_DIR / "openvino"
"""Where converted networks are kept (delete it freely: they are made again)."""


def content_key(path: Path) -> str:
    """The checkpoint's identity: a hash of its bytes (a retrained run at the same path is converted again)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def converted(network: UNet3D, checkpoint: Path, cache: Path | None = None) -> Path:
    """The network as OpenVINO IR in ``cache`` (default :data:`OPENVINO_CACHE`; converted now if not there yet);
    returns the ``.xml``."""
    import openvino as ov

    cache = cache or OPENVINO_CACHE
    xml = cache / f"{content_key(checkpoint)}.xml"
    if xml.exists() and xml.with_suffix(".bin").exists():
        return xml
    cache.mkdir(parents=True, exist_ok=True)
    size = 2 * divisor(network.config)
    example = torch.zeros(1, network.config.in_channels, size, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks: the graph is reshaped per input
        model = ov.convert_model(network.eval(), example_input=example)
    temporary = cache / f".tmp-{os.getpid()}-{xml.name}"
    ov.save_model(model, temporary, compress_to_fp16=False)  # float32 weights: the same numbers as torch's
    os.replace(temporary.with_suffix(".bin"), xml.with_suffix(".bin"))
    os.replace(temporary, xml)  # the graph last: it marks the pair whole
    return xml


class OpenVinoNetwork:
    """A trained network run by OpenVINO, called like the :class:`UNet3D` it came from (a ``unet.Network``)."""

    def __init__(self, network: UNet3D, checkpoint: Path, threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise InputError(
                checkpoint, "OpenVINO is not installed", "pip install openvino, or --engine torch"
            ) from None
        self.core = ov.Core()
        self.xml = converted(network, checkpoint)
        # OpenVINO keeps what it compiled too: 0.4 s per network and shape the first time, a read afterwards
        self.core.set_property({"CACHE_DIR": str(self.xml.parent / "compiled")})
        self.settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                         "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
        self.compiled: dict[tuple[int, ...], object] = {}
        self.config = network.config

    def eval(self) -> OpenVinoNetwork:
        return self

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        shape = tuple(image.shape)
        if shape not in self.compiled:  # a static shape compiles in a fraction of a second and runs fastest
            model = self.core.read_model(self.xml)
            model.reshape(list(shape))
            self.compiled[shape] = self.core.compile_model(model, "CPU", self.settings)
        logits = self.compiled[shape](np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32))[0]
        return torch.from_numpy(np.asarray(logits))
