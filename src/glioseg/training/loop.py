"""The training loop: explicit, resumable, and distributed with ``torchrun`` (DDP).

A run folder holds ``config.json`` (everything to rebuild preprocessing and model), ``splits.json``,
``history.jsonl`` (one line per epoch), ``tensorboard/``, ``last.pt`` (every epoch, atomic) and ``best.pt``
(best mean validation Dice over WT, TC, ET). ``resume=True`` restores model, optimiser, scheduler, scaler,
RNG states and epoch; batches are a pure function of (seed, rank, step), so a resumed run continues exactly
as if never stopped.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from glioseg.core.config import CACHE_DIR, DEFAULT_DEVICE, PostprocessConfig, RunConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, make_folder, remove_stale_temporaries
from glioseg.core.labels import CLASS_NAMES, REGIONS
from glioseg.datasets.cases import labelled_cases
from glioseg.datasets.packs import is_pack, open_pack, pack_settings, read_pack_record
from glioseg.datasets.preprocess import CachedCase, cache_dataset
from glioseg.datasets.splits import kfold_splits, patient_of, read_splits, write_splits
from glioseg.evaluation.figures import save_learning_curves
from glioseg.evaluation.metrics import case_metrics
from glioseg.inference.postprocess import clean_label, label_from_probabilities
from glioseg.inference.sliding_window import ensemble_probabilities
from glioseg.network.devices import choose_device, mixed_precision_dtype
from glioseg.network.runs import (
    BEST_CHECKPOINT,
    CHECKPOINT_VERSION,
    LAST_CHECKPOINT,
    append_history,
    checkpoint_path,
    load_checkpoint,
    read_history,
    read_run_config,
    save_checkpoint,
    truncate_history,
)
from glioseg.network.unet import UNet3D, build_network, divisor
from glioseg.training.losses import deep_supervision_loss, make_loss
from glioseg.training.sampling import PatchBatches, batch_loader

VALIDATION_SEED, VALIDATION_BATCHES = 10**6, 4
VALIDATION_OVERLAP = 0.25
"""Sliding-window overlap of validation during training: cheaper than prediction's, as no mirroring is."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def poly_lr(step: int, total: int, exponent: float = 0.9) -> float:
    """nnU-Net's poly schedule factor: (1 - step/total) ** 0.9."""
    return (1 - min(step, total) / total) ** exponent


def make_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    train = config.train
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=train.learning_rate, momentum=0.99, nesterov=True, weight_decay=train.weight_decay
        )
    if train.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    raise ValueError(f"unknown optimizer {train.optimizer!r}; choose adamw or sgd")


def _rng_states() -> dict:
    """Every random generator's state, as data a weights-only checkpoint reader takes (numpy's array as a list)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    numpy_state = (name, keys.tolist(), position, has_gauss, gauss)
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def _restore_rng(states: dict) -> None:
    random.setstate(states["python"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(states["torch"])


def make_grad_scaler(amp_dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Loss scaling for float16 (its gradients underflow otherwise); bfloat16 and float32 need none."""
    return torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)


