"""Training steps per second on the CPU in float32 (the peer) and with bfloat16 autocast (what `glioseg train`
uses on a CPU that has bfloat16 natively), same run, for the demo's network and the shipped model's.

The step is `glioseg train`'s own (`glioseg.training.loop.training_step`): forward under autocast, the loss in float32,
backward, gradient clipping, AdamW.
Random inputs: the arithmetic per step does not depend on the data.

    .venv/bin/python benchmarks/cpu_mixed_precision.py [--steps 15]
    ONEDNN_MAX_CPU_ISA=AVX512_CORE .venv/bin/python benchmarks/cpu_mixed_precision.py   # as on a CPU without
        bfloat16 instructions: oneDNN emulates bfloat16 (results in cpu_mixed_precision_AVX512_CORE.json)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import RESULTS, describe  # noqa: E402

from glioseg.core.config import ModelConfig, RunConfig, TrainConfig  # noqa: E402
from glioseg.network.devices import cpu_has_native_bfloat16  # noqa: E402
from glioseg.network.unet import UNet3D  # noqa: E402
from glioseg.training.loop import make_grad_scaler, make_optimizer, training_step  # noqa: E402
from glioseg.training.losses import make_loss  # noqa: E402
from glioseg.workflows.demo import DemoSettings  # noqa: E402

SHIPPED = RunConfig(  # scripts/train-shipped-model.sh
    model=ModelConfig(head="classes", deep_supervision=True),
    train=TrainConfig(patch=(48, 48, 48), batch=2, loss="dice_ce"),
)


def steps_per_second(config: RunConfig, dtype: torch.dtype | None, steps: int) -> float:
    torch.manual_seed(0)
    model = UNet3D(config.model).train()
    optimizer = make_optimizer(model, config)
    loss_fn = make_loss(config.train.loss)
    scaler = make_grad_scaler(dtype)
    image = torch.randn(config.train.batch, 4, *config.train.patch)
    targets = torch.rand(config.train.batch, 3, *config.train.patch) / 3  # tumour fractions, summing to <= 1

    def step() -> None:
        training_step(model, image, targets, loss_fn, optimizer, scaler, dtype)

    for _ in range(3):  # warm-up: oneDNN picks its kernels
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    networks = {"demo (width 8, 32³ x 4)": DemoSettings().run_config(), "shipped (width 16, 48³ x 2)": SHIPPED}
    results = {}
    print(f"native bfloat16 on this CPU: {cpu_has_native_bfloat16()}")
    print("| network | float32 steps/s | bfloat16 steps/s | bfloat16 / float32 |")
    print("| --- | --- | --- | --- |")
    for name, config in networks.items():
        fp32 = steps_per_second(config, None, args.steps)
        bf16 = steps_per_second(config, torch.bfloat16, args.steps)
        results[name] = {"float32_steps_per_s": fp32, "bfloat16_steps_per_s": bf16, "ratio": bf16 / fp32}
        print(f"| {name} | {fp32:.2f} | {bf16:.2f} | {bf16 / fp32:.2f} |")
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    record = {"native_bfloat16": cpu_has_native_bfloat16(), "onednn_max_cpu_isa": isa, "networks": results,
              "machine": describe()}  # fmt: skip
    name = f"cpu_mixed_precision_{isa}.json" if isa else "cpu_mixed_precision.json"
    (RESULTS / name).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
