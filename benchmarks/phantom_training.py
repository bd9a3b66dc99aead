"""What a short CPU training reaches on phantoms: the demo's pipeline (generate, train, predict held-out
phantoms, evaluate) with other settings, so the demo's defaults are chosen by measurement.

Each variant trains from scratch in its own folder (rerunning resumes or reuses it) and is scored on held-out
phantoms of another seed, in the BraTS way (an empty truth scores 1 only if the prediction is empty too).

    .venv/bin/python benchmarks/phantom_training.py --out runs/phantom-training \
        --variant demo '{}' --variant w8-96 '{"shape": [96, 96, 64], "width": 8, "epochs": 60}'

A variant's JSON sets any field of `glioseg.workflows.demo.DemoSettings` (cases, held_out, shape, epochs,
steps_per_epoch, seed, width, patch, batch, foreground_fraction, learning_rate); the rest keep the demo's values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import RESULTS, describe  # noqa: E402

from glioseg.workflows.demo import DemoSettings, run_demo  # noqa: E402


def run_variant(out: Path, overrides: dict) -> dict:
    values = {key: tuple(value) if key in ("shape", "patch") else value for key, value in overrides.items()}
    settings = DemoSettings(**values)
    start = time.perf_counter()
    paths = run_demo(out, settings, progress=False)
    seconds = time.perf_counter() - start
    history = [json.loads(line) for line in (paths["run"] / "history.jsonl").read_text().splitlines()]
    summary = json.loads(paths["summary"].read_text())  # evaluate's own per-structure aggregates
    means = {name: metrics["dice"]["mean"] for name, metrics in summary.items()}
    return {
        "overrides": overrides,
        "held_out_cases": summary["WT"]["dice"]["n"],
        "held_out_dice": means,
        "held_out_mean_wt_tc_et": sum(means[r] for r in ("WT", "TC", "ET")) / 3,
        "validation_mean_wt_tc_et": [h["dice/mean_regions"] for h in history if "dice/mean_regions" in h][-1],
        "training_samples_per_s": sum(h["samples_per_s"] for h in history) / len(history),
        # config written when training starts, last.pt at its end: the training's wall time, validation included
        "training_s": (paths["run"] / "last.pt").stat().st_mtime - (paths["run"] / "config.json").stat().st_mtime,
        "wall_s_this_call": seconds,  # small when an earlier call already trained this variant
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/phantom-training"))
    parser.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True)
    args = parser.parse_args()
    results = {name: run_variant(args.out / name, json.loads(overrides)) for name, overrides in args.variant}
    print("| variant | held-out cases | WT | TC | ET | mean | in-training validation mean | samples/s | training s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        d = r["held_out_dice"]
        print(f"| {name} | {r['held_out_cases']} | {d['WT']:.3f} | {d['TC']:.3f} | {d['ET']:.3f} | "
              f"{r['held_out_mean_wt_tc_et']:.3f} | {r['validation_mean_wt_tc_et']:.3f} | "
              f"{r['training_samples_per_s']:.1f} | {r['training_s']:.0f} |")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "phantom_training.json"
    earlier = json.loads(path.read_text())["variants"] if path.exists() else {}  # variants measured in other calls
    path.write_text(json.dumps({"machine": describe(), "variants": {**earlier, **results}}, indent=2))


if __name__ == "__main__":
    main()
