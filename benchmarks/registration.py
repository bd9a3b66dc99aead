"""Rigid registration settings: seconds and error against the known motion, on real cases made raw.

Real BraTS cases made raw the way tests/raw_cases.py does (each of FLAIR, T1, T2 moved by its own rigid motion of up
to 15 degrees and 20 mm; FLAIR and T2 at 0.9 x 0.9 x 5 mm, T1 sagittal; the whole 240 x 240 x 155 field of view).
Each sequence is registered onto the T1Gd resampled to 1 mm (what ``glioseg prepare`` does) with each setting; the
error is the distance between where the found and the true motion carry the brain's points (every 500th voxel of
the T1Gd's brain), mean and maximum, in mm.

    .venv/bin/python benchmarks/registration.py [--cases 4] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from machine import RESULTS, SAMPLE, describe  # noqa: E402

FULL_FIELD = (slice(0, 240), slice(0, 240), slice(0, 155))
SETTINGS = {  # name: (pyramid, sampling per level)
    "pyramid 4-2-1, 2 % each level": ((4, 2, 1), (0.02, 0.02, 0.02)),
    "pyramid 4-2, 50 / 10 %": ((4, 2), (0.5, 0.10)),
    "pyramid 4-2, 50 / 5 %": ((4, 2), (0.5, 0.05)),
}
RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


def registrations(case_files, seed: int, work: Path) -> list[dict]:
    import SimpleITK as sitk

    from glioseg.core.registration import RigidTransform, register_rigid, resample
    from glioseg.datasets.cases import read_case
    from glioseg.raw.prepare import reference_grid
    from raw_cases import make_raw

    paths, motions = make_raw(read_case(case_files), work, np.random.default_rng(seed), crop=FULL_FIELD)
    canonical = {role: nib.as_closest_canonical(nib.load(path)) for role, path in paths.items()}
    shape, affine = reference_grid(canonical["T1Gd"])
    identity = RigidTransform(sitk.Euler3DTransform(), 0, 0, 0)
    fixed = resample(np.asarray(canonical["T1Gd"].dataobj, np.float32), canonical["T1Gd"].affine, shape, affine,
                     identity, labels=False, sharp=True)  # fmt: skip
    brain = np.argwhere(fixed > 0)[::500]
    points = ((affine[:3, :3] @ brain.T).T + affine[:3, 3]) * RAS_TO_LPS  # ITK's physical space
    rows = []
    for role in ("FLAIR", "T1", "T2"):
        moving = np.asarray(canonical[role].dataobj, np.float32)
        truth = motions[role].GetInverse()  # raw_cases moved the sequence by the motion: the fixed -> moving map
        for name, (pyramid, sampling) in SETTINGS.items():
            start = time.perf_counter()
            found = register_rigid(fixed, affine, moving, canonical[role].affine, pyramid=pyramid, sampling=sampling)
            seconds = time.perf_counter() - start
            errors = [np.linalg.norm(np.subtract(found.transform.TransformPoint(p), truth.TransformPoint(p)))
                      for p in map(tuple, points)]  # fmt: skip
            rows.append({"case": case_files.case_id, "seed": seed, "sequence": role, "setting": name,
                         "seconds": round(seconds, 2), "error_mean_mm": round(float(np.mean(errors)), 3),
                         "error_max_mm": round(float(np.max(errors)), 3)})  # fmt: skip
            print(" | ".join(str(v) for v in rows[-1].values()), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--only", nargs="*", help="these case ids only")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    from glioseg.datasets.cases import find_cases

    rows = []
    chosen = [c for c in find_cases(args.sample) if not args.only or c.case_id in args.only]
    for case_files in chosen[: args.cases]:
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as work:
                rows += registrations(case_files, seed, Path(work))
    print("\n| setting | seconds, median (max) | error mean mm, median (max) | error max mm, max | over 2 mm |")
    print("| --- | --- | --- | --- | --- |")
    for name in SETTINGS:
        chosen = [row for row in rows if row["setting"] == name]
        seconds = [row["seconds"] for row in chosen]
        means = [row["error_mean_mm"] for row in chosen]
        print(
            f"| {name} | {np.median(seconds):.1f} ({max(seconds):.1f}) | {np.median(means):.2f} ({max(means):.2f}) | "
            f"{max(row['error_max_mm'] for row in chosen):.2f} | {sum(m > 2 for m in means)} of {len(chosen)} |"
        )
    (RESULTS / "registration.json").write_text(json.dumps({"rows": rows, "machine": describe()}, indent=1))


if __name__ == "__main__":
    main()
