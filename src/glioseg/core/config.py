"""Every setting glioseg has, with its default, in frozen dataclasses; the one place each default is written.

A run folder's ``config.json`` holds a ``RunConfig`` (everything needed to rebuild the preprocessing and the
model), so a checkpoint folder alone is enough to predict. A field whose metadata is made by :func:`cli` is also a
command-line option: ``cli.py`` builds the option from the field (its name, type, default and that help), so the
``--help`` text and the library's default cannot drift apart. Literal types are the allowed choices.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MODALITIES = ("FLAIR", "T1", "T1Gd", "T2")
"""The four sequences, in the channel order of every image array."""
REFERENCE = "T1Gd"
"""The sequence raw scans are prepared around (its grid is the prepared grid, masks go back onto it): the one a raw
study cannot lack."""
MAX_ABSENT_SEQUENCES = 1
"""How many of the four sequences a case may lack and still be segmented (their channels set to zero, as modality
dropout trains for): one, the situations MODEL_CARD.md measures; a case lacking more is refused."""
LABEL_CONVENTIONS = ("msd", "brats2021", "brats2023")
"""The named label conventions (labels.CONVENTIONS defines them; a test keeps the two lists equal)."""
HEADS = ("regions", "classes")
LOSSES = ("dice", "dice_bce", "dice_ce")
OPTIMIZERS = ("adamw", "sgd")
DEVICES = "auto | cpu | cuda | cuda:N"
"""What ``--device`` accepts (devices.choose_device)."""
DEFAULT_DEVICE = "auto"
ENGINES = ("torch", "openvino", "onnx")
"""What runs the networks in prediction (``--engine``): torch, or a CPU inference runtime."""
"""A GPU if one is visible, else the CPU."""
BRAIN_EXTRACTION = ("auto", "deepbet", "none")
BRATS_SHAPE = (240, 240, 155)
"""The BraTS grid, voxels (1 mm): phantoms are made on it unless told otherwise."""
CACHE_DIR = Path.home() / ".cache" / "glioseg"
"""Where preprocessed training data are cached (``glioseg train --cache`` chooses another)."""


def cli(help: str, **option) -> dict:
    """Field metadata that makes a setting a command-line option (``option``: typer.Option arguments: ``flag``
    for a name other than the field's, ``min``, ``max``, ``parser``, ``metavar``)."""
    return {"help": help, **option}


def parse_fold(text: str | int | None) -> int | None:
    """``--fold``: a fold number, or ``all`` (None: every case trains, none is held out)."""
    if text is None or isinstance(text, int):
        return text
    if text == "all":
        return None
    if not text.isdigit():
        raise ValueError(f"{text!r} is neither a fold number nor 'all'")
    return int(text)


def parse_window(text: str | tuple | None) -> tuple[int, int, int] | str | None:
    """``--window``: ``X,Y,Z`` voxels, or ``whole`` (one window over the cropped brain)."""
    if text is None or isinstance(text, tuple) or text == "whole":
        return text
    try:
        x, y, z = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: give X,Y,Z (e.g. 64,64,64) or whole") from None
    return (x, y, z)


def parse_series(text: str | tuple | None) -> tuple[str, ...]:
    """``--series``: ``SEQUENCE=SERIES`` pairs, comma-separated (checked by :func:`glioseg.raw.dicom.parse_choices`)."""
    if not text:
        return ()
    return text if isinstance(text, tuple) else tuple(pair.strip() for pair in text.split(",") if pair.strip())


def parse_sequences(text: str | tuple | None) -> tuple[str, ...]:
    """``--without``: sequence names, comma-separated, in any case (``t1,flair``), as :data:`MODALITIES` spells them."""
    if not text:
        return ()
    names = text if isinstance(text, tuple) else tuple(name.strip() for name in text.split(",") if name.strip())
    spelled = {name.lower(): name for name in MODALITIES}
    unknown = [name for name in names if name.lower() not in spelled]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a sequence; give some of {', '.join(MODALITIES)}")
    chosen = {spelled[name.lower()] for name in names}
    if len(chosen) == len(MODALITIES):
        raise ValueError("every sequence left out: keep at least one")
    return tuple(name for name in MODALITIES if name in chosen)


PREPARE_MODES = ("auto", "always", "never")
NATIVE_GRIDS = ("reference", "all")
"""Where the masks of raw scans go: the T1Gd's native grid, or every sequence's too."""


@dataclass(frozen=True)
class PreprocessConfig:
    """How a case becomes network input.

    Attributes:
        spacing_mm: resample to this voxel size before the network (None keeps the file's grid). Coarser
            is much faster on CPU; predictions are brought back to the original grid.
        crop_margin: voxels kept around the brain's bounding box.
    """

    spacing_mm: tuple[float, float, float] | None = field(
        default=None, metadata=cli("Resample to this voxel size, mm (default: the files' grid).", flag="--spacing")
    )
    crop_margin: int = 2


@dataclass(frozen=True)
class ModelConfig:
    """The 3D U-Net (Cicek et al. 2016): ``depth`` resolution levels, ``width * 2**level`` channels."""

    in_channels: int = 4
    head: Literal[HEADS] = field(
        default="regions", metadata=cli("regions: 3 sigmoid outputs WT, TC, ET; classes: 4 softmax outputs.")
    )
    width: int = field(default=16, metadata=cli("Channels at full resolution.", min=1))
    depth: int = field(default=4, metadata=cli("Resolution levels of the U-Net.", min=2))
    max_width: int = 256
    deep_supervision: bool = field(default=False, metadata=cli("A loss at every decoder level, not only the last."))
    temperature: float = 1.0
    """Logits are divided by this before the sigmoid or softmax (temperature scaling, fitted on a cross-validation's
    held-out cases; it changes no single network's labels, only how sure its probabilities are). 1 as trained."""

    @property
    def out_channels(self) -> int:
        return 3 if self.head == "regions" else 4


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, sampling and validation settings of one training run."""

    patch: tuple[int, int, int] = field(
        default=(64, 64, 64), metadata=cli("Patch size X Y Z, voxels (multiples of 2**(depth-1)).")
    )
    batch: int = field(default=2, metadata=cli("Patches per step.", min=1))
    epochs: int = field(default=50, metadata=cli("Epochs to train.", min=1))
    steps_per_epoch: int = field(default=50, metadata=cli("Optimisation steps per epoch.", min=1))
    foreground_fraction: float = field(
        default=1 / 3, metadata=cli("Share of patches centred on tumour (classes balanced).", min=0.0, max=1.0)
    )
    optimizer: Literal[OPTIMIZERS] = field(
        default="adamw", metadata=cli("adamw, or sgd (momentum 0.99, Nesterov, as nnU-Net).")
    )
    learning_rate: float = field(
        default=3e-3, metadata=cli("Initial learning rate (poly decay).", flag="--lr", min=0.0)
    )
    weight_decay: float = field(default=1e-5, metadata=cli("Weight decay of the optimiser.", min=0.0))
    loss: Literal[LOSSES] = field(
        default="dice_bce", metadata=cli("dice or dice_bce with the regions head, dice_ce with the classes head.")
    )
    augment: bool = field(default=True, metadata=cli("Spatial and intensity augmentation."))
    folds: int = field(default=5, metadata=cli("Cross-validation folds, split by patient.", min=2))
    fold: int | None = field(
        default=0,
        metadata=cli("Fold held out for validation, or 'all' to train on every case.", parser=parse_fold,
                     metavar="K|all"),
    )  # fmt: skip
    seed: int = field(default=0, metadata=cli("Seeds the splits, the weights and every batch."))
    validate_every: int = field(default=5, metadata=cli("Epochs between validations.", min=1))
    workers: int = field(default=1, metadata=cli("Loader processes.", min=0))
    amp: bool = field(
        default=True, metadata=cli("Mixed precision: float16 on CUDA, bfloat16 on a CPU that has it natively.")
    )
    modality_dropout: float = field(
        default=0.0,
        metadata=cli("Share of patches that lose a sequence (two, one time in four), set to zero: trains for studies "
                     "missing one (ModDrop).", min=0.0, max=1.0),
    )  # fmt: skip
    thick_slices: float = field(
        default=0.0,
        metadata=cli("Share of patches some of whose sequences are made thick-sliced (3-6 mm at 2 mm, along one "
                     "axis): trains for clinical scans with thick FLAIR or T2 slices.", min=0.0, max=1.0),
    )  # fmt: skip
    balance_enhancing_lesions: bool = field(
        default=False,
        metadata=cli("Centre enhancing-tumour patches on each enhancing lesion equally often rather than on each "
                     "voxel, so that small lesions are seen as often as large ones."),
    )  # fmt: skip
    extra_data: str | None = field(
        default=None,
        metadata=cli("Labelled cases added to every fold's training set, never validated on (phantoms, say)."),
    )
    label_convention: Literal[LABEL_CONVENTIONS] | None = field(
        default=None, metadata=cli("Read the dataset's labels in this convention (default: what its layout implies).")
    )
    group_regex: str = field(
        default=r"^(BraTS-[A-Za-z]+-\d+)-\d+$",
        metadata=cli("Case ids matching this are one patient if its first group agrees (default: BraTS 2023+ time "
                     "points -000, -001 of one patient); cross-validation never splits a patient.", metavar="REGEX"),
    )  # fmt: skip


def checked(value, hint, name: str):
    """``value`` read from JSON as the type ``hint`` of the setting ``name`` (lists become tuples), or ValueError:
    a settings file holds data of the types written here, nothing else."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for argument in arguments:
            try:
                return checked(value, argument, name)
            except ValueError:
                continue
    elif origin is Literal:
        if value in arguments:
            return value
    elif origin is tuple and isinstance(value, list | tuple):
        kinds = [arguments[0]] * len(value) if arguments[-1] is Ellipsis else list(arguments)
        if len(kinds) == len(value):
            return tuple(checked(item, kind, name) for item, kind in zip(value, kinds))
    elif hint is type(None) and value is None:
        return None
    elif hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif hint in (int, str, bool) and type(value) is hint:
        return value
    expected = (f"one of {', '.join(map(repr, arguments))}" if origin is Literal
                else str(hint).replace("typing.", "") if origin else hint.__name__)  # fmt: skip
    raise ValueError(f"setting {name} = {value!r} is not {expected}")


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
            if not isinstance(values, dict):
                raise ValueError(f"{kind.__name__} is {type(values).__name__}, not a table of settings")
            hints = typing.get_type_hints(kind)
            unknown = set(values) - set(hints)
            if unknown:
                raise ValueError(f"unknown {kind.__name__} settings {sorted(unknown)}")
            return kind(**{name: checked(value, hints[name], name) for name, value in values.items()})

        return cls(
            preprocess=build(PreprocessConfig, data.get("preprocess", {})),
            model=build(ModelConfig, data.get("model", {})),
            train=build(TrainConfig, data.get("train", {})),
        )


@dataclass(frozen=True)
class PostprocessConfig:
    """Cleaning rules, in mL or as a fraction of the largest component, so that they mean the same at any voxel
    size. Chosen by the cleaning study on the 28-case cross-validation (MODEL_CARD.md, ``benchmarks/cleaning.py``).

    Attributes:
        min_component_ml: tumour components (26-connected, whole tumour) smaller than this are dropped.
        min_component_fraction: per region, components smaller than this fraction of the region's largest go:
            tumour components are dropped, core components (TC) become edema, enhancing components become core.
            Each stray component is a false-positive lesion under BraTS's lesion-wise rules (since 2023), and a
            glioma is one large lesion far more often than several of like size.
        min_enhancing_ml: if the whole predicted enhancing tumour is smaller than this, it becomes core: a
            few enhancing voxels in a non-enhancing tumour cost a BraTS ET Dice of 0 (empty truth, non-empty
            prediction), so teams relabel them (Isensee et al. 2021 used 750 voxels = 0.75 mL at 1 mm).
    """

    min_component_ml: float = field(
        default=0.1, metadata=cli("Drop tumour components smaller than this, mL (0 keeps every one).", min=0.0)
    )
    min_component_fraction: float = field(
        default=0.2,
        metadata=cli("Per region, components under this fraction of its largest go (0 keeps every one).", min=0.0,
                     max=1.0),
    )  # fmt: skip
    min_enhancing_ml: float = field(
        default=0.5, metadata=cli("A whole enhancing tumour under this many mL becomes core (0: never).", min=0.0)
    )


@dataclass(frozen=True)
class PredictConfig:
    """How cases are predicted (``glioseg predict``, ``crossval``, the Python API's ``Model.predict``)."""

    labels: Literal[LABEL_CONVENTIONS] | None = field(
        default=None, metadata=cli("Label convention of the masks (default: each input's own).")
    )
    tta: bool = field(default=False, metadata=cli("Mirror test-time augmentation (average of 8 flips)."))
    overlap: float = field(
        default=0.5, metadata=cli("Sliding-window overlap (nnU-Net's default 0.5).", min=0.0, max=0.9)
    )
    window: tuple[int, int, int] | str | None = field(
        default=None,
        metadata=cli("Window: X,Y,Z or 'whole' (default: the training patch).", parser=parse_window,
                     metavar="X,Y,Z|whole"),
    )  # fmt: skip
    save_probabilities: bool = field(default=False, metadata=cli("Also write <case>_probabilities.nii.gz."))
    prepare: Literal[PREPARE_MODES] = field(
        default="auto",
        metadata=cli("Raw scans (DICOM studies, sequences on different grids, heads with skull): auto prepares them "
                     "when they need it (glioseg prepare's steps), always prepares every case folder, never refuses."),
    )  # fmt: skip
    native_grids: Literal[NATIVE_GRIDS] = field(
        default="reference",
        metadata=cli("Masks of raw scans on the T1Gd's native grid (reference), or on every sequence's too (all)."),
    )
    series: tuple[str, ...] = field(
        default=(),
        metadata=cli("DICOM: which series is which, e.g. T1Gd=7,FLAIR=3 (when the tags leave a choice).",
                     parser=parse_series, metavar="SEQUENCE=SERIES,..."),
    )  # fmt: skip
    review_threshold: float = field(
        default=1.0,
        metadata=cli("Review score above which a case is flagged 'review advised' (doubt about enhancing tumour, "
                     "MODEL_CARD.md).", min=0.0),
    )  # fmt: skip
    without: tuple[str, ...] = field(
        default=(),
        metadata=cli("Segment as if these sequences were missing (set to zero, as a model trained with "
                     "--modality-dropout expects), e.g. T1 or T1,FLAIR: measures a model on incomplete studies.",
                     parser=parse_sequences, metavar="SEQUENCES"),
    )  # fmt: skip
    require_all: bool = field(
        default=False,
        metadata=cli("Refuse a case that lacks one of the four sequences (by default it is segmented without it, and "
                     "the accuracy measured for that is printed)."),
    )  # fmt: skip
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)


