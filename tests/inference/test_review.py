"""The review flag: each member's doubt about a region, averaged over the ensemble, the score against its threshold;
written by predict (quality.csv, cases.json, one printed line per flagged case), shown by the report."""

import csv
import json

import pytest
import torch

from conftest import PHANTOM_RUN_SHAPE, REPO, glioseg_in_process
from glioseg.core.config import MODALITIES, PredictConfig
from glioseg.core.errors import InputError
from glioseg.datasets.cases import find_cases, read_case
from glioseg.inference.predict import SHIPPED_MODELS, load_model
from glioseg.inference.review import absent_note, member_doubt, read_measurements, review_of, unreliable_regions


def test_doubt_is_the_voxels_in_doubt_per_voxel_predicted_for_both_heads():
    enhancing = torch.zeros(4, 4, 4)
    enhancing.view(-1)[:10] = 0.9  # predicted enhancing
    enhancing.view(-1)[10:30] = 0.5  # in doubt
    classes = torch.stack([1 - enhancing, torch.zeros_like(enhancing), torch.zeros_like(enhancing), enhancing])
    assert member_doubt(classes, "classes")["ET"] == pytest.approx(2.0)
    regions = torch.stack([enhancing, enhancing, enhancing])  # WT, TC, ET channels
    assert member_doubt(regions, "regions") == pytest.approx({"WT": 2.0, "TC": 2.0, "ET": 2.0})
    nothing = torch.zeros(3, 4, 4, 4)
    nothing[2].view(-1)[:5] = 0.3  # doubt about a region predicted nowhere still counts
    assert member_doubt(nothing, "regions")["ET"] == 5.0


def test_the_score_is_the_members_mean_doubt_about_enhancing_tumour_against_the_threshold():
    review = review_of([{"WT": 0.1, "TC": 0.2, "ET": 0.8}, {"WT": 0.3, "TC": 0.4, "ET": 1.6}], threshold=1.0)
    assert review.score == pytest.approx(1.2) and review.advised
    assert review.doubt == pytest.approx({"WT": 0.2, "TC": 0.3, "ET": 1.2})
    assert not review_of([{"WT": 0, "TC": 0, "ET": 1.0}], threshold=1.0).advised  # above, not at, the threshold


def test_an_ensembles_review_averages_what_each_member_says_alone(tiny_runs, cohort_factory):
    case = read_case(find_cases(cohort_factory("brats2021", cases=1, shape=PHANTOM_RUN_SHAPE))[0])
    models = [load_model(tiny_runs(fold), "cpu") for fold in (0, 1)]
    both = load_model([tiny_runs(0), tiny_runs(1)], "cpu")
    for settings in (PredictConfig(overlap=0.0), PredictConfig(overlap=0.0, tta=True)):  # mirrors: a member's mean
        alone = [model.predict(case, settings).review.doubt for model in models]
        together = both.predict(case, settings).review.doubt
        assert together == pytest.approx({region: (alone[0][region] + alone[1][region]) / 2 for region in together})
        assert any(value > 0 for value in together.values())  # doubts there are, so the mean is not 0 = 0


def test_predict_writes_and_prints_the_flag_and_the_report_shows_it(tiny_runs, cohort_factory, tmp_path):
    data = cohort_factory("brats2021", cases=2, shape=PHANTOM_RUN_SHAPE)
    out = tmp_path / "pred"
    result = glioseg_in_process("predict", tiny_runs(0), data, "--out", out, "--review-threshold", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "quality.csv") as stream:
        rows = list(csv.DictReader(stream))
    flagged = [row["case_id"] for row in rows if row["review_advised"] == "True"]
    assert len(rows) == 2 and flagged, rows  # a barely trained network doubts: every score is above 0
    printed = " ".join((result.stdout + result.stderr).split())
    assert all(f"review advised: {case_id}" in printed for case_id in flagged)
    entries = json.loads((out / "cases.json").read_text())
    assert {e["case_id"]: e["review_advised"] for e in entries} == {r["case_id"]: r["review_advised"] == "True"
                                                                    for r in rows}  # fmt: skip
    assert json.loads((out / "predict.json").read_text())["review_threshold"] == 0
    report = tmp_path / "report.html"
    assert glioseg_in_process("report", out, "--out", report).returncode == 0
    page = report.read_text()
    assert "Review advised" in page and page.count('class="review"') >= len(flagged)


