"""Shared fixtures: tiny phantom cohorts made at test time, and the real BraTS sample beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glioseg.synth import write_cohort

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
            write_cohort(folder, cases, layout, seed, tuple(shape))
            made[key] = folder
        return made[key]

    return make