@dataclass(frozen=True)
class EvaluateConfig:
    """How predictions are scored (``glioseg evaluate``)."""

    tolerance_mm: float = field(default=1.0, metadata=cli("Surface Dice tolerance, mm.", flag="--tolerance", min=0.0))
    rules: Literal["brats2023", "brats2024", "panoptica"] = field(
        default="brats2023",
        metadata=cli("Whose rules: brats2023 or brats2024: that year's lesion-wise Dice, HD95 (and NSD) and its own "
                     "whole-image metrics; panoptica (brats-evaluation, BraTS 2025): its metrics, panoptic quality."),
    )  # fmt: skip
    label_convention: Literal[LABEL_CONVENTIONS] | None = field(
        default=None,
        metadata=cli("Read the ground-truth labels in this convention (default: what their layout implies)."),
    )


@dataclass(frozen=True)
class PrepareConfig:
    """How raw scans are prepared (``glioseg prepare``; ``predict`` prepares raw input with the defaults)."""

    brain_extraction: Literal[BRAIN_EXTRACTION] = field(
        default="auto", metadata=cli("auto: deepbet unless the scans are skull-stripped already; none: keep them.")
    )


@dataclass(frozen=True)
class CohortConfig:
    """A phantom cohort (``glioseg synth``); ``layout`` is a name of ``layouts.LAYOUTS`` (the CLI offers them)."""

    cases: int = field(default=8, metadata=cli("Number of phantom cases.", min=1))
    layout: str = "brats2021"
    seed: int = field(default=0, metadata=cli("Same seed, same cohort."))
    shape: tuple[int, int, int] = field(
        default=BRATS_SHAPE, metadata=cli("Grid X Y Z, voxels (covering the BraTS field of view, 240 x 240 x 155 mm).")
    )


