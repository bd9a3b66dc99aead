"""The HTML report: self-contained (no URL fetched), with curves, metrics, box plots, overlays, volumes and lesions."""

import re

from conftest import PHANTOM_RUN_SHAPE, glioseg_cli
from glioseg.datasets.cases import find_cases


def test_report_of_a_prediction_folder_is_one_offline_page(tiny_runs, cohort_factory, tmp_path):
    data = cohort_factory("brats2021", cases=3, seed=4, shape=PHANTOM_RUN_SHAPE)
    predictions = tmp_path / "predictions"
    assert glioseg_cli("predict", tiny_runs(0), data, "--out", predictions).returncode == 0
    evaluated = glioseg_cli("evaluate", predictions, data, "--out", predictions / "metrics.csv")
    assert evaluated.returncode == 0, evaluated.stderr
    out = tmp_path / "report" / "report.html"
    result = glioseg_cli("report", predictions, "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched: opens offline
    for heading in ("Training", "Evaluation", "Per case", "Best and worst cases", "Tumour volumes", "Lesions"):
        assert f"<h2>{heading}" in page or f"<h3>{heading}" in page, heading
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 1 + 1 + 3  # curves, box plots, an overlay per case (3 cases: 2 best, 1 worst)
    for files in find_cases(data):
        assert page.count(files.case_id) >= 2  # per-case table and volumes table
    assert 'class="sortable"' in page and "<script>" in page


def test_report_refuses_a_folder_with_nothing_to_report(tmp_path):
    result = glioseg_cli("report", tmp_path, "--out", tmp_path / "r.html")
    assert result.returncode == 2 and "holds no run" in result.stderr
    assert not (tmp_path / "r.html").exists()
