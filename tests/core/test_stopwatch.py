import time

from glioseg.core.stopwatch import Stopwatch, stages_line


def test_laps_of_one_stage_add_up_and_the_line_lists_stages_in_order():
    timings: dict[str, float] = {}
    clock = Stopwatch(timings)
    for _ in range(2):  # e.g. two sequences registered, each resampled after
        time.sleep(0.02)
        clock.lap("register")
        time.sleep(0.01)
        clock.lap("resample")
    assert list(timings) == ["register", "resample"]
    assert 0.04 <= timings["register"] < 0.5 and 0.02 <= timings["resample"] < timings["register"]
    line = stages_line({"convert": 1.04, "register": 30.06})
    assert line == "31.1 s: convert 1.0, register 30.1"


def test_without_timings_nothing_is_recorded():
    clock = Stopwatch(None)
    clock.lap("register")
    assert clock.timings is None
