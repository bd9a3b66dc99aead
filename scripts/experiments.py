"""Model recipes compared fold by fold, each finished fold kept in the repository (docs/model/experiments/).

A recipe is ``docs/model/experiments/<recipe>/recipe.json``: what it changes and why, and the ``glioseg train``
options that make it (the data and the fold are added here). A fold is one unit of work that fits a session:

    fold      train one fold on this machine (resuming a run a session left), then `keep` it
    keep      score a trained fold's last checkpoint on the cases it held out (glioseg crossval --partial), export
              its weights as float16 where the Dice that moves is below .001 (else float32), and commit
              docs/model/experiments/<recipe>/fold<k>/: config.json, splits.json, history.jsonl, curves.png,
              heldout.csv (glioseg crossval's per-case metrics), last.pt and unit.json (where, how long, the command)
    carry     device-carry/ for a GPU machine: the 28 cases and the phantoms packed at 2 mm (glioseg pack, 23 MiB)
              and the one wheel the machine lacks (nibabel); its working tree may carry 64 MiB in all
    gpu       train the folds of one or more recipes at once on a GPU machine from a training pack (glioseg pack),
              and bring back one archive per recipe of the folds' float16 weights and histories, and
              throughput.json (each fold's samples/s: how to size the next call's --jobs and --workers)
    collect   the folds of such an archive, each scored and committed as `keep` does
    missing   a recipe's five kept folds with each sequence left out in turn (glioseg crossval --without): its
              missing-sequences.csv, shown in the summary
    summary   docs/model/experiments/README.md: every recipe beside the others on the same cases (mean with a
              95 % bootstrap interval, lesion-wise, paired difference with the shipped recipe, the five worst
              cases, small enhancing tumour detected)

Every recipe uses the shipped model's split by patient (docs/model/splits_28.json); a fold whose split differs is
refused. The folds of a recipe can be trained at different times, on different machines: `glioseg crossval
docs/model/experiments/<recipe>/fold{0..4} --data DATA --out CV` assembles the 5-fold CV from them.

    .venv/bin/python scripts/experiments.py fold RECIPE K --data DATA28
    .venv/bin/python scripts/experiments.py carry --data DATA28
    (on the GPU machine, device-carry carried) python3 -m pip install -q --no-index --no-deps --target /tmp/site
        device-carry/*.whl && PYTHONPATH=src:/tmp/site python3 scripts/experiments.py gpu --recipes R1 R2 --out $OUT
    .venv/bin/python scripts/experiments.py collect OUT/R1.tar --data DATA28
    .venv/bin/python scripts/experiments.py summary
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from glioseg.inference.review import MEASUREMENTS  # the table's name, as prediction reads it beside a model's runs

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "docs" / "model" / "experiments"
SPLITS = REPO / "docs" / "model" / "splits_28.json"
BASELINE = "shipped-v2"
PHANTOMS = ("--cases", "8", "--shape", "120", "120", "78", "--seed", "0")
"""The 8 phantoms on a 2 mm grid that join every fold's training set (as the shipped recipe's)."""
REGIONS = ("WT", "TC", "ET")
HALF_TOLERANCE = 0.001
SMALL_ET_ML = (0.1, 5.0)
UNIT_FILES = ("config.json", "splits.json", "history.jsonl", "curves.png")


def glioseg(*args, **kwargs) -> None:
    subprocess.run([sys.executable, "-m", "glioseg", *map(str, args)], check=True, **kwargs)


def recipe_options(name: str, experiments: Path = EXPERIMENTS) -> list[str]:
    return json.loads((experiments / name / "recipe.json").read_text())["options"]


def phantoms(root: Path) -> Path:
    """The phantoms' folder, made (or completed, if a run was interrupted) by glioseg synth."""
    folder = root / "phantoms-2mm"
    glioseg("synth", folder, *PHANTOMS)
    return folder


