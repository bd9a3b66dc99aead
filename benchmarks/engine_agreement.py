"""Does another engine give the shipped model's labels? Each case predicted by the shipped ensemble with torch and
with another engine (OpenVINO by default), in one process, the two timed: per region the Dice between the two labels,
the change of Dice against the expert label, and the seconds of each.

    .venv/bin/python benchmarks/engine_agreement.py --data DATA [--engine openvino] [--cases N]

DATA: labelled cases (the 28: ``glioseg sample-data DIR --all``). Results in ``results/engine_agreement.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from machine import RESULTS, describe

from glioseg.core.labels import REGION_CLASSES
from glioseg.datasets.cases import find_cases, read_case
from glioseg.evaluation.metrics import dice_from_counts
from glioseg.inference.predict import load_model


def dice(a: np.ndarray, b: np.ndarray) -> float:
    tp = int((a & b).sum())
    return dice_from_counts(tp, int(a.sum()) - tp, int(b.sum()) - tp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--engine", default="openvino")
    parser.add_argument("--cases", type=int, default=None, help="only the first N cases")
    args = parser.parse_args()
    models = {"torch": load_model(None, "cpu"), args.engine: load_model(None, "cpu", engine=args.engine)}
    rows = []
    for files in find_cases(args.data)[: args.cases]:
        case = read_case(files)
        labels, seconds = {}, {}
        for name, model in models.items():
            start = time.perf_counter()
            labels[name] = model.predict(case).label
            seconds[name] = time.perf_counter() - start
        row = {"case_id": files.case_id, "seconds": {k: round(v, 2) for k, v in seconds.items()},
               "voxels_differing": int(np.count_nonzero(labels["torch"] != labels[args.engine]))}  # fmt: skip
        for region, classes in REGION_CLASSES.items():
            torch_mask, other = (np.isin(labels[n], classes) for n in models)
            truth = np.isin(case.label, classes)
            row[f"agreement_{region}"] = round(dice(torch_mask, other), 5)
            row[f"dice_change_{region}"] = round(dice(other, truth) - dice(torch_mask, truth), 5)
        rows.append(row)
        print(json.dumps(row), flush=True)
    total = {name: sum(r["seconds"][name] for r in rows) for name in models}
    summary = {
        "cases": len(rows), "engine": args.engine,
        "max_abs_dice_change": {r: max(abs(row[f"dice_change_{r}"]) for row in rows) for r in REGION_CLASSES},
        "min_agreement": {r: min(row[f"agreement_{r}"] for row in rows) for r in REGION_CLASSES},
        "seconds_total": {k: round(v, 1) for k, v in total.items()},
        "speedup": round(total["torch"] / total[args.engine], 2),
    }  # fmt: skip
    print(json.dumps(summary, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_agreement.json").write_text(json.dumps({"summary": summary, "cases": rows,
                                                                "machine": describe()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
