"""How realistic are glioseg's phantoms? Compare them with the real BraTS 2018 sample.

For each case, every modality is z-scored inside the brain (voxels non-zero in any modality), as
glioseg's preprocessing does; then the median z-score of each compartment (normal brain, edema,
necrotic/non-enhancing core, enhancing tumour) and the compartment volumes (mL) are taken. The table
gives mean +- sd over cases for real and phantom cohorts side by side.

    .venv/bin/python benchmarks/phantom_realism.py [--real ../shared/data/brats2018-sample] [--phantoms 12]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.datasets.cases import find_cases, read_case
from glioseg.datasets.layouts import MODALITIES
from glioseg.datasets.phantoms import make_phantom

COMPARTMENTS = {"normal": 0, "edema": EDEMA, "core": CORE, "enhancing": ENHANCING}


def case_statistics(image: np.ndarray, label: np.ndarray, voxel_ml: float) -> dict:
    """Median z-score per compartment and modality, and compartment volumes, of one case."""
    brain = (image > 0).any(0)
    stats: dict = {
        "volume_ml": {name: float(((label == v) & brain).sum() * voxel_ml) for name, v in COMPARTMENTS.items()}
    }
    stats["volume_ml"]["brain"] = float(brain.sum() * voxel_ml)
    for channel, modality in enumerate(MODALITIES):
        values = image[channel]
        z = (values - values[brain].mean()) / values[brain].std()
        for name, value in COMPARTMENTS.items():
            inside = (label == value) & brain
            if inside.sum() > 100:
                stats.setdefault("median_z", {}).setdefault(name, {})[modality] = float(np.median(z[inside]))
    return stats


def summarise(per_case: list[dict]) -> dict:
    summary: dict = {"median_z": {}, "volume_ml": {}}
    for name in COMPARTMENTS:
        for modality in MODALITIES:
            values = [c["median_z"][name][modality] for c in per_case if name in c.get("median_z", {})]
            summary["median_z"].setdefault(name, {})[modality] = (
                float(np.mean(values)),
                float(np.std(values)),
            )
    for name in [*COMPARTMENTS, "brain"]:
        values = [c["volume_ml"][name] for c in per_case]
        summary["volume_ml"][name] = (
            float(np.median(values)),
            float(np.percentile(values, 25)),
            float(np.percentile(values, 75)),
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", default="../shared/data/brats2018-sample")
    parser.add_argument("--phantoms", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    real = []
    for files in find_cases(args.real):
        case = read_case(files)
        real.append(case_statistics(case.image, case.label, float(np.prod(case.spacing)) / 1000))
    phantoms = []
    for index in range(args.phantoms):
        phantom = make_phantom(index, args.seed)
        phantoms.append(case_statistics(phantom.image, phantom.label, 1e-3))
    result = {"real": summarise(real), "phantom": summarise(phantoms), "cases": [len(real), len(phantoms)]}
    print(f"median z-score per compartment, mean +- sd over cases (real n={len(real)}, phantom n={len(phantoms)})")
    print(f"{'compartment':<11} {'modality':<6} {'real':>14} {'phantom':>14}")
    for name in COMPARTMENTS:
        for modality in MODALITIES:
            r, p = result["real"]["median_z"][name][modality], result["phantom"]["median_z"][name][modality]
            print(f"{name:<11} {modality:<6} {r[0]:+7.2f} +- {r[1]:.2f} {p[0]:+7.2f} +- {p[1]:.2f}")
    print("\nvolume mL, median [IQR]")
    for name in [*COMPARTMENTS, "brain"]:
        r, p = result["real"]["volume_ml"][name], result["phantom"]["volume_ml"][name]
        print(f"{name:<11} real {r[0]:8.1f} [{r[1]:.1f}, {r[2]:.1f}]   phantom {p[0]:8.1f} [{p[1]:.1f}, {p[2]:.1f}]")
    result["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    result["seconds"] = time.time() - start
    out = Path(__file__).parent / "results" / "phantom_realism.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
