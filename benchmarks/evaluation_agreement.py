"""Does `glioseg evaluate` agree with the official BraTS evaluator (`brats-evaluation`, panoptica), lesion-wise
too, and how much faster is it?

Pairs are built from the real labels of ../shared/data/brats2018-sample: each reference against copies with lesions
shifted, split in two, merged with a new lesion, added, removed, eroded and dilated, plus the empty-mask cases
(nothing predicted, no ET predicted, no ET anywhere). Both tools score the same files under panoptica's rules, for
the groups WT, TC, ET, NETC and SNFH: the whole-image Dice, HD95 and NSD, and the instance (lesion) scores: matched
pairs' mean Dice, HD95 and NSD (``sq_*``), the F1 of the matching (``rq``), panoptic quality (``pq_dsc``) and the
counts. The table lists the largest difference of each, and the seconds per pair of each tool. The official evaluator
runs in the optional peer environment (`benchmarks/peers/setup.sh` makes `.venv-peers/`).

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

from glioseg.core.config import EvaluateConfig
from glioseg.core.labels import BRATS2023, CORE, EDEMA, ENHANCING
from glioseg.datasets.cases import find_cases, read_case
from glioseg.datasets.layouts import CaseFiles
from glioseg.evaluation.evaluate import evaluate_case

REPO = Path(__file__).resolve().parents[1]
GROUPS = {"wt": "WT", "tc": "TC", "et": "ET", "netc": "core", "snfh": "edema"}
"""brats-evaluation's group -> glioseg's row."""
COMPARED = {"dsc": "dice", "hd95": "hd95", "nsd": "nsd", "pq_dsc": "pq_dsc", "sq_dsc": "sq_dsc",
            "sq_hd95": "sq_hd95", "sq_nsd": "sq_nsd", "rq": "rq", "tp": "lesions_tp", "fp": "lesions_fp",
            "fn": "lesions_fn"}  # fmt: skip
"""brats-evaluation's number -> glioseg's column."""


def ball(shape: tuple[int, ...], centre: np.ndarray, radius: float) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((axis - c) ** 2 for axis, c in zip(grid, centre)) <= radius**2


def perturbations(label: np.ndarray, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (prediction, reference)}`` derived from one real label: lesion-level errors and empty-mask cases."""
    tumour = label > 0
    where = np.argwhere(tumour)
    centre = where.mean(0)
    far = np.array([label.shape[0] - 1 - centre[0], centre[1], centre[2]])  # the other hemisphere
    new_lesion = ball(label.shape, far, 6) & ~ndimage.binary_dilation(tumour, iterations=8)
    with_new = np.where(new_lesion, ENHANCING, label).astype(np.uint8)
    with_new[ndimage.binary_dilation(new_lesion, iterations=3) & ~new_lesion & (label == 0)] = EDEMA
    split = label.copy()
    split[int(centre[0]) - 2 : int(centre[0]) + 2] = 0  # a 4-voxel cut through the tumour
    bridge = with_new.copy()
    line = np.linspace(centre, far, 200).round().astype(int)
    for point in line:
        bridge[tuple(slice(p - 1, p + 2) for p in point)] = np.maximum(
            bridge[tuple(slice(p - 1, p + 2) for p in point)], EDEMA
        )
    eroded = np.where(ndimage.binary_erosion(tumour, iterations=2), label, 0).astype(np.uint8)
    dilated = label.copy()
    dilated[ndimage.binary_dilation(tumour, iterations=2) & ~tumour] = EDEMA
    no_et = np.where(label == ENHANCING, CORE, label).astype(np.uint8)
    speckled = label.copy()
    speckled.flat[rng.choice(label.size, 30, replace=False)] = ENHANCING
    return {
        "shifted": (np.roll(label, (3, -2, 1), axis=(0, 1, 2)), label),
        "split": (split, label),
        "merged_with_a_new_lesion": (bridge, with_new),
        "lesion_added": (with_new, label),
        "lesion_removed": (label, with_new),
        "eroded": (eroded, label),
        "dilated": (dilated, label),
        "speckled_false_positives": (speckled, label),
        "no_et_predicted": (no_et, label),
        "nothing_predicted": (np.zeros_like(label), label),
        "both_without_et": (no_et, no_et),
    }


def build_pairs(sample: Path, folder: Path, per_case: int) -> list[dict]:
    """Each case gets ``per_case`` kinds in turn, so that every kind appears on several cases."""
    rng = np.random.default_rng(0)
    pairs = []
    cases = find_cases(sample)
    kinds = None
    for index, files in enumerate(cases):
        label = read_case(files).label
        made = perturbations(label, rng)
        kinds = kinds or list(made)
        image = nib.load(files.label)
        for k in range(per_case):
            name = kinds[(index * per_case + k) % len(kinds)]
            prediction, reference = made[name]
            paths = []
            for role, array in (("prediction", prediction), ("reference", reference)):
                path = folder / f"{files.case_id}_{name}_{role}.nii.gz"
                nib.save(nib.Nifti1Image(BRATS2023.from_internal(array), image.affine, image.header), path)
                paths.append(str(path))
            pairs.append({"id": f"{files.case_id}:{name}", "prediction": paths[0], "reference": paths[1]})
    return pairs


