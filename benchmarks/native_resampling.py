"""Back to the native grid: probabilities interpolated (linear) then the label taken there, against the label
resampled by nearest neighbour; scored against the expert label on each native grid.

Real BraTS cases made raw as tests/raw_cases.py does (moved, 5 mm FLAIR and T2, sagittal T1, flipped T1Gd),
prepared and segmented once by the shipped model; the prediction then goes onto the native grid of every
sequence both ways. The truth there is the expert label sampled the way the raw images were made (the known
motion, nearest neighbour at each native voxel centre).

    .venv/bin/python benchmarks/native_resampling.py [--cases 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from machine import RESULTS, SAMPLE, describe  # noqa: E402

REGIONS = {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}


def dice(a: np.ndarray, b: np.ndarray, values) -> float:
    a, b = np.isin(a, values), np.isin(b, values)
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=3)
    args = parser.parse_args()
    from glioseg.core.config import PrepareConfig
    from glioseg.core.registration import RigidTransform, resample
    from glioseg.datasets.cases import find_cases, read_case
    from glioseg.datasets.layouts import MODALITIES, locate_case
    from glioseg.inference.native import motion_onto, native_grids, native_label
    from glioseg.inference.postprocess import label_from_probabilities
    from glioseg.inference.predict import load_model
    from glioseg.raw.prepare import nifti_images, prepare_case
    from glioseg.raw.prepared import PreparedFiles
    from raw_cases import CROP, make_raw

    model = load_model()
    head = model.config.model.head
    scores: dict[str, dict[str, list[float]]] = {m: {r: [] for r in REGIONS} for m in ("probabilities", "nearest")}
    rows = []
    for index, files in enumerate(find_cases(SAMPLE)[::4][: args.cases]):
        case = read_case(files)
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            paths, motions = make_raw(case, work, np.random.default_rng(index))
            prepared = prepare_case(nifti_images(paths), work / "prepared", "case", PrepareConfig("none"))
            files = PreparedFiles(prepared.folder)
            ready = read_case(locate_case(prepared.folder))
            prediction = model.predict(ready, keep_probabilities=True)
            label = label_from_probabilities(prediction.probabilities, head).astype(np.float32)
            grids = native_grids(files)
            cropped = case.affine.copy()
            cropped[:3, 3] = case.affine[:3, :3] @ [s.start for s in CROP] + case.affine[:3, 3]
            for role in MODALITIES:
                grid, motion = grids[role], motion_onto(files, role)
                truth = resample(case.label[CROP].astype(np.float32), cropped, grid.shape, grid.affine,
                                 RigidTransform(motions[role], 0, 0, 0), labels=True)  # fmt: skip
                by_probabilities = native_label(prediction.probabilities, ready.affine, grid, motion, head)
                by_nearest = resample(label, ready.affine, grid.shape, grid.affine, motion, labels=True)
                row = {"case": files.case_id, "grid": role}
                for method, found in (("probabilities", by_probabilities), ("nearest", by_nearest)):
                    for region, values in REGIONS.items():
                        value = dice(found, truth, values)
                        scores[method][region].append(value)
                        row[f"{method}_{region}"] = round(value, 4)
                rows.append(row)
                print(row)
    summary = {m: {r: round(float(np.mean(v)), 4) for r, v in regions.items()} for m, regions in scores.items()}
    print(json.dumps(summary, indent=1))
    path = RESULTS / "native_resampling.json"
    path.write_text(json.dumps({"machine": describe(), "summary": summary, "rows": rows}, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
