"""Shared fixtures: tiny phantom cohorts made at test time, and the real BraTS sample beside the repo."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from glioseg.core.config import CohortConfig
from glioseg.datasets.phantoms import write_cohort

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TINY_SHAPE = (48, 48, 32)


def real_data(name: str) -> Path:
    """A folder of ../shared/data; skipped where absent, but under CI a missing sample is a failure."""
    path = SHARED_DATA / name
    if not path.is_dir():
        message = f"real sample {path} not found (it lives beside the repository, never in it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def brats2018_sample() -> Path:
    return real_data("brats2018-sample")


@pytest.fixture(scope="session")
def brats2023_sample() -> Path:
    return real_data("brats2023-sample")


@pytest.fixture(scope="session")
def cohort_factory(tmp_path_factory):
    """``make(layout, cases=3, seed=0)`` -> folder of a tiny phantom cohort, made once per session."""
    made: dict[tuple, Path] = {}

    def make(layout: str = "brats2021", cases: int = 3, seed: int = 0, shape=TINY_SHAPE) -> Path:
        key = (layout, cases, seed, tuple(shape))
        if key not in made:
            folder = tmp_path_factory.mktemp(f"{layout}-{cases}-{seed}")
            write_cohort(folder, CohortConfig(cases, layout, seed, tuple(shape)))
            made[key] = folder
        return made[key]

    return make


def glioseg_cli(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m glioseg ARGS`` on one thread; text output captured."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "glioseg", *map(str, args)], capture_output=True, text=True,
                          env=env, **kwargs)  # fmt: skip


def glioseg_in_process(*args) -> subprocess.CompletedProcess:
    """Run ``glioseg ARGS`` in this process (the same command line, without a new interpreter's two seconds of
    imports): for the many refusals of the bad-input catalogues. An exception the command line would have shown as a
    traceback is raised here, failing the test."""
    from typer.testing import CliRunner

    from glioseg.app.cli import app

    result = CliRunner().invoke(app, [str(argument) for argument in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def assert_clear_error(result: subprocess.CompletedProcess, name: str, status: int = 2) -> None:
    """One clear error: the status, ``name`` (the file at fault) and a fix in the message, no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    text = " ".join((result.stdout + result.stderr).split())
    assert name in text, text
    assert "fix" in text.lower(), text
    assert "Traceback" not in text


def no_outputs(folder: Path) -> bool:
    """Nothing written that could pass for a result."""
    return not folder.exists() or not any(p.suffix in (".gz", ".pt", ".csv", ".json") for p in folder.rglob("*"))


PHANTOM_RUN_SHAPE = (40, 40, 32)


@pytest.fixture(scope="session")
def tiny_runs(cohort_factory, tmp_path_factory):
    """``make(fold)`` -> a tiny run (width 4, 3 steps) trained on fold ``fold`` of 6 phantoms; made once."""
    data = cohort_factory("msd", cases=6, shape=PHANTOM_RUN_SHAPE)
    root = tmp_path_factory.mktemp("runs")
    made: dict[int, Path] = {}

    def make(fold: int = 0) -> Path:
        if fold not in made:
            run = root / f"fold{fold}"
            result = glioseg_cli("train", data, "--out", run, "--cache", root / "cache", "--folds", "3", "--fold",
                                 fold, "--patch", "16", "16", "16", "--width", "4", "--depth", "3", "--epochs", "1",
                                 "--steps-per-epoch", "3", "--workers", "0")  # fmt: skip
            assert result.returncode == 0, result.stderr
            made[fold] = run
        return made[fold]

    return make


@contextlib.contextmanager
def serving(app):
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