@dataclass(frozen=True)
class FollowupConfig:
    """The known changes of a synthetic follow-up (``glioseg synth-followup``)."""

    grow_voxels: int = field(default=2, metadata=cli("Voxels the tumour grows by (negative: shrinks).", flag="--grow"))
    new_lesion_radius_mm: float = field(
        default=7.0, metadata=cli("Radius of an added enhancing lesion, mm (0: none).", flag="--new-lesion-mm")
    )
    rotation_degrees: tuple[float, float, float] = field(
        default=(8.0, -5.0, 6.0), metadata=cli("Rotation about x, y, z, degrees.", flag="--rotate")
    )
    translation_mm: tuple[float, float, float] = field(
        default=(10.0, -6.0, 5.0), metadata=cli("Translation, mm.", flag="--shift")
    )


def parse_ae_title(text: str) -> str:
    """A DICOM application entity title: 1-16 characters of the default repertoire, no backslash (PS3.5 AE)."""
    title = text.strip()
    if not 1 <= len(title) <= 16 or not title.isascii() or not title.isprintable() or "\\" in title:
        raise ValueError(f"{text!r} is no AE title (1-16 printable ASCII characters, no backslash)")
    return title


@dataclass(frozen=True)
class NodeConfig:
    """The DICOM node (``glioseg listen``): where it listens, its name, and when a study counts as complete."""

    port: int = field(default=11112, metadata=cli("TCP port to receive on (11112: DICOM's registered port).", min=1,
                                                 max=65535))  # fmt: skip
    ae_title: str = field(default="GLIOSEG", metadata=cli("This node's AE title (the PACS sends to it).",
                                                          parser=parse_ae_title))  # fmt: skip
    study_timeout_s: float = field(
        default=5.0,
        metadata=cli("Seconds without a new instance after which a study is complete and segmented.",
                     flag="--study-timeout", min=0.1),
    )  # fmt: skip


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on one upload to the viewer; a BraTS case is four files of 2-15 MB each (gzip)."""

    max_upload_mb: float = field(default=512, metadata=cli("Largest upload accepted, MB.", min=0.01))
    max_files: int = 8
    max_unpacked_bytes: int = 2 * 1024**3  # all NIfTI files after unzipping
    max_zip_entries: int = 32
    max_dicom_files: int = 5000  # a zipped study: four sequences of 30-400 slices each, localisers and others
    max_voxels: int = 300**3  # per 3D volume (a BraTS case has 240 x 240 x 155; the command line allows 512**3)
    max_waiting_jobs: int = field(
        default=4, metadata=cli("Uploads queued behind the running one before refusing.", min=1)
    )
    max_stored_mb: float = field(
        default=4096, metadata=cli("Disk the jobs may use, MB; the oldest finished jobs go first.", min=1.0)
    )

    @property
    def max_bytes(self) -> int:
        """The whole request, bytes."""
        return int(self.max_upload_mb * 1024**2)
