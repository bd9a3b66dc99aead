"""The OpenVINO engine: the same labels as torch from a trained run, the converted network cached by the
checkpoint's content and reused."""

import importlib.util

import numpy as np
import pytest

from conftest import PHANTOM_RUN_SHAPE
from glioseg.datasets.cases import find_cases, read_case
from glioseg.inference.predict import load_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")


def test_openvino_predicts_like_torch_and_converts_each_checkpoint_once(tiny_runs, cohort_factory, tmp_path,
                                                                         monkeypatch):  # fmt: skip
    import glioseg.network.openvino_engine as engine

    monkeypatch.setattr(engine, "OPENVINO_CACHE", tmp_path / "cache")
    case = read_case(find_cases(cohort_factory("brats2021", cases=1, shape=PHANTOM_RUN_SHAPE))[0])
    runs = [tiny_runs(0), tiny_runs(1)]
    by_torch = load_model(runs, "cpu").predict(case, keep_probabilities=True)
    by_openvino = load_model(runs, "cpu", engine="openvino").predict(case, keep_probabilities=True)
    np.testing.assert_allclose(by_openvino.probabilities.numpy(), by_torch.probabilities.numpy(), atol=1e-4)
    differ = np.count_nonzero(by_openvino.label != by_torch.label)
    assert differ <= by_torch.label.size // 10_000, differ  # ties only
    made = sorted((tmp_path / "cache").glob("*.xml"))
    assert len(made) == 2 and len(list((tmp_path / "cache").glob("*.bin"))) == 2
    stamps = [path.stat().st_mtime_ns for path in made]
    load_model(runs, "cpu", engine="openvino")
    assert [path.stat().st_mtime_ns for path in made] == stamps  # read, not converted again
