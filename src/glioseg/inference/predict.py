"""From trained runs to masks: read -> preprocess -> sliding window (+ mirror TTA, + fold ensemble) -> labels in
the crop box -> uncrop onto the file's grid -> clean (sizes in mL on that grid) -> write in the user's convention with
the input's affine and header.

A cohort run writes ``<case_id>.nii.gz`` per case (and optionally ``<case_id>_probabilities.nii.gz`` and
``<case_id>_uncertainty.nii.gz``; its review in ``<case_id>_review.json``), ``volumes.csv``, ``lesions.csv``
(per-lesion measurements), ``quality.csv`` (each case's review score and flag), ``cases.json``
(where each case's inputs are) and ``predict.json`` (the settings). Cases already written with the same settings
are skipped, so an interrupted run finishes only what is missing; with ``torchrun`` each process takes every N-th
case.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from glioseg.core.config import DEFAULT_DEVICE, MODALITIES, PredictConfig, RunConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, claim_folder, remove_stale_temporaries
from glioseg.core.labels import BRATS2021, CONVENTIONS, REGIONS, STRUCTURE_NAMES, LabelConvention, convention_record
from glioseg.core.stopwatch import Stopwatch
from glioseg.datasets.cases import Case, nifti_like, write_label
from glioseg.datasets.layouts import LAYOUTS, CaseFiles
from glioseg.datasets.preprocess import preprocess_case
from glioseg.evaluation.measurements import measure_case, write_lesions
from glioseg.evaluation.metrics import volumes_ml
from glioseg.inference.inputs import RawInput, inputs_of, read_or_raw
from glioseg.inference.native import PREPARED_FOLDER, predict_raw
from glioseg.inference.postprocess import (
    clean_label,
    label_from_probabilities,
    to_crop_grid,
    uncrop_label,
    uncrop_probabilities,
)
from glioseg.inference.review import (
    Measured,
    Review,
    member_doubt,
    read_measurements,
    read_review,
    review_of,
    write_review,
)
from glioseg.inference.sliding_window import ensemble_probabilities
from glioseg.network.devices import choose_device
from glioseg.network.runs import checkpoint_path, load_checkpoint, run_config_of
from glioseg.network.unet import Network, build_network, divisor

SHIPPED_MODELS = tuple(Path(__file__).parents[1] / "models" / f"brats2018-28-fold{fold}.pt" for fold in range(5))
"""The shipped model: the five fold models of the 5-fold cross-validation on 28 real BraTS 2018 cases, ensembled
(nnU-Net's default; MODEL_CARD.md)."""
SHIPPED_TEMPERATURE = 1.5
"""The shipped fold models' temperature: fitted on each fold's held-out cases from the other folds' (1.45-1.55,
``benchmarks/calibration.py``), it lowers their expected calibration error there (MODEL_CARD.md, "Calibration")."""


@dataclass
class Prediction:
    """A case's segmentation on its own grid.

    Attributes:
        label: ``uint8 (X, Y, Z)`` internal classes (``np.asarray(prediction)`` gives it too).
        probabilities: ``float32 (C, X, Y, Z)`` mean over ensemble members, if kept.
        uncertainty: ``float32 (X, Y, Z)`` variance across TTA / ensemble members, if more than one.
        volumes_ml: tumour volume per region and class.
        review: the review score and whether a reader should check this case (:mod:`glioseg.inference.review`).
    """

    label: np.ndarray
    probabilities: torch.Tensor | None = None
    uncertainty: np.ndarray | None = None
    volumes_ml: dict[str, float] = field(default_factory=dict)
    review: Review | None = None

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.label if dtype is None else self.label.astype(dtype)


@dataclass
class Model:
    """Trained networks (one per run; several runs ensemble) sharing one configuration; ``measured``: their
    cross-validated Dice with each sequence left out, where it was measured (:mod:`glioseg.inference.review`)."""

    networks: list[Network]
    config: RunConfig
    device: torch.device
    sources: list[Path]
    measured: Measured | None = None

    def predict(
        self,
        case: Case,
        settings: PredictConfig = PredictConfig(),
        keep_probabilities: bool = False,
        timings: dict[str, float] | None = None,
        **changes,
    ) -> Prediction:
        """Segment a case (see module doc); the label lies on the case's grid. A sequence the case lacks
        (``case.absent``: ``read_case(folder, complete=False)``) or that ``settings.without`` names is segmented
        without, and its review says how reliable that is.

        Args:
            settings: TTA, overlap, window and cleaning (``config.PredictConfig``); ``changes`` replace some of
                them: ``model.predict(case, tta=True)``. A window of None is the training patch, ``"whole"`` one
                window over the whole cropped brain (fewer, larger convolutions: faster on a CPU).
            timings: if given, receives the seconds of each stage (preprocess, sliding window, postprocess).
        """
        settings = dataclasses.replace(settings, **changes)
        if case.image.shape[0] != self.config.model.in_channels:
            raise InputError(case.files.first_image, f"{case.image.shape[0]} channels, the model takes "
                             f"{self.config.model.in_channels}", "give the four modalities")  # fmt: skip
        clock = Stopwatch(timings)
        absent = tuple(m for m in MODALITIES if m in case.absent or m in settings.without)
        if settings.without:  # a sequence the case lacks is zero already (read_case)
            case = dataclasses.replace(case, image=case.image.copy())
            case.image[[MODALITIES.index(name) for name in settings.without]] = 0
        prepared = preprocess_case(case, self.config.preprocess)
        clock.lap("preprocess")
        patch = self.window_size(prepared.image.shape[1:], settings.window)
        head = self.config.model.head
        doubts: list[dict[str, float]] = []
        mean, variance = ensemble_probabilities(
            self.networks, prepared.image, patch, settings.overlap, settings.tta, self.config.train.batch, self.device,
            each_member=lambda own: doubts.append(member_doubt(own, head)),
        )  # fmt: skip
        clock.lap("sliding window")
        crop_label = label_from_probabilities(to_crop_grid(mean, prepared.box), head)  # labels inside the box only
        label = uncrop_label(crop_label, prepared.box, prepared.original_shape)
        label = clean_label(label, case.spacing, settings.postprocess)
        clock.lap("postprocess")
        uncertainty = None
        if variance is not None:
            uncertainty = uncrop_probabilities(variance[None], prepared.box, prepared.original_shape)[0].numpy()
        return Prediction(
            label,
            uncrop_probabilities(mean, prepared.box, prepared.original_shape, head) if keep_probabilities else None,
            uncertainty,
            volumes_ml(label, case.spacing),
            review_of(doubts, settings.review_threshold, absent, self.measured),
        )

    def window_size(self, shape: tuple[int, ...], window: tuple[int, int, int] | str | None) -> tuple[int, int, int]:
        """The sliding window for a network-grid ``shape``: multiples of the U-Net's divisor."""
        if window is None:
            return self.config.train.patch
        multiple = divisor(self.config.model)
        sizes = shape if window == "whole" else window
        return tuple(-(-int(n) // multiple) * multiple for n in sizes)  # type: ignore[return-value]

    def fingerprint(self) -> str:
        """Identifies the weights and settings (for resuming a cohort with the same model only)."""
        digest = hashlib.sha256(self.config.to_json().encode())
        for source in self.sources:
            digest.update(str(source.resolve()).encode())
            digest.update(str(source.stat().st_mtime_ns).encode())
        return digest.hexdigest()[:16]


def load_model(
    runs: str | Path | list[str | Path] | None = None, device: str = DEFAULT_DEVICE, engine: str = "torch"
) -> Model:
    """Load one run, or several runs (e.g. the folds of a cross-validation) to ensemble; none: the shipped model
    (:data:`SHIPPED_MODELS`, see MODEL_CARD.md).

    Args:
        engine: ``torch``; ``openvino`` (OpenVINO on the CPU, the network converted once and cached,
            :mod:`glioseg.network.openvino_engine`); or ``onnx`` (ONNX Runtime on the CPU, with the ``.onnx`` file
            that ``glioseg export --onnx`` wrote beside each checkpoint).

    Raises:
        InputError: missing or corrupt checkpoints, or runs whose settings differ.
    """
    shipped = runs is None or runs == []
    if shipped:
        for shipped_model in SHIPPED_MODELS:
            if not shipped_model.exists():
                raise InputError(shipped_model, "the shipped model is missing from this installation",
                                 "reinstall glioseg, or give a run folder")  # fmt: skip
        runs = list(SHIPPED_MODELS)
    runs = [Path(r) for r in (runs if isinstance(runs, list) else [runs])]
    torch_device = choose_device(device)
    paths = [checkpoint_path(run) for run in runs]
    networks, config = [], None
    for path in paths:
        state = load_checkpoint(path)
        run_config = run_config_of(state, path)
        if shipped:
            run_config = dataclasses.replace(
                run_config, model=dataclasses.replace(run_config.model, temperature=SHIPPED_TEMPERATURE)
            )
        if config is not None and (run_config.preprocess, run_config.model, run_config.train.patch) != (
            config.preprocess, config.model, config.train.patch
        ):  # fmt: skip
            raise InputError(path, "this run's model or preprocessing differs from the first run's",
                             "ensemble only folds trained with the same settings")  # fmt: skip
        config = config or run_config
        network = build_network(run_config.model, state["model"], path)
        networks.append(_engine_network(engine, network, path, run_config, torch_device))
    folders = {run.resolve().parent for run in runs}  # the measurements beside the runs: one folder holds them all
    measured = read_measurements(folders.pop()) if len(folders) == 1 else None
    return Model(networks, config, torch_device, paths, measured)  # type: ignore[arg-type]


def _engine_network(engine: str, network, checkpoint: Path, config: RunConfig, device: torch.device) -> Network:
    """The network as the chosen engine runs it (:data:`config.ENGINES`)."""
    if engine == "openvino":
        from glioseg.network.openvino_engine import OpenVinoNetwork

        return OpenVinoNetwork(network, checkpoint)
    if engine == "onnx":
        return _onnx_network(checkpoint, config)
    return network.to(device).eval()


def _onnx_network(checkpoint: Path, config: RunConfig):
    from glioseg.network.onnx_engine import OnnxNetwork

    exported = checkpoint.with_suffix(".onnx")
    if not exported.exists():
        raise InputError(exported, "no ONNX export beside this checkpoint",
                         f"glioseg export RUN --out {checkpoint.with_suffix('.pt').name} --onnx")  # fmt: skip
    return OnnxNetwork(exported, config.model)


def _output_convention(files: CaseFiles | RawInput, settings: PredictConfig) -> LabelConvention:
    """``--labels``, else the input's own (raw input has none: BraTS 2021's 1/2/4, what the viewers expect)."""
    if settings.labels:
        return CONVENTIONS[settings.labels]
    return files.convention if isinstance(files, CaseFiles) else BRATS2021


def predict_cohort(
    model: Model, inputs: list[Path], out: Path, settings: PredictConfig, overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:  # fmt: skip
    """Predict every case of ``inputs`` into ``out``; returns the mask paths (done before or now)."""
    cases = inputs_of(inputs, settings.prepare, complete=settings.require_all)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    fresh = not (out / "predict.json").exists()
    if rank == 0:
        _claim_output(out, model, settings, overwrite)
        remove_stale_temporaries(out)  # from a killed run; before any process of this one writes
    _barrier(world)
    from rich.progress import track

    masks = []
    try:
        for files in track(cases[rank::world], description="predicting", disable=not progress):
            masks.append(_predict_case(model, files, out, settings, overwrite))
    except InputError:
        if fresh and world == 1 and not any(mask.exists() for mask in masks):  # refused before any result
            _unclaim(out)
        raise
    _barrier(world)
    if rank == 0:
        write_measurements(out, cases, settings)
        write_quality(out, cases)
        write_case_index(out, cases, settings)
    return masks


def _predict_case(model: Model, files: CaseFiles | RawInput, out: Path, settings: PredictConfig,
                  overwrite: bool) -> Path:  # fmt: skip
    """One case's mask (and extras) in ``out``, unless done before; returns the mask's path."""
    mask = out / f"{files.case_id}.nii.gz"
    if mask.exists() and not overwrite:
        return mask
    convention = _output_convention(files, settings)
    case = files if isinstance(files, RawInput) else read_or_raw(files, settings.prepare)
    if isinstance(case, RawInput):  # a DICOM study, grids that disagree, a head with skull: prepared first
        predict_raw(model, case, out, settings, convention)
        return mask
    prediction = model.predict(case, settings, keep_probabilities=settings.save_probabilities)
    for extra in EXTRAS:  # an earlier run's, which these settings may not write again
        (out / f"{files.case_id}{extra}").unlink(missing_ok=True)
    _write_extras(out, case, prediction, settings)
    write_review(out, files.case_id, prediction.review)
    write_label(mask, prediction.label, case, convention)  # the mask last: it marks done
    return mask


def _unclaim(out: Path) -> None:
    """Undo this call's claim of a folder it made nothing in: ``predict.json``, and the folders left empty."""
    (out / "predict.json").unlink(missing_ok=True)
    for folder in (out / PREPARED_FOLDER, out):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _barrier(world: int) -> None:
    """Wait for every process of a ``torchrun`` job (no-op for one process)."""
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        dist.barrier()


def _claim_output(out: Path, model: Model, settings: PredictConfig, overwrite: bool) -> None:
    """Record the model and settings in ``predict.json``; refuse to mix predictions made with others."""
    manifest = {"model": model.fingerprint(), "sources": [str(s) for s in model.sources], **asdict(settings)}
    claim_folder(out / "predict.json", manifest, overwrite, "predictions")


EXTRAS = ("_probabilities.nii.gz", "_uncertainty.nii.gz")
"""What a case may have beside its mask: probabilities (``--save-probabilities``), uncertainty (TTA, ensembles)."""


def _write_extras(out: Path, case: Case, prediction: Prediction, settings: PredictConfig) -> None:
    probabilities, uncertainty = (out / f"{case.case_id}{extra}" for extra in EXTRAS)
    if settings.save_probabilities and prediction.probabilities is not None:
        scaled = np.round(np.moveaxis(prediction.probabilities.numpy(), 0, -1) * 255).astype(np.uint8)
        image = nifti_like(scaled, case.header, np.uint8)
        image.header.set_slope_inter(1 / 255, 0.0)
        with atomic_path(probabilities) as temporary:
            nib.save(image, temporary)
    if prediction.uncertainty is not None:
        with atomic_path(uncertainty) as temporary:
            nib.save(nifti_like(prediction.uncertainty, case.header, np.float32), temporary)


def write_measurements(out: Path, cases: list[CaseFiles | RawInput], settings: PredictConfig) -> tuple[Path, Path]:
    """``volumes.csv`` (tumour volume in mL per region and class of every predicted case, and the regions not to trust
    where it lacked a sequence: :mod:`glioseg.inference.review`) and ``lesions.csv`` (each
    lesion's volumes, centroid and RANO diameters, :mod:`glioseg.evaluation.measurements`), from the masks as
    written; the rows of cases an earlier call predicted into ``out`` are kept (a DICOM node adds study by study)."""
    volumes, lesions = _earlier_rows(out / "volumes.csv", cases), _earlier_rows(out / "lesions.csv", cases)
    for files in cases:
        mask = out / f"{files.case_id}.nii.gz"
        if not mask.exists():
            continue
        image = nib.load(mask)
        label = _output_convention(files, settings).to_internal(np.asarray(image.dataobj))
        measured, lesion_rows = measure_case(label, image.affine, image.header.get_zooms())
        review = read_review(out, files.case_id) or {}
        volumes.append({"case_id": files.case_id, **measured, "unreliable": review.get("unreliable", "")})
        lesions += [{"case_id": files.case_id, **row} for row in lesion_rows]
    path = out / "volumes.csv"
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", *(f"{n}_ml" for n in STRUCTURE_NAMES), "unreliable"])
        writer.writeheader()
        writer.writerows(volumes)
    return path, write_lesions(out / "lesions.csv", lesions)


QUALITY_FIELDS = ("case_id", "review_score", "review_advised", *(f"doubt_{region}" for region in REGIONS), "absent",
                  "unreliable")  # fmt: skip
"""The columns of ``quality.csv``: each case's review score, flag and signals (:mod:`glioseg.inference.review`)."""


def write_quality(out: Path, cases: list[CaseFiles | RawInput]) -> Path:
    """``quality.csv``: the review score and flag of every predicted case (as written beside its mask)."""
    rows = _earlier_rows(out / "quality.csv", cases)
    for files in cases:
        review = read_review(out, files.case_id)
        if review is not None and (out / f"{files.case_id}.nii.gz").exists():
            rows.append({"case_id": files.case_id, **review})
    path = out / "quality.csv"
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=QUALITY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _still_listed(rows: list[dict], out: Path, cases: list[CaseFiles | RawInput]) -> list[dict]:
    """The rows an earlier call wrote into ``out`` whose case is not among ``cases`` and still has its mask."""
    current = {files.case_id for files in cases}
    return [row for row in rows if row["case_id"] not in current and (out / f"{row['case_id']}.nii.gz").exists()]


def _earlier_rows(table: Path, cases: list[CaseFiles | RawInput]) -> list[dict]:
    """:func:`_still_listed` of an earlier call's CSV ``table``."""
    if not table.exists():
        return []
    with open(table, newline="") as stream:
        return _still_listed(list(csv.DictReader(stream)), table.parent, cases)


def write_case_index(out: Path, cases: list[CaseFiles | RawInput], settings: PredictConfig) -> Path:
    """``cases.json``: where each predicted case's images (and expert label, if any) are, for reports and the viewer.
    A raw case is shown prepared (its mask on the prepared grid); ``native_mask`` and ``raw_source`` say where the
    native mask and the input are. Entries of cases an earlier call predicted into ``out`` are kept."""
    index = _still_listed(read_case_index(out), out, cases)
    for files in cases:
        if not (out / f"{files.case_id}.nii.gz").exists():
            continue
        entry = {"case_id": files.case_id, "mask": f"{files.case_id}.nii.gz",
                 "mask_convention": convention_record(_output_convention(files, settings))}  # fmt: skip
        if isinstance(files, RawInput) or (out / PREPARED_FOLDER / files.case_id).is_dir():
            raw_source = files.source if isinstance(files, RawInput) else case_source(files)
            entry.update(mask=f"{PREPARED_FOLDER}/{files.case_id}.nii.gz", native_mask=entry["mask"],
                         source=str((out / PREPARED_FOLDER / files.case_id).resolve()),
                         raw_source=str(raw_source.resolve()), has_label=False)  # fmt: skip
        else:
            entry.update(source=str(case_source(files).resolve()), has_label=files.label is not None)
        review = read_review(out, files.case_id)
        if review is not None:
            absent = review.get("absent", "").split()
            entry.update(review_score=review["review_score"], review_advised=review["review_advised"],
                         sequences=[m for m in MODALITIES if m not in absent], absent=absent,
                         unreliable=review.get("unreliable", "").split())  # fmt: skip
        index.append(entry)
    path = out / "cases.json"
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(index, indent=1))
    return path


def case_source(files: CaseFiles) -> Path:
    """The path that names a case: its folder (BraTS layouts) or its first image file (MSD, nnU-Net)."""
    return files.first_image.parent if LAYOUTS[files.layout].case_folders else files.first_image


def read_case_index(pred_dir: Path) -> list[dict]:
    """The entries of a prediction folder's ``cases.json`` (empty if it has none)."""
    path = Path(pred_dir) / "cases.json"
    return json.loads(path.read_text()) if path.exists() else []
