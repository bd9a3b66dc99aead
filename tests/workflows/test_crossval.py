"""Cross-validation: every case predicted by the fold run that held it out, then all evaluated together."""

import csv
import json
from pathlib import Path

from conftest import PHANTOM_RUN_SHAPE, glioseg_cli
from glioseg.datasets.splits import read_splits


def test_each_case_is_predicted_by_the_run_that_held_it_out(tiny_runs, cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)  # the cohort tiny_runs trains on
    runs = [tiny_runs(k) for k in range(3)]
    result = glioseg_cli("crossval", *runs, "--data", data, "--out", tmp_path / "cv")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "cv" / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len({r["case_id"] for r in rows}) == 6 and len(rows) == 6 * 6
    owners = json.loads((tmp_path / "cv" / "folds.json").read_text())
    for case_id, run in owners.items():
        fold = json.loads((Path(run) / "config.json").read_text())["train"]["fold"]
        assert case_id in read_splits(runs[0] / "splits.json")[fold]["val"]
    summary = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    assert summary["WT"]["dice"]["n"] == 6


def test_missing_or_repeated_folds_are_refused(tiny_runs, cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)
    missing = glioseg_cli("crossval", tiny_runs(0), tiny_runs(1), "--data", data, "--out", tmp_path / "a")
    assert missing.returncode == 2 and "no run holds out" in missing.stderr
    partial = glioseg_cli("crossval", tiny_runs(1), "--data", data, "--out", tmp_path / "a", "--partial")
    assert partial.returncode == 0, partial.stderr
    with open(tmp_path / "a" / "metrics.csv") as stream:
        scored = {row["case_id"] for row in csv.DictReader(stream)}
    assert scored == set(read_splits(tiny_runs(1) / "splits.json")[1]["val"])
    assert {p.name for p in (tmp_path / "a" / "predictions").glob("*.nii.gz")} == {f"{c}.nii.gz" for c in scored}
    twice = glioseg_cli("crossval", tiny_runs(0), tiny_runs(0), "--data", data, "--out", tmp_path / "b")
    assert twice.returncode == 2 and "held out by" in twice.stderr


def test_crossval_records_its_settings_and_refuses_a_mismatch_without_overwrite(tiny_runs, cohort_factory, tmp_path):
    """Like predict.json: a cross-validation folder made with other settings (or runs) is not silently mixed."""
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)
    runs = [tiny_runs(k) for k in range(3)]
    out = tmp_path / "cv"
    assert glioseg_cli("crossval", *runs, "--data", data, "--out", out).returncode == 0
    recorded = json.loads((out / "crossval.json").read_text())
    assert recorded["settings"]["tta"] is False and len(recorded["runs"]) == 3
    before = {p.name: p.stat().st_mtime_ns for p in (out / "predictions").glob("*.nii.gz")}
    again = glioseg_cli("crossval", *runs, "--data", data, "--out", out, "--tta")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "predictions").glob("*.nii.gz")} == before
    replaced = glioseg_cli("crossval", *runs, "--data", data, "--out", out, "--tta", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((out / "crossval.json").read_text())["settings"]["tta"] is True
    assert all(p.stat().st_mtime_ns != before[p.name] for p in (out / "predictions").glob("*.nii.gz"))
