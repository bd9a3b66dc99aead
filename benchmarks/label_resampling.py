"""How much of each tumour region survives a round trip 1 mm -> 2 mm -> 1 mm of real expert labels.

A network trained at 2 mm can at best reproduce its training targets; prediction brings them back to the 1 mm grid
the way glioseg does (probabilities trilinear, then the class holding most of each voxel). Three ways of making the
2 mm targets, each scored by Dice against the original 1 mm label, per region, mean over cases:

- ``nearest``: each coarse voxel takes one fine voxel (torch ``nearest``: the corner one), glioseg before 2026-12;
- ``fractions argmax``: the one-hot classes resampled trilinearly like the image, then the class holding most
  of each voxel (the hard label glioseg caches for sampling and validation);
- ``fractions``: the same shares kept as they are (what glioseg trains on now).

    .venv/bin/python benchmarks/label_resampling.py ../shared/data/brats2018-sample scratch/brats2018-extra
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glioseg.core.geometry import label_from_fractions, tumour_fractions
from glioseg.datasets.cases import find_cases, read_case
from glioseg.datasets.preprocess import brain_box, resampled_shape
from glioseg.evaluation.metrics import case_metrics

REGIONS = ("WT", "TC", "ET")


def round_trips(label: np.ndarray, spacing: tuple[float, ...], target: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The 1 mm label each method gives back after a trip to ``target`` spacing."""
    size = resampled_shape(label.shape, spacing, target)
    nearest = F.interpolate(torch.from_numpy(label)[None, None].float(), size=size, mode="nearest")[0, 0]
    fractions = tumour_fractions(label, size)

    def back(coarse: torch.Tensor) -> np.ndarray:
        return label_from_fractions(F.interpolate(coarse[None], size=label.shape, mode="trilinear")[0])

    return {
        "nearest": back(tumour_fractions(nearest.numpy().astype(np.uint8))),
        "fractions argmax": back(tumour_fractions(label_from_fractions(fractions))),
        "fractions": back(fractions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", type=Path, nargs="+", help="labelled datasets at 1 mm")
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "label_resampling.json")
    args = parser.parse_args()
    scores: dict[str, list[list[float]]] = {}
    for dataset in args.datasets:
        for files in find_cases(dataset):
            case = read_case(files)
            label = case.label[tuple(slice(a, b) for a, b in brain_box(case.image, 2))]
            for method, back in round_trips(label, case.spacing, (args.spacing,) * 3).items():
                metrics = case_metrics(back, label, distances=False)
                scores.setdefault(method, []).append([metrics[r]["dice"] for r in REGIONS])
    table = {}
    print(f"round trip 1 mm -> {args.spacing} mm -> 1 mm, mean Dice over {len(scores['nearest'])} cases (min)")
    for method, rows in scores.items():
        values = np.array(rows)
        table[method] = {r: {"mean": float(values[:, i].mean()), "min": float(values[:, i].min())}
                         for i, r in enumerate(REGIONS)}  # fmt: skip
        print(f"  {method:17s}" + "".join(f" {r} {values[:, i].mean():.3f} ({values[:, i].min():.3f})"
                                          for i, r in enumerate(REGIONS)))  # fmt: skip
    args.out.write_text(json.dumps({"spacing_mm": args.spacing, "cases": len(scores["nearest"]), **table}, indent=1))


if __name__ == "__main__":
    main()
