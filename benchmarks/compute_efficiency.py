"""Where the time of one full-case prediction goes, and how close the model's compute is to the machine's limit.

The limit is the best conv3d throughput measured here (GFLOP/s of a plain 3x3x3 convolution, in the layer
sizes of the model); the model's FLOPs are counted with torch's FlopCounterMode during the sliding window.
Stages are timed inside one process (after a warm-up run): read NIfTI, preprocess (crop, resample,
z-score), sliding window, postprocess (uncrop, labels, cleaning), write NIfTI.

    .venv/bin/python benchmarks/compute_efficiency.py [--case Brats18_CBICA_ABM_1] [--run RUN]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from machine import RESULTS, SAMPLE, describe  # noqa: E402


@torch.inference_mode()
def conv3d_limit(repeats: int = 3) -> dict:
    """Best GFLOP/s of single 3x3x3 convolutions at the sizes a small U-Net uses."""
    best = {"gflops": 0.0}
    for channels, size in ((16, 96), (32, 48), (64, 24), (128, 12), (32, 64)):
        x = torch.randn(2, channels, size, size, size)
        weight = torch.randn(channels, channels, 3, 3, 3)
        F.conv3d(x, weight, padding=1)
        start = time.perf_counter()
        for _ in range(repeats):
            F.conv3d(x, weight, padding=1)
        seconds = (time.perf_counter() - start) / repeats
        gflops = 2 * channels * channels * 27 * x[0, 0].numel() * 2 / seconds / 1e9
        if gflops > best["gflops"]:
            best = {"gflops": gflops, "channels": channels, "size": size}
    return best


def stages(case_path: Path, run: Path | None) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from glioseg.datasets.cases import read_case, write_label
    from glioseg.inference.predict import load_model

    model = load_model(run, "cpu")
    with tempfile.TemporaryDirectory() as scratch:
        for _attempt in ("warm-up", "timed"):
            times: dict[str, float] = {}  # the timed attempt's own
            clock = time.perf_counter()
            case = read_case(case_path)
            times["read"] = time.perf_counter() - clock
            prediction = model.predict(case, timings=times)
            clock = time.perf_counter()
            write_label(Path(scratch) / "mask.nii.gz", prediction.label, case, case.convention)
            times["write"] = time.perf_counter() - clock
        counter = FlopCounterMode(display=False)
        with counter:
            model.predict(case)
    return {"seconds": times, "model_flops": counter.get_total_flops()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="Brats18_CBICA_ABM_1")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--run", type=Path, help="glioseg run or weights (default: the shipped model)")
    args = parser.parse_args()
    limit = conv3d_limit()
    measured = stages(args.sample / args.case, args.run)
    seconds = measured["seconds"]
    total = sum(seconds.values())
    achieved = measured["model_flops"] / seconds["sliding window"] / 1e9
    print(f"conv3d limit: {limit['gflops']:.1f} GFLOP/s (channels {limit['channels']}, {limit['size']}^3)")
    print(f"model: {measured['model_flops'] / 1e9:.1f} GFLOP per case, "
          f"{achieved:.1f} GFLOP/s = {achieved / limit['gflops']:.0%} of the limit")  # fmt: skip
    print(f"{'stage':<16} {'seconds':>8} {'share':>6}")
    for stage, value in seconds.items():
        print(f"{stage:<16} {value:8.2f} {value / total:6.0%}")
    print(f"{'total':<16} {total:8.2f}; outside the model: {(total - seconds['sliding window']) / total:.0%}")
    record = {"case": args.case, "conv3d_limit": limit, **measured, "achieved_gflops": achieved,
              "fraction_of_limit": achieved / limit["gflops"], "machine": describe()}  # fmt: skip
    (RESULTS / "compute_efficiency.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {RESULTS / 'compute_efficiency.json'}")


if __name__ == "__main__":
    main()
