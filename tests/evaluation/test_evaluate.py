import csv
import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from glioseg.core.errors import InputError
from glioseg.core.labels import BRATS2021, EDEMA
from glioseg.datasets.cases import find_cases, read_case
from glioseg.evaluation.evaluate import evaluate

SHAPE = (40, 40, 32)


@pytest.fixture
def truth_and_predictions(cohort_factory, tmp_path):
    """Ground truth (BraTS 2021 layout) and 'predictions': the labels themselves, one with edema removed."""
    data = cohort_factory("brats2021", cases=3, shape=SHAPE)
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for index, files in enumerate(find_cases(data)):
        label = read_case(files).label
        if index == 1:
            label = np.where(label == EDEMA, 0, label).astype(np.uint8)
        source = nib.load(files.label)
        nib.save(nib.Nifti1Image(BRATS2021.from_internal(label), source.affine, source.header),
                 predictions / f"{files.case_id}.nii.gz")  # fmt: skip
    return data, predictions


def test_perfect_and_imperfect_predictions(truth_and_predictions):
    data, predictions = truth_and_predictions
    results = evaluate(predictions, data, workers=1)
    rows, summary = results.rows, results.summary
    by_case = {(r["case_id"], r["structure"]): r for r in rows}
    ids = [c.case_id for c in find_cases(data)]
    assert by_case[(ids[0], "WT")]["dice"] == 1.0 and by_case[(ids[0], "WT")]["hd95"] == 0.0
    assert by_case[(ids[1], "edema")]["dice"] == 0.0 and by_case[(ids[1], "edema")]["sensitivity"] == 0.0
    assert by_case[(ids[1], "TC")]["dice"] == 1.0  # core and enhancing untouched
    assert by_case[(ids[1], "WT")]["volume_diff_ml"] < 0
    assert summary["WT"]["dice"]["n"] == 3 and summary["TC"]["dice"]["mean"] == 1.0
    assert summary["edema"]["dice"]["median"] == 1.0


@pytest.mark.parametrize(("rules", "lesion_columns"), [
    ([], "lesionwise_dice,lesionwise_hd95,lesions_tp,lesions_fp,lesions_fn"),  # BraTS 2023's by default
    (["--rules", "panoptica"], "pq_dsc,sq_dsc,sq_hd95,sq_nsd,rq,lesions_tp,lesions_fp,lesions_fn"),
])  # fmt: skip
def test_evaluate_command_writes_csv_and_summary(truth_and_predictions, tmp_path, rules, lesion_columns):
    data, predictions = truth_and_predictions
    out = tmp_path / "m.csv"
    command = [sys.executable, "-m", "glioseg", "evaluate", str(predictions), str(data), "--out", str(out), *rules]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "case_id,structure,dice,hd95,nsd,sensitivity,specificity,volume_pred_ml,volume_true_ml,volume_diff_ml,"
        + lesion_columns
    )
    assert len(lines) == 1 + 3 * 6
    summary = json.loads(out.with_suffix(".json").read_text())
    assert set(summary) == {"WT", "TC", "ET", "edema", "core", "enhancing"}
    assert "WT" in result.stdout and "dice" in result.stdout


def test_grid_mismatch_and_missing_prediction_are_clear_errors(truth_and_predictions, tmp_path):
    data, predictions = truth_and_predictions
    broken = tmp_path / "broken"
    shutil.copytree(predictions, broken)
    first = sorted(broken.glob("*.nii.gz"))[0]
    image = nib.load(first)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:, :, :-1], image.affine, image.header), first)
    with pytest.raises(InputError, match="prediction grid: shape"):
        evaluate(broken, data, workers=1)
    first.unlink()
    with pytest.raises(InputError, match="prediction missing"):
        evaluate(broken, data, workers=1)


