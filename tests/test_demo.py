from dataclasses import replace

import pytest

from glioseg.demo import DemoSettings, run_demo
from glioseg.errors import InputError

TINY = DemoSettings(cases=5, held_out=2, shape=(40, 40, 32), epochs=1, steps_per_epoch=2)


def test_demo_runs_the_whole_pipeline_and_resumes(tmp_path):
    made = run_demo(tmp_path, TINY, progress=False)
    for name in ("curves", "metrics", "summary", "overlay", "report"):
        assert made[name].exists() and made[name].stat().st_size > 0, name
    assert len(list(made["predictions"].glob("BraTS2021_*.nii.gz"))) == 2
    assert made["metrics"].read_text().count("\n") == 1 + 2 * 6
    assert "Best and worst cases" in made["report"].read_text()
    checkpoint = made["run"] / "last.pt"
    stamp = checkpoint.stat().st_mtime_ns
    run_demo(tmp_path, TINY, progress=False)  # finished steps are reused, not redone
    assert checkpoint.stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="other settings"):  # e.g. a folder an older glioseg's demo made
        run_demo(tmp_path, replace(TINY, shape=(48, 48, 32)), progress=False)
    assert checkpoint.stat().st_mtime_ns == stamp