def train_fold(name: str, fold: int, data: Path, runs: Path) -> Path:
    """Train (or resume) fold ``fold`` of recipe ``name`` from the dataset, with the phantoms as extra data."""
    run = runs / name / f"fold{fold}"
    resume = ["--resume"] if (run / "last.pt").exists() else []
    glioseg("train", data, "--out", run, "--fold", fold, *recipe_options(name), "--extra-data", phantoms(runs),
            *resume)  # fmt: skip
    return run


def keep(name: str, fold: int, run: Path, data: Path, where: str, experiments: Path = EXPERIMENTS,
         commit: bool = True, splits: Path = SPLITS) -> Path:  # fmt: skip
    """Score fold ``fold``'s last checkpoint on its held-out cases and keep the unit in the repository."""
    if json.loads((run / "splits.json").read_text()) != json.loads(splits.read_text()):
        sys.exit(f"{run}/splits.json is not the split every recipe uses ({splits}): train on the same cases")
    settings, history = json.loads((run / "config.json").read_text())["train"], _history(run)
    if [entry["epoch"] for entry in history][-1:] != [settings["epochs"]]:
        sys.exit(f"{run} has not finished its {settings['epochs']} epochs: resume it (scripts/experiments.py fold) "
                 "first")  # fmt: skip
    from glioseg.network.runs import export_weights
    from glioseg.workflows.crossval import cross_validate

    unit = experiments / name / f"fold{fold}"
    with tempfile.TemporaryDirectory() as scratch:
        scores = {}
        for weights in ("float32", "float16"):
            slim = Path(scratch) / weights
            slim.mkdir()
            for file in ("config.json", "splits.json"):
                shutil.copy(run / file, slim / file)
            if (run / "last.pt").exists():
                export_weights(run / "last.pt", slim / "last.pt", half=weights == "float16")
            elif weights == "float16":  # trained elsewhere: only its float16 export came back
                shutil.copy(run / "last-float16.pt", slim / "last.pt")
            else:
                continue
            scores[weights], _ = cross_validate([slim], data, Path(scratch) / f"cv-{weights}", progress=False,
                                                partial=True)  # fmt: skip
        change = _largest_dice_change(*scores.values()) if len(scores) == 2 else None
        chosen = "float16" if change is None or change < HALF_TOLERANCE else "float32"
        unit.mkdir(parents=True, exist_ok=True)
        for file in UNIT_FILES:
            if (run / file).exists():
                shutil.copy(run / file, unit / file)
        shutil.copy(Path(scratch) / chosen / "last.pt", unit / "last.pt")
        shutil.copy(scores[chosen], unit / "heldout.csv")
    steps, batch = settings["steps_per_epoch"], settings["batch"]
    record = {
        "recipe": name, "fold": fold, "trained_on": where,
        "training_minutes": round(sum(steps * batch / e["samples_per_s"] for e in history) / 60, 1),  # no validation
        "command": ["glioseg", "train", "DATA", "--fold", str(fold), *recipe_options(name, experiments),
                    "--extra-data", "PHANTOMS"],
        "weights": chosen, "float16_largest_dice_change": change, "kept": _now(),
    }  # fmt: skip
    (unit / "unit.json").write_text(json.dumps(record, indent=1) + "\n")
    if commit:
        subprocess.run(["git", "add", unit], cwd=REPO, check=True)
        message = f"Experiment {name}: fold {fold} kept ({where}; held-out Dice {_mean_dice(unit / 'heldout.csv')})"
        subprocess.run(["git", "commit", "-q", "-m", message, "--", unit], cwd=REPO, check=True)
    return unit


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_scores(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """``{case: {structure: {column: value}}}`` of a crossval metrics CSV."""
    scores: dict = {}
    with open(path) as stream:
        for row in csv.DictReader(stream):
            values = {k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()
                      if k not in ("case_id", "structure")}  # fmt: skip
            scores.setdefault(row["case_id"], {})[row["structure"]] = values
    return scores


def _largest_dice_change(first: Path, second: Path) -> float:
    a, b = read_scores(first), read_scores(second)
    return max(abs(a[c][r]["dice"] - b[c][r]["dice"]) for c in a for r in REGIONS)


def _mean_dice(path: Path) -> str:
    scores = read_scores(path)
    return " ".join(f"{r} {np.mean([s[r]['dice'] for s in scores.values()]):.3f}" for r in REGIONS)


# ---- GPU ------------------------------------------------------------------------------------------------

CARRY = REPO / "device-carry"
PACK = CARRY / "brats28-2mm"
WHEELS = ("nibabel==5.4.2",)
"""What the GPU machine's image lacks for training and export (it has torch, numpy, scipy, rich, typer, matplotlib
and tensorboard); nibabel is pure Python."""


def carry(data: Path, runs: Path) -> Path:
    """``device-carry/``: the pack (2 mm, the 28 cases and the 8 phantoms) and the wheels, made once."""
    if not PACK.exists():
        glioseg("pack", data, "--out", PACK, "--spacing", "2", "2", "2", "--extra-data", phantoms(runs))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", CARRY,
                    *WHEELS], check=True)  # fmt: skip
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    tree = sum((REPO / name).stat().st_size for name in tracked.decode().split("\0") if name and
               (REPO / name).is_file())  # fmt: skip
    carried = sum(path.stat().st_size for path in CARRY.rglob("*") if path.is_file())
    print(f"{CARRY}: {carried / 2**20:.1f} MiB, with the tracked tree {(tree + carried) / 2**20:.1f} MiB of 64")
    return CARRY