def glioseg_scores(pairs: list[dict]) -> tuple[dict, float]:
    """glioseg's numbers for each pair, as `glioseg evaluate --rules panoptica` computes them (files read included)."""
    scores, start = {}, time.perf_counter()
    for pair in pairs:
        reference = Path(pair["reference"])
        truth = CaseFiles(pair["id"], "brats2023", (), reference, BRATS2023)
        metrics, _ = evaluate_case(Path(pair["prediction"]), truth, BRATS2023, EvaluateConfig(rules="panoptica"))
        scores[pair["id"]] = {group: metrics[row] for group, row in GROUPS.items()}
    return scores, time.perf_counter() - start


def glioseg_lesionwise_seconds(pairs: list[dict], rules: str) -> float:
    """Seconds glioseg takes for the pairs under a year's lesion-wise rules (for the record: no peer to compare)."""
    start = time.perf_counter()
    for pair in pairs:
        truth = CaseFiles(pair["id"], "brats2023", (), Path(pair["reference"]), BRATS2023)
        evaluate_case(Path(pair["prediction"]), truth, BRATS2023, EvaluateConfig(rules=rules))
    return time.perf_counter() - start


def same(a, b) -> bool:
    """Equal, or both undefined (the peer's runner writes NaN as None)."""
    a, b = (math.nan if v is None else float(v) for v in (a, b))
    return (math.isnan(a) and math.isnan(b)) or a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", default=str(REPO.parent / "shared" / "data" / "brats2018-sample"))
    parser.add_argument("--peer-python", default=str(REPO / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--per-case", type=int, default=3, help="perturbations per case (12 cases x 3 = 36 pairs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pairs = build_pairs(Path(args.sample), folder, args.per_case)
        (folder / "pairs.json").write_text(json.dumps(pairs))
        ours, our_seconds = glioseg_scores(pairs)
        runner = REPO / "benchmarks" / "peers" / "brats_eval_runner.py"
        completed = subprocess.run([args.peer_python, str(runner), str(folder / "pairs.json")],
                                   capture_output=True, text=True, check=True)  # fmt: skip
        theirs = json.loads(completed.stdout.strip().splitlines()[-1])
        yearly = {rules: glioseg_lesionwise_seconds(pairs, rules) / len(pairs) for rules in ("brats2023", "brats2024")}
    peer_seconds = theirs.pop("_seconds")
    worst = dict.fromkeys(COMPARED, 0.0)
    differences = []
    for pair in pairs:
        for group in GROUPS:
            mine, official = ours[pair["id"]][group], theirs[pair["id"]][group]
            for theirs_name, our_name in COMPARED.items():
                a, b = mine.get(our_name), official.get(theirs_name)
                if same(a, b):
                    continue
                if theirs_name == "hd95" and b is not None and math.isinf(float(b)) and a == 373.0:
                    continue  # one mask empty: panoptica's infinity is the 373 mm brats-evaluation reports
                gap = abs(float(a) - float(b)) if a is not None and b is not None else math.inf
                worst[theirs_name] = max(worst[theirs_name], gap)
                if gap > (0.01 if "hd95" in theirs_name else 1e-6):
                    differences.append((pair["id"], group, theirs_name, a, b))
    print(f"{len(pairs)} pairs x {len(GROUPS)} groups, panoptica's rules")
    print("largest |difference| per number: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))
    for difference in differences:
        print("DIFFERENT", *difference)
    print(f"seconds per pair: glioseg {our_seconds / len(pairs):.3f}, official {peer_seconds / len(pairs):.3f} "
          f"(ratio {peer_seconds / our_seconds:.1f}x)")  # fmt: skip
    print("glioseg seconds per pair under " + ", ".join(f"{k} {v:.3f}" for k, v in yearly.items()))
    result = {"pairs": len(pairs), "kinds": sorted({p["id"].split(":")[1] for p in pairs}),
              "largest_difference": worst, "differences": differences,
              "seconds_per_pair": {"glioseg": our_seconds / len(pairs), "official": peer_seconds / len(pairs),
                                   **{f"glioseg {k}": v for k, v in yearly.items()}},
              "machine": {"platform": platform.platform(), "python": platform.python_version()}}  # fmt: skip
    out = REPO / "benchmarks" / "results" / "evaluation_agreement.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
