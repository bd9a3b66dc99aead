"""`glioseg crossval`: honest cross-validation of the fold runs of one dataset. Each case is predicted (full
pipeline, on its own grid) by the one run that held it out, then all cases are evaluated together.

Writes ``OUT/predictions/<case_id>.nii.gz`` (in each case's own convention), ``OUT/metrics.csv`` and
``OUT/metrics.json``; cases already predicted are kept, so an interrupted run finishes what is missing.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from glioseg.core.config import PredictConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, claim_folder, make_folder, remove_stale_temporaries
from glioseg.datasets.cases import find_cases, read_case, write_label
from glioseg.datasets.splits import read_splits
from glioseg.evaluation.evaluate import evaluate, write_results
from glioseg.inference.predict import load_model, write_case_index, write_measurements
from glioseg.network.runs import LAST_CHECKPOINT, read_run_config


def held_out_cases(runs: list[Path]) -> dict[str, Path]:
    """Case id -> the run that validated it; refuses runs of different splits or a case held out twice."""
    owner: dict[str, Path] = {}
    splits = None
    for run in runs:
        config = read_run_config(run / "config.json")
        if config.train.fold is None:
            raise InputError(run, "trained on every case (--fold all): it has no held-out cases",
                             "give the runs of folds 0 .. k-1")  # fmt: skip
        these = read_splits(run / "splits.json")
        if splits is not None and these != splits:
            raise InputError(run / "splits.json", "this run's splits differ from the first run's",
                             "cross-validate runs made with the same --folds and --seed")  # fmt: skip
        splits = these
        for case_id in these[config.train.fold]["val"]:
            if case_id in owner:
                raise InputError(run, f"{case_id} is held out by {owner[case_id]} too", "give each fold once")
            owner[case_id] = run
    return owner


def cross_validate(
    runs: list[Path],
    data: Path,
    out: Path,
    settings: PredictConfig = PredictConfig(),
    overwrite: bool = False,
    progress: bool = True,
    partial: bool = False,
) -> tuple[Path, Path]:
    """Predict each held-out case with its fold's run, evaluate them all; returns the metrics CSV and JSON.

    ``OUT/crossval.json`` records the runs and settings: a folder made with others is refused (``overwrite``: its
    predictions are redone). ``partial``: the runs of some folds only (the folds finished so far); only their
    held-out cases are predicted and scored."""
    from rich.progress import track

    runs, data, out = [Path(r) for r in runs], Path(data), Path(out)
    owner = held_out_cases(runs)
    cases = [c for c in find_cases(data) if c.label is not None]
    missing = sorted(c.case_id for c in cases if c.case_id not in owner)
    if partial:
        cases = [c for c in cases if c.case_id in owner]
    elif missing:
        raise InputError(data, f"no run holds out {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}",
                         "give the runs of every fold, trained on this dataset")  # fmt: skip
    runs_used = [{"run": str(run.resolve()), "mtime_ns": (run / LAST_CHECKPOINT).stat().st_mtime_ns} for run in runs]
    record = {"runs": runs_used, "data": str(data.resolve()), "settings": asdict(settings), "partial": partial}
    claim_folder(out / "crossval.json", record, overwrite, "cross-validation predictions")
    predictions = out / "predictions"
    make_folder(predictions)
    remove_stale_temporaries(predictions)
    if overwrite:
        for stale in predictions.glob("*.nii.gz"):
            stale.unlink()
    models = {}
    for files in track(cases, description="cross-validating", disable=not progress):
        mask = predictions / f"{files.case_id}.nii.gz"
        if mask.exists():
            continue
        run = owner[files.case_id]
        models[run] = models.get(run) or load_model(run / LAST_CHECKPOINT)  # not the best: chosen on these cases
        case = read_case(files)
        prediction = models[run].predict(case, settings)
        write_label(mask, prediction.label, case, files.convention)
    write_measurements(predictions, cases, settings)
    write_case_index(predictions, cases, settings)
    with atomic_path(out / "folds.json") as temporary:
        temporary.write_text(json.dumps({c: str(r) for c, r in sorted(owner.items())}, indent=1))
    return write_results(evaluate(predictions, data, case_ids={c.case_id for c in cases}), out / "metrics.csv")
