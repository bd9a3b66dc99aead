"""Seconds per stage of a long job (preparing a raw study, predicting a case), for the line ``glioseg predict``
prints and for the benchmarks: where the time goes, measured where it is spent."""

from __future__ import annotations

import time


class Stopwatch:
    """Adds the seconds since the previous lap to ``timings[name]`` (does nothing without ``timings``): a stage
    timed in two parts counts once, in full."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def stages_line(timings: dict[str, float]) -> str:
    """``41.2 s: convert 1.0, register 30.1, ...`` (each stage to a tenth of a second, in the order run)."""
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in timings.items())
    return f"{sum(timings.values()):.1f} s: {parts}"