def gpu(pack: Path, recipes: list[str], folds: list[int], out: Path, jobs: int, workers: int, device: str,
        experiments: Path = EXPERIMENTS) -> list[Path]:  # fmt: skip
    """Train every (recipe, fold) from ``pack``, ``jobs`` at a time on one device; one archive per recipe of
    each fold's float16 export, config, splits, history and curves (what `collect` needs), and a log per run."""
    from glioseg.datasets.packs import open_pack
    from glioseg.network.runs import export_weights

    runs = out / "runs"
    started = time.perf_counter()
    archiving = threading.Lock()

    def one(job: tuple[str, int]) -> None:
        name, fold = job
        run = runs / name / f"fold{fold}"
        run.parent.mkdir(parents=True, exist_ok=True)
        log = out / f"{name}-fold{fold}.log"
        try:
            with open(log, "w") as stream:
                glioseg("train", pack, "--out", run, "--fold", fold, *recipe_options(name, experiments), "--device",
                        device, "--workers", workers, "--cache", out / "cache", stdout=stream,
                        stderr=subprocess.STDOUT)  # fmt: skip
        except subprocess.CalledProcessError:
            print(f"{name} fold {fold} failed: {log}\n{log.read_text()[-2000:]}")  # the other folds go on
            return
        export_weights(run / "last.pt", run / "last-float16.pt", half=True)
        with archiving, tarfile.open(out / f"{name}.tar", "a") as tar:  # kept at once: a call cut off at its
            for file in (*UNIT_FILES, "last-float16.pt"):  # time limit still brings back the folds that finished
                if (run / file).exists():
                    tar.add(run / file, arcname=f"{name}/fold{fold}/{file}")

    open_pack(pack, out / "cache")  # unpacked once, before the trainings that read it start together
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, [(name, fold) for name in recipes for fold in folds]))
    archives = [out / f"{name}.tar" for name in recipes if (out / f"{name}.tar").exists()]
    minutes = (time.perf_counter() - started) / 60
    throughput = {"minutes": round(minutes, 2), "jobs": jobs, "workers": workers, "samples_per_s": {
        f"{name}/fold{fold}": [round(entry["samples_per_s"], 1) for entry in _history(runs / name / f"fold{fold}")]
        for name in recipes for fold in folds}}  # fmt: skip
    (out / "throughput.json").write_text(json.dumps(throughput, indent=1))  # how to size the next call's jobs
    print(f"{len(recipes)} recipes x {len(folds)} folds in {minutes:.1f} min")
    return archives


