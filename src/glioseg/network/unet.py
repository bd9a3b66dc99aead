"""UNet3D after Cicek et al. 2016: volumetric convolutions, max-pool down, transposed-convolution up, skip
connections; with instance norm and leaky ReLU (as nnU-Net found to train well), optional deep supervision."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from glioseg.core.config import ModelConfig
from glioseg.core.errors import InputError


def divisor(config: ModelConfig) -> int:
    """Input sizes must be multiples of this: the U-Net halves them ``depth - 1`` times."""
    return 2 ** (config.depth - 1)


class Network(Protocol):
    """What prediction runs: a :class:`UNet3D`, or the same network run by OpenVINO (``openvino_engine``) or ONNX
    Runtime (``onnx_engine``)."""

    config: ModelConfig

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...  # (B, 4, X, Y, Z) -> (B, C, X, Y, Z) logits

    def eval(self) -> Network: ...


class ConvBlock(nn.Sequential):
    """Two 3x3x3 convolutions, each followed by instance norm and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        layers: list[nn.Module] = []
        for channels_in in (in_channels, out_channels):
            layers += [
                nn.Conv3d(channels_in, out_channels, kernel_size=3, padding=1, bias=False),
                nn.InstanceNorm3d(out_channels, affine=True),
                nn.LeakyReLU(0.01, inplace=True),
            ]
        super().__init__(*layers)


class UNet3D(nn.Module):
    """The segmentation network; its config is its only argument.

    Input ``(B, 4, X, Y, Z)`` with X, Y, Z divisible by ``2 ** (depth - 1)``; output ``(B, C, X, Y, Z)``
    logits, C = 3 regions (WT, TC, ET; sigmoid) or 4 classes (softmax). In training mode with deep
    supervision, a list of logits from full to coarser resolution.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        widths = [min(config.width * 2**level, config.max_width) for level in range(config.depth)]
        self.encoders = nn.ModuleList()
        channels = config.in_channels
        for width in widths:
            self.encoders.append(ConvBlock(channels, width))
            channels = width
        self.pool = nn.MaxPool3d(2)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose3d(channels, width, kernel_size=2, stride=2))
            self.decoders.append(ConvBlock(2 * width, width))
            channels = width
        self.heads = nn.ModuleList(
            nn.Conv3d(width, config.out_channels, kernel_size=1)
            for width in reversed(widths[:-1] if config.deep_supervision else widths[:1])
        )  # heads[-1] is the full-resolution head

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return divisor(self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else self.pool(x))  # (B, w_l, X/2^l, Y/2^l, Z/2^l)
            skips.append(x)
        x = skips.pop()
        outputs = []
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))  # back up one level
            outputs.append(x)
        if self.config.deep_supervision and self.training:
            # full resolution first, then each coarser decoder level
            return [head(features) for head, features in zip(reversed(self.heads), reversed(outputs))]
        return self.heads[-1](outputs[-1])  # (B, C, X, Y, Z)


def build_network(config: ModelConfig, weights: dict[str, torch.Tensor] | None = None,
                  source: Path | None = None) -> UNet3D:  # fmt: skip
    """The one place a network is made: fresh (to train), or holding ``weights`` (a checkpoint's, from ``source``).

    Raises:
        InputError: weights that do not fit ``config`` (naming ``source``).
    """
    network = UNet3D(config)
    if weights is not None:
        try:
            network.load_state_dict(weights)
        except RuntimeError as error:
            raise InputError(source or "weights", f"weights do not fit the saved config ({str(error)[:200]})",
                             "retrain, or give the checkpoint its config came with") from None  # fmt: skip
    return network
