"""scripts/experiments.py, the recipe protocol, with tiny settings on the CPU: the GPU path trains folds from a
pack and brings back archives; each fold is scored on its held-out cases and kept; the kept folds assemble into the
same cross-validation as `glioseg crossval` of them; the summary sets recipes side by side."""

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from conftest import PHANTOM_RUN_SHAPE, glioseg_cli

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "experiments.py"
TINY = ["--folds", "2", "--epochs", "1", "--steps-per-epoch", "2", "--patch", "16", "16", "16", "--width", "4",
        "--depth", "3"]  # fmt: skip


def load_script():
    spec = importlib.util.spec_from_file_location("experiments", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_folds_come_back_scored_and_assemble_into_the_cross_validation(cohort_factory, tmp_path):
    experiments = load_script()
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)
    pack = tmp_path / "data.pack"
    packed = glioseg_cli("pack", data, "--out", pack, "--cache", tmp_path / "cache")
    assert packed.returncode == 0, packed.stderr
    recipes = tmp_path / "experiments"
    for name, head in (("classes", ["--head", "classes", "--loss", "dice_ce"]), ("regions", [])):
        (recipes / name).mkdir(parents=True)
        (recipes / name / "recipe.json").write_text(json.dumps({"about": f"{name} head", "options": TINY + head}))

    archives = experiments.gpu(pack, ["classes", "regions"], [0, 1], tmp_path / "out", jobs=2, workers=0,
                               device="cpu", experiments=recipes)  # fmt: skip
    assert [a.name for a in archives] == ["classes.tar", "regions.tar"]
    throughput = json.loads((tmp_path / "out" / "throughput.json").read_text())
    assert len(throughput["samples_per_s"]["regions/fold1"]) == 1 and throughput["jobs"] == 2
    splits = tmp_path / "out" / "runs" / "classes" / "fold0" / "splits.json"
    for archive in archives:
        units = experiments.collect(archive, data, tmp_path / "runs", "test CPU", recipes, commit=False,
                                    splits=splits)  # fmt: skip
        assert [u.name for u in units] == ["fold0", "fold1"]
    unfinished = tmp_path / "unfinished"
    shutil.copytree(tmp_path / "out" / "runs" / "regions" / "fold0", unfinished)
    (unfinished / "history.jsonl").write_text("")  # a run cut off before its last epoch is never kept
    with pytest.raises(SystemExit, match="has not finished"):
        experiments.keep("regions", 0, unfinished, data, "here", recipes, commit=False, splits=splits)
    unit = recipes / "regions" / "fold1"
    assert {p.name for p in unit.iterdir()} >= {"config.json", "splits.json", "history.jsonl", "last.pt",
                                                 "heldout.csv", "unit.json"}  # fmt: skip
    record = json.loads((unit / "unit.json").read_text())
    assert record["weights"] == "float16" and record["trained_on"] == "test CPU"
    held_out = set(json.loads(splits.read_text())[1]["val"])
    with open(unit / "heldout.csv") as stream:
        assert {row["case_id"] for row in csv.DictReader(stream)} == held_out

    folds = [recipes / "regions" / f"fold{k}" for k in range(2)]
    assembled = glioseg_cli("crossval", *folds, "--data", data, "--out", tmp_path / "cv")
    assert assembled.returncode == 0, assembled.stderr
    kept = sorted(line for fold in folds for line in (fold / "heldout.csv").read_text().splitlines()[1:])
    assert sorted((tmp_path / "cv" / "metrics.csv").read_text().splitlines()[1:]) == kept

    table = experiments.missing("regions", data, tmp_path / "runs", recipes, sequences=("T1Gd",))
    with open(table) as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["without"], row["region"]) for row in rows] == [(w, r) for w in ("none", "T1Gd") for r in
                                                                  ("WT", "TC", "ET")]  # fmt: skip
    mean_wt = sum(score["WT"]["dice"] for score in experiments.recipe_scores("regions", recipes)[0].values()) / 6
    assert float(rows[0]["dice"]) == round(mean_wt, 4)
    assert json.loads((tmp_path / "runs" / "regions" / "cv-without-T1Gd" / "crossval.json").read_text())[
        "settings"]["without"] == ["T1Gd"]  # fmt: skip

    experiments.BASELINE = "classes"  # the tiny recipes' baseline
    table = experiments.summary(recipes).read_text()
    rows = [line for line in table.splitlines() if line.startswith("| classes") or line.startswith("| regions")]
    assert rows[0].startswith("| classes | 0,1 | 6 |") and rows[1].startswith("| regions | 0,1 | 6 |")
    assert "(" in rows[1].split("|")[8]  # a paired difference with its interval
    assert "## regions" in table and "Five worst" in table and "| T1Gd |" in table
