"""Two measurements that choose defaults: ONNX Runtime vs eager torch for prediction, and whether the training
loader (with augmentation) keeps the model fed on the CPU.

Engines: the sliding window of one full real case, same model and settings, median of 3 runs each.
Loader: batches/s that `PatchBatches` delivers in the main process (what one loader worker does) vs batches/s
one training step (forward, backward, AdamW) consumes, with the shipped model's patch and batch.

    .venv/bin/python benchmarks/engines_and_loader.py [--run RUN] [--case Brats18_CBICA_ABM_1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import RESULTS, SAMPLE, describe  # noqa: E402


def engines(run: Path | None, case_path: Path) -> dict:
    from glioseg.datasets.cases import read_case
    from glioseg.inference.predict import SHIPPED_MODELS, load_model
    from glioseg.network.runs import export_weights

    case = read_case(case_path)
    with tempfile.TemporaryDirectory() as scratch:
        weights = Path(scratch) / "model.pt"
        export_weights(run or SHIPPED_MODELS[0], weights, onnx=True)
        result = {}
        for engine in ("torch", "onnx"):
            model = load_model(weights, "cpu", engine)
            seconds = []
            for _ in range(4):
                timings: dict[str, float] = {}
                model.predict(case, timings=timings)
                seconds.append(timings["sliding window"])
            result[engine] = statistics.median(seconds[1:])  # the first run warms up
    return result


def loader_vs_model(run: Path | None, steps: int = 20) -> dict:
    from glioseg.datasets.cases import find_cases
    from glioseg.datasets.preprocess import cache_dataset
    from glioseg.inference.predict import load_model
    from glioseg.network.unet import UNet3D
    from glioseg.training.loop import make_optimizer
    from glioseg.training.losses import deep_supervision_loss, make_loss
    from glioseg.training.sampling import PatchBatches

    config = load_model(run, "cpu").config
    with tempfile.TemporaryDirectory() as scratch:
        cached = cache_dataset(find_cases(SAMPLE), SAMPLE, Path(scratch), config.preprocess, 2, False)
        batches = PatchBatches(cached, config.train.patch, config.train.batch, config.train.foreground_fraction, 0, 0,
                               augment=True)  # fmt: skip
        batches[0]
        start = time.perf_counter()
        made = [batches[step] for step in range(1, steps + 1)]
        loader = steps / (time.perf_counter() - start)
    model = UNet3D(config.model)
    optimizer = make_optimizer(model, config)
    loss_fn = make_loss(config.train.loss)

    def step(batch):
        outputs = model(batch["image"])
        loss = deep_supervision_loss(loss_fn, outputs, batch["targets"]) if isinstance(outputs, list) else loss_fn(
            outputs, batch["targets"])  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(made[0])
    start = time.perf_counter()
    for batch in made[1:]:
        step(batch)
    consumed = (steps - 1) / (time.perf_counter() - start)
    return {"loader_batches_per_s": loader, "model_batches_per_s": consumed, "batch": config.train.batch,
            "patch": list(config.train.patch), "ratio": loader / consumed}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="Brats18_CBICA_ABM_1")
    parser.add_argument("--run", type=Path, help="glioseg run (default: the shipped model)")
    args = parser.parse_args()
    timing = engines(args.run, SAMPLE / args.case)
    feeding = loader_vs_model(args.run)
    print(f"sliding window of {args.case}: torch {timing['torch']:.2f} s, ONNX Runtime {timing['onnx']:.2f} s "
          f"(ONNX / torch = {timing['onnx'] / timing['torch']:.2f})")  # fmt: skip
    print(f"training on the CPU, patch {feeding['patch']} x {feeding['batch']}: loader "
          f"{feeding['loader_batches_per_s']:.1f} batches/s (one process), model {feeding['model_batches_per_s']:.2f} "
          f"batches/s: the loader is {feeding['ratio']:.1f}x faster")  # fmt: skip
    record = {"engines_seconds": timing, "loader": feeding, "threads": torch.get_num_threads(), "machine": describe()}
    (RESULTS / "engines_and_loader.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {RESULTS / 'engines_and_loader.json'}")


if __name__ == "__main__":
    main()
