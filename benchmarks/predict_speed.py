"""End-to-end CPU prediction of one full-size real case: glioseg vs nnU-Net v2, same case, same run.

Each tool runs as its own command, NIfTI in and NIfTI out, timed from process start to exit with
`/usr/bin/time` (wall seconds and peak RSS). glioseg: `glioseg predict [RUN] CASE --out DIR` (the shipped
model by default), plain and with `--tta`. nnU-Net: its planner's 3d_fullres network on this sample, with
`nnUNetPredictor` (tile step 0.5, Gaussian), without mirroring and, with `--nnunet-mirror`, with it (slow:
about 8x). The peer runs in `.venv-peers/` (benchmarks/peers/setup.sh); its weights are untrained, which
does not change its speed.

    .venv/bin/python benchmarks/predict_speed.py [--case Brats18_CBICA_ABM_1] [--run RUN] [--nnunet-mirror] [--repeat N]

With OpenVINO installed, ``glioseg --engine openvino`` is timed too (after one untimed run that converts and caches
the networks). ``--repeat N`` runs every tool N times, alternating, and reports the median and the spread.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import PEER_PYTHON, REPO, RESULTS, SAMPLE, describe  # noqa: E402

GLIOSEG = REPO / ".venv" / "bin" / "glioseg"
RUNNER = REPO / "benchmarks" / "peers" / "nnunet_runner.py"


def timed(command: list[str]) -> dict:
    """Wall seconds and peak RSS (GB) of one command, from /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        completed = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command],
                                   capture_output=True, text=True)  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
        seconds, kilobytes = Path(report.name).read_text().split()[-2:]
    return {"seconds": float(seconds), "peak_rss_gb": int(kilobytes) / 1024**2}


def dice_against_truth(mask: Path, case: Path) -> dict[str, float]:
    from glioseg.core.config import EvaluateConfig
    from glioseg.datasets.layouts import locate_case
    from glioseg.evaluation.evaluate import evaluate_case

    truth = locate_case(case)
    scores, _ = evaluate_case(mask, truth, truth.convention, EvaluateConfig())
    return {region: round(scores[region]["dice"], 4) for region in ("WT", "TC", "ET")}


def glioseg_tools(openvino: bool) -> dict[str, list[str]]:
    """glioseg's ways to predict that are timed (each a command's extra arguments)."""
    tools = {"glioseg": [], "glioseg --tta": ["--tta"]}
    if openvino:
        tools["glioseg --engine openvino"] = ["--engine", "openvino"]
    return tools


def summary(runs: list[dict]) -> dict:
    """Median and spread (min, max) of repeated timings; the peak memory of the worst."""
    seconds = sorted(run["seconds"] for run in runs)
    return {"seconds": float(np.median(seconds)), "spread": [seconds[0], seconds[-1]], "runs": seconds,
            "peak_rss_gb": max(run["peak_rss_gb"] for run in runs)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="Brats18_CBICA_ABM_1")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--run", type=Path, help="glioseg run or weights (default: the shipped model)")
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "glioseg-bench-nnunet")
    parser.add_argument("--nnunet-mirror", action="store_true", help="also time nnU-Net with mirroring (slow)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, the tools alternating within each")
    args = parser.parse_args()
    case = args.sample / args.case
    model = [str(args.run)] if args.run else []
    tools = {name: [str(GLIOSEG), "predict", *model, str(case), "--out", "{out}", *extra]
             for name, extra in glioseg_tools(importlib.util.find_spec("openvino") is not None).items()}  # fmt: skip
    if args.peer_python.exists():
        if not (args.work / "nnUNet_results").exists():
            subprocess.run([str(args.peer_python), str(RUNNER), "prepare", str(args.work), str(args.sample)],
                           check=True, capture_output=True)  # fmt: skip
        peer = [str(args.peer_python), str(RUNNER), "predict", str(args.work), str(case), "{out}"]
        tools["nnU-Net v2"] = peer
        if args.nnunet_mirror:
            tools["nnU-Net v2 mirror"] = [*peer, "--mirror"]
    timings: dict[str, list[dict]] = {name: [] for name in tools}
    dice: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        if "glioseg --engine openvino" in tools:  # the first use converts the networks (cached): not timed
            subprocess.run([arg.replace("{out}", f"{scratch}/warm") for arg in tools["glioseg --engine openvino"]],
                           check=True, capture_output=True)  # fmt: skip
        for round_ in range(args.repeat):
            for name, command in tools.items():
                target = Path(scratch) / f"{name.replace(' ', '')}-{round_}"
                timings[name].append(timed([arg.replace("{out}", str(target)) for arg in command]))
                if name.startswith("glioseg"):
                    dice[name] = dice_against_truth(target / f"{args.case}.nii.gz", case)
    results = {name: {**summary(runs), **({"dice": dice[name]} if name in dice else {})}
               for name, runs in timings.items()}  # fmt: skip
    base = results["glioseg"]["seconds"]
    print(f"{args.case}: 240x240x155, 4 modalities, NIfTI in and out, CPU; median of {args.repeat} (min-max)")
    print(f"{'tool':<26} {'seconds':>9} {'min-max':>13} {'x glioseg':>10} {'peak RSS GB':>12}  Dice WT/TC/ET vs expert")
    for name, row in results.items():
        shown = "/".join(f"{v:.3f}" for v in row["dice"].values()) if "dice" in row else "(untrained weights)"
        spread = f"{row['spread'][0]:.1f}-{row['spread'][1]:.1f}"
        print(
            f"{name:<26} {row['seconds']:9.1f} {spread:>13} {row['seconds'] / base:10.2f} {row['peak_rss_gb']:12.2f}"
            f"  {shown}"
        )
    record = {"case": args.case, "model": str(args.run or "shipped"), "repeat": args.repeat, "results": results,
              "machine": describe()}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict_speed.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {RESULTS / 'predict_speed.json'}")


if __name__ == "__main__":
    main()