def _history(run: Path) -> list[dict]:
    path = run / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def collect(archive: Path, data: Path, runs: Path, where: str, experiments: Path = EXPERIMENTS,
            commit: bool = True, splits: Path = SPLITS) -> list[Path]:  # fmt: skip
    """Each fold of a `gpu` archive scored and kept (float16, as it came back)."""
    with tarfile.open(archive) as tar:
        tar.extractall(runs, filter="data")
        folders = sorted({Path(member.name).parent for member in tar.getmembers() if member.isfile()})
    units = []
    for folder in folders:
        name, fold = folder.parent.name, int(folder.name.removeprefix("fold"))
        units.append(keep(name, fold, runs / folder, data, where, experiments, commit, splits))
    return units


# ---- missing sequences ----------------------------------------------------------------------------------


def missing(name: str, data: Path, runs: Path, experiments: Path = EXPERIMENTS,
            sequences: tuple[str, ...] | None = None, partial: bool = False) -> Path:  # fmt: skip
    """A recipe's kept folds (all of them; ``partial``: those kept so far) on their held-out cases with each sequence
    left out in turn (glioseg crossval --without S): ``<recipe>/missing-sequences.csv``, one row per sequence left out
    and region, beside all four (its ``cases`` column says on how many)."""
    from glioseg.core.config import MODALITIES

    folds = sorted((experiments / name).glob("fold*/last.pt"))
    expected = json.loads((folds[0].parent / "config.json").read_text())["train"]["folds"] if folds else 5
    if not folds or (len(folds) != expected and not partial):
        sys.exit(f"{name} has {len(folds)} kept folds of {expected}: a missing-sequence table needs them all "
                 "(--partial: the kept ones, on the cases they held out)")  # fmt: skip
    rows = []
    for left_out in ("", *(sequences or MODALITIES)):
        if left_out:
            out = runs / name / f"cv-without-{left_out}"
            glioseg("crossval", *(fold.parent for fold in folds), "--data", data, "--out", out, "--without",
                    left_out, *(["--partial"] if partial else []))  # fmt: skip
            scores = read_scores(out / "metrics.csv")
        else:
            scores = recipe_scores(name, experiments)[0]
        found = describe(scores, sorted(scores), np.random.default_rng(0))
        for region in REGIONS:
            row = {"without": left_out or "none", "region": region, "cases": len(scores)}
            for column in ("dice", "lesionwise_dice"):
                mean, low, high = found[f"{region} {column}"]
                row |= {column: round(mean, 4), f"{column}_low": round(low, 4), f"{column}_high": round(high, 4)}
            rows.append(row)
    path = experiments / name / MEASUREMENTS
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def missing_table(path: Path) -> list[str]:
    """The Markdown table of a recipe's missing-sequence CSV."""
    with open(path) as stream:
        rows = list(csv.DictReader(stream))
    lines = ["| without | WT Dice | TC Dice | ET Dice | lesion-wise WT / TC / ET |", "| --- | --- | --- | --- | --- |"]
    for left_out in dict.fromkeys(row["without"] for row in rows):
        by_region = {row["region"]: row for row in rows if row["without"] == left_out}
        cells = [f"{float(by_region[r]['dice']):.3f} ({float(by_region[r]['dice_low']):.3f}-"
                 f"{float(by_region[r]['dice_high']):.3f})" for r in REGIONS]  # fmt: skip
        lesionwise = " / ".join(f"{float(by_region[r]['lesionwise_dice']):.3f}" for r in REGIONS)
        lines.append(f"| {left_out} | " + " | ".join(cells) + f" | {lesionwise} |")
    return lines


# ---- summary --------------------------------------------------------------------------------------------


def recipe_scores(name: str, experiments: Path = EXPERIMENTS) -> tuple[dict, list[int]]:
    """The held-out scores of every fold a recipe has kept, and which folds."""
    scores, folds = {}, []
    for unit in sorted((experiments / name).glob("fold*/heldout.csv")):
        scores.update(read_scores(unit))
        folds.append(int(unit.parent.name.removeprefix("fold")))
    return scores, folds


