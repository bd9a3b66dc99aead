"""Run folders and checkpoints: a model file is read as data only, wherever glioseg takes one, and a checkpoint that
is not what glioseg writes is refused with the file named, before anything is written."""

import json
import os
import random
import shutil

import numpy as np
import pytest
import torch

from conftest import PHANTOM_RUN_SHAPE, assert_clear_error, glioseg_cli, no_outputs
from glioseg.core.errors import InputError
from glioseg.inference.predict import load_model
from glioseg.network.runs import LAST_CHECKPOINT, load_checkpoint
from glioseg.training.loop import _restore_rng, _rng_states


class RunsACommand:
    """A pickle that, loaded by an unpickler that calls what it is told, runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_checkpoint(path, marker):
    """A file that looks like a glioseg checkpoint and carries a command in its weights."""
    torch.save({"version": 1, "config": {}, "model": RunsACommand(marker), "epoch": 1}, path)
    return path


@pytest.fixture
def case(cohort_factory):
    return sorted(p for p in cohort_factory("brats2021", cases=1, shape=PHANTOM_RUN_SHAPE).iterdir() if p.is_dir())[0]


def hostile_run(tiny_runs, folder, marker):
    """A copy of a trained run whose checkpoints carry a command."""
    run = shutil.copytree(tiny_runs(0), folder / "run")
    for name in ("last.pt", "best.pt"):
        if (run / name).exists():
            hostile_checkpoint(run / name, marker)
    return run


ENTRIES = {  # every command that loads a checkpoint: (arguments, given a hostile model file, a run and a case)
    "export": lambda model, run, case, out: ["export", model, "--out", out / "model.pt"],
    "predict a model file": lambda model, run, case, out: ["predict", model, case, "--out", out],
    "predict a run": lambda model, run, case, out: ["predict", run, case, "--out", out],
    "compare": lambda model, run, case, out: ["compare", case, case, "--out", out, "--run", model],
    "serve": lambda model, run, case, out: ["serve", model, "--port", "1"],
}


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_a_model_file_that_runs_code_is_refused_and_leaves_no_trace(tiny_runs, case, tmp_path, entry):
    marker = tmp_path / "ran"
    model = hostile_checkpoint(tmp_path / "model.pt", marker)
    run = hostile_run(tiny_runs, tmp_path, marker)
    out = tmp_path / "out"
    result = glioseg_cli(*ENTRIES[entry](model, run, case, out), timeout=120)
    assert result.returncode == 2 and "refused" in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "posix.system" in " ".join(result.stderr.split())
    assert not marker.exists()  # the command never ran
    assert no_outputs(out)


def test_cross_validating_hostile_runs_runs_nothing(tiny_runs, cohort_factory, tmp_path):
    marker = tmp_path / "ran"
    runs = []
    for fold in range(3):  # one trained run, copied as the three folds of its splits: crossval reads config.json
        run = hostile_run(tiny_runs, tmp_path / f"fold{fold}", marker)
        config = json.loads((run / "config.json").read_text())
        config["train"]["fold"] = fold
        (run / "config.json").write_text(json.dumps(config))
        runs.append(run)
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)  # what the tiny runs trained on
    result = glioseg_cli("crossval", *runs, "--data", data, "--out", tmp_path / "cv")
    assert_clear_error(result, LAST_CHECKPOINT)
    assert "refused" in result.stderr and not marker.exists()
    assert not list((tmp_path / "cv").rglob("*.nii.gz"))


def test_training_from_or_resuming_a_hostile_checkpoint_runs_nothing(tiny_runs, cohort_factory, tmp_path):
    marker = tmp_path / "ran"
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)
    options = ["--cache", tmp_path / "cache", "--folds", "3", "--fold", "0", "--patch", "16", "16", "16", "--width",
               "4", "--depth", "3", "--epochs", "1", "--steps-per-epoch", "3", "--workers", "0"]  # fmt: skip
    model = hostile_checkpoint(tmp_path / "model.pt", marker)
    result = glioseg_cli("train", data, "--out", tmp_path / "new", "--init-from", model, *options)
    assert_clear_error(result, "model.pt")
    run = hostile_run(tiny_runs, tmp_path, marker)
    assert_clear_error(glioseg_cli("train", data, "--out", run, "--resume", *options), LAST_CHECKPOINT)
    assert not marker.exists()


def drop_key(state):
    del state["epoch"]


def not_a_tensor(state):
    state["model"][next(iter(state["model"]))] = [1.0, 2.0]


def foreign_config(state):
    state["config"] = {"model": {"depth": "four"}, "no such table": {}}


def not_glioseg(state):
    state.clear()
    state["weights"] = torch.zeros(3)


@pytest.mark.parametrize("damage", [drop_key, not_a_tensor, foreign_config, not_glioseg], ids=lambda d: d.__name__)
def test_export_and_predict_refuse_a_checkpoint_that_is_not_what_glioseg_writes(tiny_runs, case, tmp_path, damage):
    state = load_checkpoint(tiny_runs(0) / LAST_CHECKPOINT)
    damage(state)
    torch.save(state, tmp_path / "damaged.pt")
    assert_clear_error(glioseg_cli("export", tmp_path / "damaged.pt", "--out", tmp_path / "out" / "m.pt"), "damaged.pt")
    with pytest.raises(InputError, match="damaged.pt"):  # predict's loader: the same refusal (the CLI's: above)
        load_model(tmp_path / "damaged.pt", "cpu")
    assert no_outputs(tmp_path / "out")


def test_random_states_are_saved_as_data_and_restored_from_old_runs_too(tmp_path):
    """New checkpoints keep numpy's RNG state as a list; runs saved before still resume (their array is data)."""
    states = _rng_states()
    torch.save({"version": 1, "config": {}, "model": {}, "epoch": 1, "rng": states}, tmp_path / "new.pt")
    old = dict(states, numpy=np.random.get_state())
    torch.save({"version": 1, "config": {}, "model": {}, "epoch": 1, "rng": old}, tmp_path / "old.pt")
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    for name in ("new.pt", "old.pt"):
        _restore_rng(load_checkpoint(tmp_path / name)["rng"])
        assert (random.random(), np.random.random(), torch.rand(1).item()) == expected, name


def test_the_checkpoint_reader_names_the_file_it_refuses(tmp_path):
    with pytest.raises(InputError, match="would call posix.system") as refused:
        load_checkpoint(hostile_checkpoint(tmp_path / "evil.pt", tmp_path / "ran"))
    assert refused.value.path == tmp_path / "evil.pt" and not (tmp_path / "ran").exists()
