"""Frozen configurations with defaults that work; saved as ``config.json`` beside every model.

A run folder's ``config.json`` holds everything needed to rebuild the preprocessing and the model, so
a checkpoint folder alone is enough to predict.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PreprocessConfig:
    """How a case becomes network input.

    Attributes:
        spacing_mm: resample to this voxel size before the network (None keeps the file's grid). Coarser
            is much faster on CPU; predictions are brought back to the original grid.
        crop_margin: voxels kept around the brain's bounding box.
    """

    spacing_mm: tuple[float, float, float] | None = None
    crop_margin: int = 2


@dataclass(frozen=True)
class ModelConfig:
    """The 3D U-Net (Cicek et al. 2016): ``depth`` resolution levels, ``width * 2**level`` channels."""

    in_channels: int = 4
    head: str = "regions"  # "regions": 3 sigmoid logits WT, TC, ET; "classes": 4 softmax logits
    width: int = 16
    depth: int = 4
    max_width: int = 256
    deep_supervision: bool = False

    @property
    def out_channels(self) -> int:
        return 3 if self.head == "regions" else 4


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, sampling and validation settings of one training run."""

    patch: tuple[int, int, int] = (64, 64, 64)
    batch: int = 2
    epochs: int = 50
    steps_per_epoch: int = 50
    foreground_fraction: float = 1 / 3
    optimizer: str = "adamw"  # or "sgd" (momentum 0.99, nesterov, as nnU-Net)
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    loss: str = "dice_bce"  # "dice", "dice_bce" (regions) or "dice_ce" (classes)
    augment: bool = True
    folds: int = 5
    fold: int | None = 0  # None: train on every case, validate on none (the final model)
    seed: int = 0
    validate_every: int = 5
    workers: int = 1
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs with native bfloat16 (train.py)
    extra_data: str | None = None  # a labelled folder whose cases join every fold's training set, never validated


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was made with; ``config.json`` in the run folder."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        """Rebuild from ``config.json`` (or a checkpoint's ``config``); runs before 2026-12 also wrote a
        ``label_convention`` that nothing read: it is ignored."""

        def build(kind, values):
            names = {f.name: f for f in dataclasses.fields(kind)}
            unknown = set(values) - set(names)
            if unknown:
                raise ValueError(f"unknown {kind.__name__} settings {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(
            preprocess=build(PreprocessConfig, data.get("preprocess", {})),
            model=build(ModelConfig, data.get("model", {})),
            train=build(TrainConfig, data.get("train", {})),
        )

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