def describe(scores: dict, cases: list[str], rng: np.random.Generator) -> dict:
    """Means with 95 % bootstrap intervals over ``cases``, the worst five, small enhancing tumour detected."""
    from glioseg.evaluation.evaluate import bootstrap_interval

    result: dict = {"cases": len(cases)}
    for column in ("dice", "lesionwise_dice"):
        for region in REGIONS:
            values = np.array([scores[c][region][column] for c in cases])
            values = values[~np.isnan(values)]
            result[f"{region} {column}"] = (float(values.mean()), *bootstrap_interval(values, rng))
    mean_dice = {c: np.mean([scores[c][r]["dice"] for r in REGIONS]) for c in cases}
    result["worst"] = [(c, *(scores[c][r]["dice"] for r in REGIONS)) for c in sorted(cases, key=mean_dice.get)[:5]]
    small = [c for c in cases if SMALL_ET_ML[0] <= scores[c]["ET"]["volume_true_ml"] <= SMALL_ET_ML[1]]
    result["small_et"] = (sum(scores[c]["ET"]["dice"] > 0 for c in small), len(small))
    return result


def summary(experiments: Path = EXPERIMENTS) -> Path:
    from glioseg.evaluation.evaluate import bootstrap_interval

    names = sorted(p.parent.name for p in experiments.glob("*/recipe.json"))
    baseline, _ = recipe_scores(BASELINE, experiments)
    lines = [
        "# Model recipes, fold by fold",
        "",
        "Written by `.venv/bin/python scripts/experiments.py summary` from the folds kept here (each fold's",
        "`heldout.csv`: its last checkpoint on the cases it held out, the shipped model's split by patient). A recipe",
        "with fewer than five folds is compared with the shipped recipe on the same cases only; Δ is the paired",
        "difference of mean Dice (recipe − shipped) with its 95 % bootstrap interval. Small ET: of the cases whose",
        f"expert enhancing tumour is {SMALL_ET_ML[0]}-{SMALL_ET_ML[1]} mL, those where the predicted ET overlaps it.",
        "",
        "A fold is a unit of work: `scripts/experiments.py fold RECIPE K --data DATA28` trains it on this machine and",
        "commits `RECIPE/foldK/` (config, history, curves, held-out scores, float16 weights where Dice moves < .001);",
        "on a GPU machine, `scripts/experiments.py carry` then `gpu` (the script's docstring has the commands) trains",
        "several recipes' folds at once and `collect` keeps each. `glioseg crossval RECIPE/fold0 ... RECIPE/fold4",
        "--data DATA28 --out CV` assembles a recipe's CV from its kept folds. A GPU machine's working tree holds",
        "64 MiB: the tracked tree, the 23 MiB pack and a wheel; keep weights only for recipes still in contention.",
        "",
        "| recipe | folds | cases | WT Dice | TC Dice | ET Dice | lesion-wise WT / TC / ET | Δ WT | Δ TC | Δ ET "
        "| small ET found |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    details = []
    for name in names:
        scores, folds = recipe_scores(name, experiments)
        if not scores:
            lines.append(f"| {name} | none yet | | | | | | | | | |")
            continue
        cases = sorted(scores)
        rng = np.random.default_rng(0)
        found = describe(scores, cases, rng)
        deltas = []
        for region in REGIONS:
            shared = [c for c in cases if c in baseline]
            if name == BASELINE or not shared:
                deltas.append("")
                continue
            paired = np.array([scores[c][region]["dice"] - baseline[c][region]["dice"] for c in shared])
            low, high = bootstrap_interval(paired, rng)
            deltas.append(f"{paired.mean():+.3f} ({low:+.3f} to {high:+.3f})")
        cells = [f"{found[f'{r} dice'][0]:.3f} ({found[f'{r} dice'][1]:.3f}-{found[f'{r} dice'][2]:.3f})"
                 for r in REGIONS]  # fmt: skip
        lesionwise = " / ".join(f"{found[f'{r} lesionwise_dice'][0]:.3f}" for r in REGIONS)
        lines.append(f"| {name} | {','.join(map(str, folds))} | {len(cases)} | " + " | ".join(cells)
                     + f" | {lesionwise} | " + " | ".join(deltas) + f" | {found['small_et'][0]} of "
                     f"{found['small_et'][1]} |")  # fmt: skip
        about = json.loads((experiments / name / "recipe.json").read_text())["about"]
        worst = ", ".join(f"{c} ({wt:.2f}/{tc:.2f}/{et:.2f})" for c, wt, tc, et in found["worst"])
        details += [f"## {name}", "", about, "", f"Options: `{' '.join(recipe_options(name, experiments))}`", "",
                    f"Five worst (WT/TC/ET Dice): {worst}.", ""]  # fmt: skip
        if (experiments / name / MEASUREMENTS).exists():
            details += ["A sequence missing (each case by the fold that held it out, that sequence set to zero; "
                        f"`scripts/experiments.py missing {name}`):", "",
                        *missing_table(experiments / name / MEASUREMENTS), ""]  # fmt: skip
    out = experiments / "README.md"
    out.write_text("\n".join([*lines, "", *details]).rstrip() + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fold = commands.add_parser("fold", help="train one fold here, then keep it")
    fold.add_argument("recipe")
    fold.add_argument("fold", type=int)
    fold.add_argument("--data", type=Path, required=True, help="the 28 real cases")
    fold.add_argument("--runs", type=Path, default=REPO / "runs" / "experiments")
    kept = commands.add_parser("keep", help="score and commit a trained fold")
    kept.add_argument("recipe")
    kept.add_argument("fold", type=int)
    kept.add_argument("--run", type=Path, required=True)
    kept.add_argument("--data", type=Path, required=True)
    kept.add_argument("--where", default=f"{os.cpu_count()} CPU cores")
    on_gpu = commands.add_parser("gpu", help="train recipes' folds on a GPU machine from a pack")
    on_gpu.add_argument("--pack", type=Path, default=PACK)
    on_gpu.add_argument("--recipes", nargs="+", required=True)
    on_gpu.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    on_gpu.add_argument("--out", type=Path, required=True)
    on_gpu.add_argument("--jobs", type=int, default=5, help="trainings at once on the one GPU")
    on_gpu.add_argument("--workers", type=int, default=2, help="loader processes per training")
    on_gpu.add_argument("--device", default="cuda")
    on_gpu.add_argument("--experiments", type=Path, default=EXPERIMENTS)
    gathered = commands.add_parser("collect", help="score and commit the folds of a gpu archive")
    gathered.add_argument("archive", type=Path)
    gathered.add_argument("--data", type=Path, required=True)
    gathered.add_argument("--runs", type=Path, default=REPO / "runs" / "experiments")
    gathered.add_argument("--where", default="1 GPU")
    carried = commands.add_parser("carry", help="make device-carry/ (pack and wheels) for a GPU machine")
    carried.add_argument("--data", type=Path, required=True)
    carried.add_argument("--runs", type=Path, default=REPO / "runs" / "experiments")
    absent = commands.add_parser("missing", help="a recipe's CV with each sequence left out in turn")
    absent.add_argument("recipe")
    absent.add_argument("--data", type=Path, required=True)
    absent.add_argument("--runs", type=Path, default=REPO / "runs" / "experiments")
    absent.add_argument("--partial", action="store_true", help="the folds kept so far, on the cases they held out")
    commands.add_parser("summary", help="write docs/model/experiments/README.md")
    args = parser.parse_args()
    if args.command == "fold":
        run = train_fold(args.recipe, args.fold, args.data, args.runs)
        print(keep(args.recipe, args.fold, run, args.data, f"{os.cpu_count()} CPU cores"))
    elif args.command == "keep":
        print(keep(args.recipe, args.fold, args.run, args.data, args.where))
    elif args.command == "gpu":
        print(*gpu(args.pack, args.recipes, args.folds, args.out, args.jobs, args.workers, args.device,
                   args.experiments))  # fmt: skip
    elif args.command == "missing":
        print(missing(args.recipe, args.data, args.runs, partial=args.partial))
    elif args.command == "carry":
        carry(args.data, args.runs)
    elif args.command == "collect":
        print(*collect(args.archive, args.data, args.runs, args.where))
    else:
        print(summary())


if __name__ == "__main__":
    main()