def training_step(
    network: torch.nn.Module,
    image: torch.Tensor,
    targets: torch.Tensor,
    loss_fn,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    amp_dtype: torch.dtype | None,
) -> torch.Tensor:
    """One optimisation step, shared by ``train`` and the benchmarks so that they time the same thing: forward
    under autocast (``amp_dtype``, None = float32), the loss in float32 (Dice sums over many voxels), scaled
    backward, gradient clipping, optimiser step. ``targets``: ``(B, 3, ...)`` tumour fractions. Returns the loss,
    detached."""
    with torch.autocast(image.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        outputs = network(image)
    if isinstance(outputs, list):  # deep supervision: one output per decoder level
        loss = deep_supervision_loss(loss_fn, [output.float() for output in outputs], targets)
    else:
        loss = loss_fn(outputs.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(network.parameters(), 12.0)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def validate(model: UNet3D, cases: list[CachedCase], config: RunConfig, device: torch.device) -> dict[str, float]:
    """Mean Dice per region and class, sensitivity/specificity per class, on whole held-out cases (cheap
    sliding window: ``VALIDATION_OVERLAP``, no mirroring; the prediction's default cleaning), at the network's grid."""
    per_case = []
    for case in cases:
        probabilities, _ = ensemble_probabilities(
            [model], case.image(), config.train.patch, VALIDATION_OVERLAP, batch=config.train.batch, device=device
        )
        spacing = tuple(case.meta()["spacing"])
        prediction = clean_label(
            label_from_probabilities(probabilities, config.model.head), spacing, PostprocessConfig()
        )
        per_case.append(case_metrics(prediction, np.asarray(case.label()), spacing, distances=False))
    summary = {}
    for name in [*REGIONS, *CLASS_NAMES.values()]:
        summary[f"dice/{name}"] = float(np.mean([m[name]["dice"] for m in per_case]))
    for name in CLASS_NAMES.values():
        for metric in ("sensitivity", "specificity"):
            values = [m[name][metric] for m in per_case if not np.isnan(m[name][metric])]
            summary[f"{metric}/{name}"] = float(np.mean(values)) if values else float("nan")
    summary["dice/mean_regions"] = float(np.mean([summary[f"dice/{r}"] for r in REGIONS]))
    return summary


@torch.no_grad()
def validation_loss(model: UNet3D, cases: list[CachedCase], config: RunConfig, loss_fn, device: torch.device) -> float:
    """Loss on a fixed set of held-out patches (same patches every time, no augmentation)."""
    model.eval()
    patches = PatchBatches(cases, config.train.patch, config.train.batch, config.train.foreground_fraction,
                           seed=VALIDATION_SEED, augment=False)  # fmt: skip
    losses = []
    for step in range(VALIDATION_BATCHES):
        batch = patches[step]
        outputs = model(batch["image"].to(device))
        losses.append(float(loss_fn(outputs, batch["targets"].to(device))))
    return float(np.mean(losses))


def check_run_config(config: RunConfig) -> None:
    """Refuse settings that cannot train, naming the option and the fix, before anything is read or written."""
    model, settings = config.model, config.train
    spacing = config.preprocess.spacing_mm
    if spacing is not None and not all(0 < s < 100 for s in spacing):
        raise InputError("--spacing", f"{spacing} mm is not a voxel size", "give three sizes in mm, e.g. 2 2 2")
    if (model.head == "classes") != (settings.loss == "dice_ce"):
        raise InputError("--loss", f"{settings.loss} does not go with the {model.head} head",
                         "use --loss dice or dice_bce with --head regions, dice_ce with --head classes")  # fmt: skip
    multiple = divisor(model)
    if any(size % multiple for size in settings.patch):
        raise InputError("--patch", f"{settings.patch} is not a multiple of {multiple} (2**(depth-1)) on every axis",
                         f"give sizes such as {multiple * max(1, 64 // multiple)}")  # fmt: skip
    if settings.fold is not None and not 0 <= settings.fold < settings.folds:
        raise InputError("--fold", f"fold {settings.fold} does not exist with --folds {settings.folds}",
                         f"give 0 to {settings.folds - 1}, or all")  # fmt: skip


def _prepare_run(out: Path, config: RunConfig, case_ids: list[str], resume: bool) -> None:
    """Write (or, on resume, check) config.json and splits.json."""
    config_path, splits_path = out / "config.json", out / "splits.json"
    if resume:
        remove_stale_temporaries(out)  # a checkpoint being written when the run was killed
        if not (out / LAST_CHECKPOINT).exists():
            raise InputError(out / LAST_CHECKPOINT, "nothing to resume", "run without --resume to start this run")
        saved = read_run_config(config_path)
        if saved != config:
            raise InputError(config_path, "settings differ from the run being resumed", "resume with the same options")
        return
    if (out / LAST_CHECKPOINT).exists():
        raise InputError(out, "this run folder already holds a run", "use --resume, or choose another --out")
    make_folder(out)
    with atomic_path(config_path) as temporary:
        temporary.write_text(config.to_json())
    splits = kfold_splits(case_ids, config.train.folds, config.train.seed, config.train.group_regex)
    write_splits(splits_path, splits)


def fold_cases(data: Path, out: Path, config: RunConfig, place: Distributed, cache_root: Path, resume: bool,
               progress: bool) -> tuple[list[CachedCase], list[CachedCase]]:  # fmt: skip
    """This fold's training and validation cases, cached. Every case is read (and cached) before the run folder is
    written, so bad data leaves nothing; other ranks then open the main process's caches. ``data`` is a dataset
    folder or a training pack (``glioseg pack``)."""
    if is_pack(data):
        _check_pack(data, config)
        case_ids = [entry["case_id"] for entry in read_pack_record(data)["cases"] if entry["role"] == "dataset"]

        def cached(workers: int, show: bool) -> tuple[list[CachedCase], list[CachedCase]]:
            roles = open_pack(data, cache_root)
            return roles["dataset"], roles["extra"]
    else:
        files = labelled_cases(data, label_convention=config.train.label_convention)
        case_ids = [f.case_id for f in files]
        extra = Path(config.train.extra_data) if config.train.extra_data else None
        extra_files = labelled_cases(extra, minimum=1) if extra else []

        def cached(workers: int, show: bool) -> tuple[list[CachedCase], list[CachedCase]]:
            main = cache_dataset(files, data, cache_root, config.preprocess, workers, show)
            added = cache_dataset(extra_files, extra, cache_root, config.preprocess, workers, show) if extra else []
            return main, added

    patients = {patient_of(case_id, config.train.group_regex) for case_id in case_ids}
    if config.train.fold is not None and len(patients) < config.train.folds:
        raise InputError(data, f"{len(case_ids)} labelled cases of {len(patients)} patients, fewer than the "
                         f"{config.train.folds} folds asked for",
                         f"use --folds {max(len(patients), 2)} or fewer, or --fold all")  # fmt: skip
    if place.main:
        dataset_cases, extra_cases = cached(min(max(config.train.workers, 1), 2), progress)
        _prepare_run(out, config, case_ids, resume)
    if place.world > 1:
        dist.barrier()
    if not place.main:
        dataset_cases, extra_cases = cached(1, False)
    all_ids = sorted(case_ids)
    fold = {"train": all_ids, "val": []} if config.train.fold is None else read_splits(out / "splits.json")[
        config.train.fold]  # fmt: skip
    by_id = {c.case_id: c for c in dataset_cases}
    # extra data lies outside the splits: it adds training data to every fold and is never validated on
    return [by_id[i] for i in fold["train"] if i in by_id] + extra_cases, [by_id[i] for i in fold["val"] if i in by_id]


def _check_pack(pack: Path, config: RunConfig) -> None:
    """A pack trains only with the preprocessing it was made with, and holds its own extra data."""
    made_with = pack_settings(pack)
    if made_with != config.preprocess:
        raise InputError(pack, f"packed with spacing {made_with.spacing_mm} and crop margin {made_with.crop_margin}, "
                         f"this run asks for {config.preprocess.spacing_mm} and {config.preprocess.crop_margin}",
                         "train with the pack's --spacing, or pack the dataset again with this run's")  # fmt: skip
    if config.train.extra_data:
        raise InputError("--extra-data", "a pack holds its extra cases itself",
                         "give --extra-data to glioseg pack, not to train")  # fmt: skip


@dataclass
class Optimisation:
    """What a step changes and a checkpoint keeps: the network, optimiser, learning-rate schedule, loss scaler."""

    model: UNet3D
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    epoch: int = 0
    best: float = -1.0

    @classmethod
    def start(cls, config: RunConfig, device: torch.device) -> Optimisation:
        torch.manual_seed(config.train.seed)
        model = build_network(config.model).to(device)
        optimizer = make_optimizer(model, config)
        total_steps = config.train.epochs * config.train.steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: poly_lr(step, total_steps))
        amp_dtype = mixed_precision_dtype(device) if config.train.amp else None
        return cls(model, optimizer, scheduler, make_grad_scaler(amp_dtype), amp_dtype)

    def state(self, config: RunConfig) -> dict:
        """The checkpoint: everything a resumed run needs to continue exactly."""
        return {"version": CHECKPOINT_VERSION, "config": asdict(config), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": _rng_states(), "epoch": self.epoch,
                "best": self.best}  # fmt: skip

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        _restore_rng(state["rng"])
        self.epoch, self.best = state["epoch"], state["best"]


def train(
    data: str | Path,
    out: str | Path,
    config: RunConfig,
    device: str = DEFAULT_DEVICE,
    resume: bool = False,
    init_from: str | Path | None = None,
    cache_root: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train one fold of ``data`` into run folder ``out``; returns the last epoch's history entry."""
    data, out = Path(data), Path(out)
    check_run_config(config)
    torch_device = choose_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    place = setup_distributed(torch_device)
    train_cases, val_cases = fold_cases(data, out, config, place, Path(cache_root or CACHE_DIR), resume, progress)
    run = Optimisation.start(config, torch_device)
    if resume:
        run.restore(load_checkpoint(out / LAST_CHECKPOINT))
    elif init_from is not None:
        load_pretrained(run.model, Path(init_from))
    network = torch.nn.parallel.DistributedDataParallel(run.model) if place.world > 1 else run.model
    loss_fn = make_loss(config.train.loss)
    steps = config.train.steps_per_epoch
    writer = _tensorboard(out, run.epoch * steps) if place.main else None
    if place.main:
        truncate_history(out / "history.jsonl", run.epoch)
    settings = config.train
    sampler = PatchBatches(train_cases, settings.patch, settings.batch, settings.foreground_fraction, settings.seed,
                           place.rank, settings.augment, settings.modality_dropout, settings.thick_slices,
                           settings.balance_enhancing_lesions)  # fmt: skip
    # one loader for the whole run: its processes live across epochs (restarting them every epoch left the GPU
    # waiting, benchmarks/README.md); batch k is the same whichever process makes it
    total = config.train.epochs * steps
    batches = iter(batch_loader(sampler, run.epoch * steps, total - run.epoch * steps, config.train.workers))
    entry: dict = {}
    with _progress_bar(progress and place.main) as bar:
        task = bar.add_task("training", total=total, completed=run.epoch * steps, status="")
        for epoch in range(run.epoch, config.train.epochs):
            started = time.perf_counter()
            losses = []
            run.model.train()
            for step, batch in zip(range(epoch * steps, (epoch + 1) * steps), batches):
                image = batch["image"].to(torch_device, non_blocking=True)
                targets = batch["targets"].to(torch_device, non_blocking=True)
                losses.append(float(training_step(network, image, targets, loss_fn, run.optimizer, run.scaler,
                                                  run.amp_dtype)))  # fmt: skip
                run.scheduler.step()
                if writer:
                    writer.add_scalar("loss/train_step", losses[-1], step)
                bar.update(task, advance=1, status=f"epoch {epoch + 1} loss {losses[-1]:.3f}")
            run.epoch = epoch + 1
            entry = _epoch_entry(run, config, losses, time.perf_counter() - started, place.world)
            if place.main:
                _end_epoch(run, entry, out, config, val_cases, loss_fn, torch_device, writer)
            if place.world > 1:
                dist.barrier()
    if writer:
        writer.close()
        save_learning_curves(read_history(out), out / "curves.png", title=str(out.name))
    return entry


def _tensorboard(out: Path, purge_step: int):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(out / "tensorboard", purge_step=purge_step)


def _progress_bar(show: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[status]}"), disable=not show)  # fmt: skip


def _epoch_entry(run: Optimisation, config: RunConfig, losses: list[float], seconds: float, world: int) -> dict:
    """The epoch's line of ``history.jsonl`` (validation adds to it)."""
    steps = config.train.steps_per_epoch
    return {"epoch": run.epoch, "step": run.epoch * steps, "loss/train": float(np.mean(losses)),
            "lr": run.scheduler.get_last_lr()[0], "samples_per_s": steps * config.train.batch * world / seconds,
            "world_size": world, "step_losses": losses}  # fmt: skip


def _end_epoch(run: Optimisation, entry: dict, out: Path, config: RunConfig, val_cases: list[CachedCase], loss_fn,
               device: torch.device, writer) -> None:  # fmt: skip
    """Validate (every ``validate_every`` epochs and at the last), then history line, best and last checkpoints."""
    last_epoch = run.epoch == config.train.epochs
    if val_cases and (run.epoch % config.train.validate_every == 0 or last_epoch):
        entry.update(validate(run.model, val_cases, config, device))
        entry["loss/val"] = validation_loss(run.model, val_cases, config, loss_fn, device)
        if entry["dice/mean_regions"] > run.best:
            run.best = entry["dice/mean_regions"]
            entry["best"] = True
    state = run.state(config)
    append_history(out / "history.jsonl", entry)  # before the checkpoint: a resume truncates it
    if entry.get("best"):
        save_checkpoint(out / BEST_CHECKPOINT, state)
    save_checkpoint(out / LAST_CHECKPOINT, state)
    _log_scalars(writer, entry)


def load_pretrained(model: UNet3D, source: Path) -> None:
    """Fine-tune from another run (or checkpoint): copy every weight whose name and shape match."""
    path = checkpoint_path(source)
    weights = load_checkpoint(path)["model"]
    own = model.state_dict()
    matching = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise InputError(path, "no weight matches this model's layers", "use a run with the same --width/--depth")
    own.update(matching)
    model.load_state_dict(own)


def _log_scalars(writer, entry: dict) -> None:
    step = entry["step"]
    for key, value in entry.items():
        if key in ("epoch", "step", "best", "step_losses", "world_size"):
            continue
        tag = key if "/" in key else f"train/{key}"
        writer.add_scalar(tag.replace("dice/", "val_dice/"), value, step)
    writer.flush()
