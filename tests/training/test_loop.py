"""Training on tiny phantoms: run folder contents, determinism, SIGKILL + --resume, fine-tuning, DDP."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import glioseg.network.devices as devices
from glioseg.core.config import ModelConfig, RunConfig, TrainConfig
from glioseg.core.errors import InputError
from glioseg.network.devices import mixed_precision_dtype
from glioseg.network.runs import load_checkpoint, read_history
from glioseg.training.loop import train

SHAPE = (40, 40, 32)


def train_args(data, out, cache, *extra):
    return [
        "train", str(data), "--out", str(out), "--cache", str(cache), "--folds", "3", "--patch", "16", "16", "16",
        "--batch", "2", "--width", "4", "--depth", "3", "--validate-every", "1", "--workers", "0", *extra,
    ]  # fmt: skip


def glioseg(*args, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "glioseg", *args], capture_output=True, text=True, env=env, **kwargs)


@pytest.fixture(scope="module")
def data(cohort_factory):
    return cohort_factory("msd", cases=6, shape=SHAPE)


def step_losses(run):
    return [loss for entry in read_history(run) for loss in entry["step_losses"]]


def test_run_folder_holds_everything_to_predict(data, tmp_path):
    run = tmp_path / "run"
    options = ("--epochs", "2", "--steps-per-epoch", "3", "--foreground-fraction", "0.5")
    result = glioseg(*train_args(data, run, tmp_path / "cache", *options))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "splits.json", "history.jsonl", "last.pt", "best.pt", "tensorboard", "curves.png"} <= names
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["width"] == 4 and config["train"]["patch"] == [16, 16, 16]
    assert config["train"]["foreground_fraction"] == 0.5
    splits = json.loads((run / "splits.json").read_text())
    assert len(splits) == 3 and not set(splits[0]["train"]) & set(splits[0]["val"])
    history = read_history(run)
    assert [e["epoch"] for e in history] == [1, 2]
    for key in ("loss/train", "loss/val", "lr", "samples_per_s", "dice/WT", "dice/TC", "dice/ET", "dice/edema",
                "sensitivity/core", "specificity/enhancing"):  # fmt: skip
        assert key in history[-1], key
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 2 and {"optimizer", "scheduler", "scaler", "rng"} <= set(state)
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert "validation Dice WT" in result.stderr


def test_same_seed_same_losses(data, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        result = glioseg(*train_args(data, run, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "4"))
        assert result.returncode == 0, result.stderr
    assert step_losses(runs[0]) == step_losses(runs[1])
    other = tmp_path / "c"
    glioseg(*train_args(data, other, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "4", "--seed", "1"))
    assert step_losses(other) != step_losses(runs[0])


def test_loader_processes_kept_across_epochs_give_the_same_batches(data, tmp_path):
    runs = {workers: tmp_path / f"workers{workers}" for workers in ("0", "2")}
    for workers, run in runs.items():  # the later --workers wins over train_args' own
        steps = ("--epochs", "2", "--steps-per-epoch", "3", "--workers", workers)
        result = glioseg(*train_args(data, run, tmp_path / "cache", *steps))
        assert result.returncode == 0, result.stderr
    assert len(step_losses(runs["2"])) == 6
    assert step_losses(runs["0"]) == step_losses(runs["2"])


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(data, tmp_path):
    options = ("--epochs", "3", "--steps-per-epoch", "12")
    reference = tmp_path / "reference"
    assert glioseg(*train_args(data, reference, tmp_path / "cache", *options)).returncode == 0

    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "glioseg", *train_args(data, run, tmp_path / "cache", *options)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline:  # epoch 1 checkpointed
        time.sleep(0.02)
    time.sleep(0.3)  # into epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert load_checkpoint(run / "last.pt")["epoch"] in (1, 2)  # whatever was being written, last.pt is whole

    result = glioseg(*train_args(data, run, tmp_path / "cache", *options, "--resume"))
    assert result.returncode == 0, result.stderr
    assert [e["epoch"] for e in read_history(run)] == [1, 2, 3]
    assert not list(run.glob(".tmp-*")), "a half-written file was left behind"
    assert step_losses(run) == step_losses(reference)
    final, expected = load_checkpoint(run / "last.pt")["model"], load_checkpoint(reference / "last.pt")["model"]
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_resume_and_restart_are_refused_when_they_would_lose_work(data, tmp_path):
    run = tmp_path / "run"
    base = train_args(data, run, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "2")
    nothing = glioseg(*base, "--resume")
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr
    assert glioseg(*base).returncode == 0
    again = glioseg(*base)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    changed = glioseg(*train_args(data, run, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "5"), "--resume")
    assert changed.returncode == 2 and "settings differ" in changed.stderr


def test_fold_all_trains_on_every_case_without_validation(data, tmp_path):
    run = tmp_path / "run"
    result = glioseg(*train_args(data, run, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "2",
                                 "--fold", "all"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["train"]["fold"] is None
    assert (run / "last.pt").exists() and not (run / "best.pt").exists()
    assert not any(key.startswith("dice/") for key in read_history(run)[-1])
    wrong = glioseg(*train_args(data, tmp_path / "other", tmp_path / "cache", "--fold", "3"))
    assert wrong.returncode == 2 and "or all" in wrong.stderr


def test_extra_data_joins_every_fold_but_never_the_splits(data, cohort_factory, tmp_path):
    extra = cohort_factory("brats2021", cases=2, seed=7, shape=SHAPE)
    steps = ("--epochs", "1", "--steps-per-epoch", "3")
    plain = glioseg(*train_args(data, tmp_path / "plain", tmp_path / "cache", *steps))
    mixed = glioseg(*train_args(data, tmp_path / "mixed", tmp_path / "cache", *steps, "--extra-data", str(extra)))
    assert plain.returncode == 0 and mixed.returncode == 0, mixed.stderr
    assert (tmp_path / "plain" / "splits.json").read_text() == (tmp_path / "mixed" / "splits.json").read_text()
    assert json.loads((tmp_path / "mixed" / "config.json").read_text())["train"]["extra_data"] == str(extra)
    # same seed, so only the extra cases can change the batches
    assert step_losses(tmp_path / "plain") != step_losses(tmp_path / "mixed")
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = glioseg(*train_args(data, tmp_path / "bad", tmp_path / "cache", *steps, "--extra-data", str(empty)))
    assert bad.returncode == 2 and "empty" in bad.stderr and not (tmp_path / "bad").exists()


def test_init_from_fine_tunes_from_another_run(data, tmp_path):
    source = tmp_path / "source"
    assert (
        glioseg(*train_args(data, source, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "2")).returncode
        == 0
    )
    tuned = tmp_path / "tuned"
    result = glioseg(*train_args(data, tuned, tmp_path / "cache", "--epochs", "1", "--steps-per-epoch", "1",
                                 "--lr", "1e-9", "--init-from", str(source)))  # fmt: skip
    assert result.returncode == 0, result.stderr
    before, after = load_checkpoint(source / "best.pt")["model"], load_checkpoint(tuned / "last.pt")["model"]
    key = "encoders.0.0.weight"
    assert torch.allclose(before[key], after[key], atol=1e-6)  # started from the source's weights


def test_mixed_precision_trains_in_bfloat16_on_a_cpu_that_has_it_and_keeps_float32_weights(data, tmp_path, monkeypatch):
    assert mixed_precision_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: False)
    assert mixed_precision_dtype(torch.device("cpu")) is None  # emulated bfloat16 would be slower
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: True)
    assert mixed_precision_dtype(torch.device("cpu")) == torch.bfloat16
    losses = {}
    for amp in (True, False):  # bfloat16 emulated here if this CPU lacks it: slower, same arithmetic
        config = RunConfig(
            model=ModelConfig(head="classes", deep_supervision=True, width=4, depth=3),
            train=TrainConfig(patch=(16, 16, 16), batch=2, epochs=1, steps_per_epoch=3, loss="dice_ce", folds=3,
                              workers=0, amp=amp),
        )  # fmt: skip
        run = tmp_path / f"amp-{amp}"
        train(data, run, config, device="cpu", cache_root=tmp_path / "cache", progress=False)
        losses[amp] = step_losses(run)
        assert all(t.dtype == torch.float32 for t in load_checkpoint(run / "last.pt")["model"].values())
    assert all(0 < loss < 10 for loss in losses[True])
    assert losses[True][0] == pytest.approx(losses[False][0], rel=0.05)  # same weights, same batch: close...
    assert losses[True] != losses[False]  # ...but not the same arithmetic


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="unreadable checkpoint"):
        load_checkpoint(path)


def test_ddp_with_two_cpu_processes(data, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "glioseg",
         *train_args(data, run, tmp_path / "cache", "--epochs", "2", "--steps-per-epoch", "3")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    history = read_history(run)
    assert [e["epoch"] for e in history] == [1, 2] and history[0]["world_size"] == 2
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_trains_on_the_real_brats2018_sample_without_conversion(brats2018_sample, tmp_path):
    run = tmp_path / "real"
    result = glioseg(
        "train", str(brats2018_sample), "--out", str(run), "--cache", str(tmp_path / "cache"), "--folds", "4",
        "--spacing", "4", "4", "4", "--patch", "16", "16", "16", "--width", "4", "--depth", "3",
        "--epochs", "1", "--steps-per-epoch", "2", "--workers", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert [len(s["val"]) for s in json.loads((run / "splits.json").read_text())] == [3, 3, 3, 3]
    assert "dice/WT" in read_history(run)[-1]


def test_a_torn_last_history_line_does_not_break_resume(data, tmp_path):
    """A kill while the history line was being written leaves half a JSON line: --resume redoes that epoch."""
    run = tmp_path / "run"
    assert (
        glioseg(*train_args(data, run, tmp_path / "cache", "--epochs", "2", "--steps-per-epoch", "2")).returncode == 0
    )
    history = run / "history.jsonl"
    lines = history.read_text().splitlines()
    history.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # epoch 2's line torn
    state = load_checkpoint(run / "last.pt")
    state["epoch"] = 1  # the checkpoint of epoch 1: the kill came before epoch 2's checkpoint
    torch.save(state, run / "last.pt")
    resumed = glioseg(*train_args(data, run, tmp_path / "cache", "--epochs", "2", "--steps-per-epoch", "2",
                                  "--resume"))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [entry["epoch"] for entry in read_history(run)] == [1, 2]
