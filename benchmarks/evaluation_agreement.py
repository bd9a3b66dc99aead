"""Does `glioseg evaluate` agree with the official BraTS evaluator, and how much faster is it?

Pairs are built from the real labels of ../shared/data/brats2018-sample: each reference against a
perturbed copy (shifted, eroded, dilated, boundary noise), plus empty-mask cases (no ET predicted, no ET
anywhere, nothing predicted). Both tools score the same files; the table lists the largest differences of
Dice and HD95 per region, and seconds per pair. The official evaluator runs in the optional peer
environment (`benchmarks/peers/setup.sh` makes `.venv-peers/`).

    benchmarks/peers/setup.sh                       # once
    .venv/bin/python benchmarks/evaluation_agreement.py [--sample ../shared/data/brats2018-sample]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from glioseg.io import find_cases, read_case
from glioseg.labels import BRATS2023, CORE, ENHANCING
from glioseg.metrics import EMPTY_HD95, case_metrics

REPO = Path(__file__).resolve().parents[1]
GROUPS = {"wt": "WT", "tc": "TC", "et": "ET", "netc": "core", "snfh": "edema"}


def perturbations(label: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Predictions derived from a reference: plausible errors and the empty-mask edge cases."""
    tumour = label > 0
    boundary = tumour ^ ndimage.binary_erosion(tumour)
    noisy = label.copy()
    flip = boundary & (rng.random(label.shape) < 0.3)
    noisy[flip] = 0
    eroded = np.where(ndimage.binary_erosion(tumour, iterations=2), label, 0).astype(np.uint8)
    dilated = label.copy()
    ring = ndimage.binary_dilation(tumour, iterations=2) & ~tumour
    dilated[ring] = 1  # edema grows by 2 voxels
    no_et = np.where(label == ENHANCING, CORE, label).astype(np.uint8)
    return {
        "shifted": np.roll(label, (2, -1, 1), axis=(0, 1, 2)),
        "eroded": eroded,
        "dilated": dilated,
        "boundary_noise": noisy,
        "no_et_predicted": no_et,
        "nothing_predicted": np.zeros_like(label),
    }


def build_pairs(sample: Path, folder: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    pairs = []
    for index, files in enumerate(find_cases(sample)):
        case = read_case(files)
        reference_path = folder / f"{files.case_id}_reference.nii.gz"
        image = nib.load(files.label)
        nib.save(nib.Nifti1Image(BRATS2023.from_internal(case.label), image.affine, image.header), reference_path)
        kinds = list(perturbations(case.label, rng).items())
        name, prediction = kinds[index % len(kinds)]  # each case gets one kind; all kinds appear twice
        pairs.append(_pair(folder, files.case_id, name, prediction, case.label, reference_path, image))
        if index == 0:  # a truth without ET against a prediction without ET: both empty for ET
            no_et = np.where(case.label == ENHANCING, CORE, case.label).astype(np.uint8)
            no_et_path = folder / f"{files.case_id}_reference_no_et.nii.gz"
            nib.save(nib.Nifti1Image(BRATS2023.from_internal(no_et), image.affine, image.header), no_et_path)
            pairs.append(_pair(folder, files.case_id, "both_without_et", no_et, no_et, no_et_path, image))
    return pairs


def _pair(folder, case_id, name, prediction, truth, reference_path, image) -> dict:
    path = folder / f"{case_id}_{name}.nii.gz"
    nib.save(nib.Nifti1Image(BRATS2023.from_internal(prediction), image.affine, image.header), path)
    return {"id": f"{case_id}:{name}", "prediction": str(path), "reference": str(reference_path)}


def glioseg_scores(pairs: list[dict]) -> tuple[dict, float]:
    scores, start = {}, time.perf_counter()
    for pair in pairs:
        prediction = nib.load(pair["prediction"])
        truth = BRATS2023.to_internal(np.asarray(nib.load(pair["reference"]).dataobj))
        spacing = tuple(float(z) for z in prediction.header.get_zooms()[:3])
        metrics = case_metrics(BRATS2023.to_internal(np.asarray(prediction.dataobj)), truth, spacing)
        scores[pair["id"]] = {g: metrics[name] for g, name in GROUPS.items()}
    return scores, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", default=str(REPO.parent / "shared" / "data" / "brats2018-sample"))
    parser.add_argument("--peer-python", default=str(REPO / ".venv-peers" / "bin" / "python"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pairs = build_pairs(Path(args.sample), folder)
        (folder / "pairs.json").write_text(json.dumps(pairs))
        ours, our_seconds = glioseg_scores(pairs)
        runner = REPO / "benchmarks" / "peers" / "brats_eval_runner.py"
        completed = subprocess.run([args.peer_python, str(runner), str(folder / "pairs.json")],
                                   capture_output=True, text=True, check=True)  # fmt: skip
        theirs = json.loads(completed.stdout.strip().splitlines()[-1])
    peer_seconds = theirs.pop("_seconds")
    rows, worst = [], {"dice": 0.0, "hd95": 0.0}
    for pair in pairs:
        for group in GROUPS:
            mine, official = ours[pair["id"]][group], theirs[pair["id"]][group]
            row = {"pair": pair["id"], "group": group, "glioseg_dice": mine["dice"], "official_dice": official["dsc"],
                   "glioseg_hd95": mine["hd95"], "official_hd95": official["hd95"]}  # fmt: skip
            rows.append(row)
            if official["dsc"] is not None:
                worst["dice"] = max(worst["dice"], abs(mine["dice"] - official["dsc"]))
            official_hd95 = official["hd95"]
            if official_hd95 is not None and math.isfinite(float(official_hd95)):
                worst["hd95"] = max(worst["hd95"], abs(mine["hd95"] - float(official_hd95)))
            elif mine["hd95"] != EMPTY_HD95 and not (mine["dice"] == 1.0 and mine["hd95"] == 0.0):
                worst["hd95"] = math.inf  # the official says empty/undefined where glioseg measured a distance
    print(f"{len(pairs)} pairs x {len(GROUPS)} groups")
    print(f"{'pair':<40} {'group':<5} {'Dice glioseg':>12} {'official':>9} {'HD95 glioseg':>12} {'official':>9}")
    for row in rows:
        print(f"{row['pair']:<40} {row['group']:<5} {row['glioseg_dice']:12.6f} {_fmt(row['official_dice']):>9} "
              f"{row['glioseg_hd95']:12.3f} {_fmt(row['official_hd95']):>9}")  # fmt: skip
    print(f"\nlargest |difference|: Dice {worst['dice']:.2e}, HD95 {worst['hd95']:.4f} mm (finite official values)")
    print(f"seconds per pair: glioseg {our_seconds / len(pairs):.3f}, official {peer_seconds / len(pairs):.3f} "
          f"(ratio {peer_seconds / our_seconds:.1f}x)")  # fmt: skip
    result = {"pairs": len(pairs), "rows": rows, "largest_difference": worst,
              "seconds_per_pair": {"glioseg": our_seconds / len(pairs), "official": peer_seconds / len(pairs)},
              "machine": {"platform": platform.platform(), "python": platform.python_version()}}  # fmt: skip
    out = REPO / "benchmarks" / "results" / "evaluation_agreement.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out}")


def _fmt(value) -> str:
    return "-" if value is None else f"{float(value):.6f}" if float(value) <= 1 else f"{float(value):.3f}"


if __name__ == "__main__":
    main()
