"""The model shipped inside the package: `glioseg predict` with no RUN segments real cases in their own label
conventions (the BraTS 2023 sample case and a BraTS 2018 case)."""

import nibabel as nib
import numpy as np

from conftest import glioseg_cli
from glioseg.datasets.layouts import locate_case
from glioseg.inference.predict import SHIPPED_MODELS, SHIPPED_TEMPERATURE, load_model


def test_the_shipped_model_is_small_and_loads():
    assert sum(path.stat().st_size for path in SHIPPED_MODELS) < 40e6
    model = load_model()
    assert len(model.networks) == 5 and model.config.train.folds == 5  # the fold models of the 28-case CV
    assert all(network.config.temperature == SHIPPED_TEMPERATURE for network in model.networks)  # calibrated
    assert load_model(SHIPPED_MODELS[0]).config.model.temperature == 1.0  # a fold model given by path: as trained


def test_predict_without_a_run_segments_real_cases_in_their_own_conventions(brats2018_sample, brats2023_sample,
                                                                              tmp_path):  # fmt: skip
    case_2018 = brats2018_sample / "Brats18_TCIA02_135_1"
    case_2023 = next(p for p in brats2023_sample.iterdir() if p.is_dir())
    out = tmp_path / "pred"
    result = glioseg_cli("predict", case_2018, case_2023, "--out", out)
    assert result.returncode == 0, result.stderr
    mask_2018 = np.asarray(nib.load(out / f"{case_2018.name}.nii.gz").dataobj)
    mask_2023 = np.asarray(nib.load(out / f"{case_2023.name}.nii.gz").dataobj)
    assert set(np.unique(mask_2018)) <= {0, 1, 2, 4} and 4 in mask_2018  # BraTS 2018: ET is 4
    assert set(np.unique(mask_2023)) <= {0, 1, 2, 3} and 3 in mask_2023  # BraTS 2023: ET is 3
    truth = locate_case(case_2018)
    expert = truth.convention.to_internal(np.asarray(nib.load(truth.label).dataobj))
    predicted = truth.convention.to_internal(mask_2018)
    whole = 2 * ((expert > 0) & (predicted > 0)).sum() / ((expert > 0).sum() + (predicted > 0).sum())
    assert whole > 0.8  # a training case of four of the five fold models: a check that it works, not a validation
    assert (mask_2023 > 0).sum() > 10_000  # the 2023 case has a large tumour (about 10 mL or more)


def test_real_demo_segments_evaluates_and_reports(brats2018_sample, tmp_path):
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in ("Brats18_TCIA02_135_1", "Brats18_CBICA_ABM_1"):
        (sample / name).symlink_to(brats2018_sample / name)
    result = glioseg_cli("demo", "--real", "--sample-dir", sample, "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert "shipped model's training cases" in result.stderr
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "Brats18_CBICA_ABM_1" in page and "Best and worst cases" in page