def test_predictions_in_another_convention_need_pred_labels(truth_and_predictions, tmp_path):
    data, predictions = truth_and_predictions
    for path in predictions.glob("*.nii.gz"):
        image = nib.load(path)
        values = np.asarray(image.dataobj)
        nib.save(nib.Nifti1Image(np.where(values == 4, 3, values).astype(np.uint8), image.affine, image.header), path)
    with pytest.raises(InputError, match="--pred-labels"):
        evaluate(predictions, data, workers=1)
    rows = evaluate(predictions, data, pred_labels="brats2023", workers=1).rows
    assert all(r["dice"] == 1.0 for r in rows if r["case_id"] != find_cases(data)[1].case_id)


def test_real_sample_labels_as_predictions(brats2018_sample, tmp_path):
    """BraTS 2018 labels (1/2/4) in and out: the expert labels scored against themselves."""
    for files in find_cases(brats2018_sample):
        shutil.copy(files.label, tmp_path / f"{files.case_id}.nii.gz")
    results = evaluate(tmp_path, brats2018_sample, workers=2)
    rows, summary = results.rows, results.summary
    assert len(rows) == 12 * 6
    assert all(r["dice"] == 1.0 and r["hd95"] == 0.0 for r in rows)
    assert summary["WT"]["volume_true_ml"]["median"] > 10


def cubes_case(folder, case_id, cubes, value):
    """A BraTS 2021 case whose label is cubes (x, y, z, side) of one BraTS value, on a 60^3 grid at 1 mm."""
    label = np.zeros((60, 60, 60), np.uint8)
    for x, y, z, side in cubes:
        label[x : x + side, y : y + side, z : z + side] = value
    case = folder / case_id
    case.mkdir(parents=True)
    image = np.where(label > 0, 2.0, 1.0).astype(np.float32)
    for suffix in ("flair", "t1", "t1ce", "t2"):
        nib.save(nib.Nifti1Image(image, np.eye(4)), case / f"{case_id}_{suffix}.nii.gz")
    nib.save(nib.Nifti1Image(label, np.eye(4)), case / f"{case_id}_seg.nii.gz")
    return label


@pytest.mark.parametrize(("rules", "dice", "hd95"), [("brats2023", 1 / 3, 748 / 3), ("brats2024", 1 / 3, 674 / 3)])
def test_evaluate_gives_a_years_lesion_wise_scores_and_a_per_lesion_table(tmp_path, rules, dice, hd95):
    """One lesion found, one missed, one false positive (enhancing tumour, BraTS value 4), through the command."""
    truth, predictions = tmp_path / "truth", tmp_path / "pred"
    cubes_case(truth, "Case_1", [(5, 5, 5, 10), (40, 40, 40, 6)], 4)
    predictions.mkdir()
    predicted = np.zeros((60, 60, 60), np.uint8)
    predicted[5:15, 5:15, 5:15] = 4
    predicted[5:10, 40:45, 40:45] = 4
    nib.save(nib.Nifti1Image(predicted, np.eye(4)), predictions / "Case_1.nii.gz")
    out = tmp_path / "m.csv"
    result = subprocess.run([sys.executable, "-m", "glioseg", "evaluate", str(predictions), str(truth), "--out",
                             str(out), "--rules", rules], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {r["structure"]: r for r in csv.DictReader(open(out))}
    et = rows["ET"]
    assert float(et["lesionwise_dice"]) == pytest.approx(dice) and float(et["lesionwise_hd95"]) == pytest.approx(hd95)
    assert (et["lesions_tp"], et["lesions_fp"], et["lesions_fn"]) == ("1", "1", "1")
    assert rows["enhancing"]["lesionwise_dice"] == et["lesionwise_dice"]
    lesions = list(csv.DictReader(open(tmp_path / "m_lesions.csv")))
    et_lesions = [r for r in lesions if r["structure"] == "ET"]
    assert sorted((r["kind"], r["volume_mm3"], r["dice"]) for r in et_lesions) == [
        ("false positive", "", "0.0"), ("lesion", "1000.0", "1.0"), ("lesion", "216.0", "0.0")]  # fmt: skip
    assert ("cavity" in rows) == (rules == "brats2024")
    assert "lesion-wise dice" in result.stdout  # the summary table
