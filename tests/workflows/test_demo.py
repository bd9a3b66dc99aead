from dataclasses import replace

import pytest

from glioseg.core.errors import InputError
from glioseg.workflows.demo import DemoSettings, run_demo

TINY = DemoSettings(cases=5, held_out=2, shape=(40, 40, 32), epochs=1, steps_per_epoch=2)


def test_demo_runs_the_whole_pipeline_and_resumes(tmp_path):
    made = run_demo(tmp_path, TINY, progress=False)
    for name in ("curves", "metrics", "summary", "shipped_summary", "overlay", "report"):
        assert made[name].exists() and made[name].stat().st_size > 0, name
    for predictions in (made["predictions"], made["shipped_model"]):  # both models segmented the held-out phantoms
        assert len(list(predictions.glob("BraTS2021_?????.nii.gz"))) == 2  # beside the shipped ensemble's uncertainty
        assert (predictions / "metrics.csv").read_text().count("\n") == 1 + 2 * 6
    page = made["report"].read_text()
    assert "<h2>Training</h2>" in page and page.count("Best and worst cases") == 2
    assert "The shipped model" in page and "trained just now (2 steps)" in page
    checkpoint = made["run"] / "last.pt"
    stamp = checkpoint.stat().st_mtime_ns
    run_demo(tmp_path, TINY, progress=False)  # finished steps are reused, not redone
    assert checkpoint.stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="other settings"):  # e.g. a folder an older glioseg's demo made
        run_demo(tmp_path, replace(TINY, shape=(48, 48, 32)), progress=False)
    assert checkpoint.stat().st_mtime_ns == stamp
