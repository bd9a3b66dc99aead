"""Training throughput on a GPU (patches/s at 128^3 by default): does mixed precision pay, and does the loader
keep the GPU fed?

Three numbers, one run: (1) the model alone (`glioseg train`'s step on random tensors) with AMP and in
float32, the peer; (2) one loader process (`PatchBatches` with augmentation) on real patches; (3) end to end,
`glioseg.training.loop.train` on real data with ``--workers`` loader processes (samples/s of its last epochs, the first
one warms up and starts the loader processes). Default model (width 16, depth 4, regions head), batch 2.

    python benchmarks/gpu_training.py --data DATASET [--patch 128] [--workers 14] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import RESULTS, SAMPLE, describe  # noqa: E402


def model_alone(config, device: torch.device, amp: bool, steps: int) -> float:
    """Patches/s of training steps on random tensors: the GPU's ceiling, no data loading."""
    amp = amp and device.type == "cuda"  # float16 on CUDA as `glioseg train` (CPU bfloat16: cpu_mixed_precision.py)
    from glioseg.network.unet import UNet3D
    from glioseg.training.loop import make_grad_scaler, make_optimizer, training_step
    from glioseg.training.losses import make_loss

    torch.manual_seed(0)
    model = UNet3D(config.model).to(device)
    optimizer = make_optimizer(model, config)
    loss_fn = make_loss(config.train.loss)
    amp_dtype = torch.float16 if amp else None
    scaler = make_grad_scaler(amp_dtype)
    image = torch.randn(config.train.batch, 4, *config.train.patch, device=device)
    targets = (
        torch.rand(config.train.batch, 3, *config.train.patch, device=device) / 3
    )  # tumour fractions, summing to <= 1

    def step() -> None:
        training_step(model, image, targets, loss_fn, optimizer, scaler, amp_dtype)

    for _ in range(3):  # cuDNN picks its algorithms
        step()
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    return steps * config.train.batch / (time.perf_counter() - start)


def loader_alone(cached, config, steps: int) -> float:
    """Patches/s one loader process delivers (sampling, cropping, augmentation on the CPU)."""
    from glioseg.training.sampling import PatchBatches

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a loader worker runs
    batches = PatchBatches(cached, config.train.patch, config.train.batch, config.train.foreground_fraction, 0, 0)
    batches[0]
    start = time.perf_counter()
    for step in range(1, steps + 1):
        batches[step]
    seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return steps * config.train.batch / seconds


def end_to_end(data: Path, config, device: str, scratch: Path) -> list[float]:
    """Samples/s per epoch of a real `glioseg train` run."""
    from glioseg.network.runs import read_history
    from glioseg.training.loop import train

    train(data, scratch / "run", config, device=device, cache_root=scratch / "cache", progress=False)
    return [entry["samples_per_s"] for entry in read_history(scratch / "run")]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    from glioseg.core.config import ModelConfig, PreprocessConfig, RunConfig, TrainConfig
    from glioseg.datasets.cases import find_cases
    from glioseg.datasets.preprocess import cache_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SAMPLE, help="labelled dataset (default: the BraTS 2018 sample)")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each measurement")
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 2, 1))
    parser.add_argument("--spacing", type=float, default=None, help="resample to this voxel size in mm")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_training.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    spacing = None if args.spacing is None else (args.spacing,) * 3
    config = RunConfig(
        preprocess=PreprocessConfig(spacing_mm=spacing),
        model=ModelConfig(),
        train=TrainConfig(patch=(args.patch,) * 3, batch=args.batch, epochs=3, steps_per_epoch=args.steps,
                          folds=4, fold=0, validate_every=1000, workers=args.workers),
    )  # fmt: skip
    alone = {"amp": model_alone(config, device, True, args.steps), "float32": model_alone(config, device, False, 10)}
    print(f"model alone, patch {args.patch}^3 x {args.batch}: AMP {alone['amp']:.1f} patches/s, "
          f"float32 {alone['float32']:.1f} (AMP / float32 = {alone['amp'] / alone['float32']:.2f})")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        cached = cache_dataset(find_cases(args.data), args.data, Path(scratch) / "cache", config.preprocess, 2, False)
        one_loader = loader_alone(cached, config, max(args.steps // 3, 5))
        print(f"one loader process: {one_loader:.1f} patches/s")
        epochs = end_to_end(args.data, config, args.device, Path(scratch))
    trained = sum(epochs[1:]) / len(epochs[1:])
    print(f"glioseg train, {args.workers} loader processes, AMP: {trained:.1f} patches/s "
          f"({trained / alone['amp']:.0%} of the model alone; per epoch {[round(e, 1) for e in epochs]})")  # fmt: skip
    record = {
        "patch": config.train.patch,
        "batch": args.batch,
        "model": "default UNet3D (width 16, depth 4, regions head)",
        "model_alone_patches_per_s": alone,
        "one_loader_patches_per_s": one_loader,
        "workers": args.workers,
        "train_patches_per_s": trained,
        "train_patches_per_s_per_epoch": epochs,
        "data": args.data.name,
        "spacing_mm": spacing,
        "machine": describe(),
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