MEASURED = {
    "none": {"WT": 0.87, "TC": 0.82, "ET": 0.74},
    "T1": {"WT": 0.86, "TC": 0.80, "ET": 0.73},
    "T1Gd": {"WT": 0.81, "TC": 0.11, "ET": 0.03},
    "FLAIR": {"WT": 0.28, "TC": 0.40, "ET": 0.38},
}
DOUBTS = [{"WT": 0.1, "TC": 0.1, "ET": 0.1}]


def test_without_a_sequence_the_regions_it_defines_or_that_measured_poorly_are_unreliable():
    assert unreliable_regions((), None) == ()
    assert unreliable_regions(("T1",), MEASURED["T1"]) == ()
    assert unreliable_regions(("T1Gd",), {"WT": 0.9, "TC": 0.9, "ET": 0.9}) == ("TC", "ET")  # whatever was measured
    assert unreliable_regions(("FLAIR",), MEASURED["FLAIR"]) == ("WT", "TC", "ET")
    assert unreliable_regions(("T2",), None) == ("WT", "TC", "ET")  # not measured: not trusted
    whole = review_of(DOUBTS, 1.0, (), MEASURED)
    assert not whole.advised and whole.measured is None and whole.row()["absent"] == ""
    lacking = review_of(DOUBTS, 1.0, ("T1Gd",), MEASURED)
    assert lacking.advised and lacking.measured == MEASURED["T1Gd"] and lacking.unreliable == ("TC", "ET")
    assert review_of(DOUBTS, 1.0, ("T1",), MEASURED).advised  # a case that lacked a sequence is checked


def test_the_printed_line_names_the_sequence_and_the_accuracy_measured_without_it():
    note = absent_note("case7", review_of(DOUBTS, 1.0, ("T1Gd",), MEASURED).row(), MEASURED)
    assert note.startswith("case7: no T1Gd, segmented from FLAIR, T1, T2;")
    assert "WT 0.81 (all four 0.87) TC 0.11 (all four 0.82) ET 0.03 (all four 0.74)" in note
    assert note.endswith("TC, ET unreliable")
    unmeasured = absent_note("case7", review_of(DOUBTS, 1.0, ("T2",), None).row(), None)
    assert "accuracy without T2 was not measured" in unmeasured and unmeasured.endswith("WT, TC, ET unreliable")
    assert absent_note("case7", review_of(DOUBTS, 1.0).row(), MEASURED) is None


def test_the_shipped_model_carries_its_measurements_for_each_missing_sequence():
    measured = read_measurements(SHIPPED_MODELS[0].parent)
    assert set(measured) == {"none", *MODALITIES}
    assert all(set(dice) == {"WT", "TC", "ET"} for dice in measured.values())
    assert unreliable_regions(("T1Gd",), measured["T1Gd"]) == ("TC", "ET")  # as its cross-validation measured
    docs = REPO / "docs" / "model" / "experiments" / "shipped-v2" / "missing-sequences.csv"
    assert read_measurements(docs.parent) == measured  # the experiment's table is the package's


def test_a_damaged_measurement_table_is_named(tmp_path):
    (tmp_path / "missing-sequences.csv").write_text("without,region\nT1,WT\n")
    with pytest.raises(InputError, match="missing-sequences.csv.*not a table of Dice"):
        read_measurements(tmp_path)
    assert read_measurements(tmp_path / "elsewhere") is None
