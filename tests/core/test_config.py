"""Settings read back from a run's config.json or a checkpoint are exactly what was written, or refused."""

import json

import pytest

from glioseg.core.config import ModelConfig, PreprocessConfig, RunConfig, TrainConfig


def test_a_run_config_reads_back_equal():
    config = RunConfig(PreprocessConfig(spacing_mm=(2.0, 2.0, 2.0)), ModelConfig(head="classes", width=8),
                       TrainConfig(patch=(32, 48, 64), fold=None, learning_rate=1e-3))  # fmt: skip
    assert RunConfig.from_dict(json.loads(config.to_json())) == config


def test_whole_numbers_read_as_floats_and_lists_as_tuples():
    read = RunConfig.from_dict({"train": {"learning_rate": 1, "patch": [16, 16, 16]}})
    assert read.train.learning_rate == 1.0 and isinstance(read.train.learning_rate, float)
    assert read.train.patch == (16, 16, 16)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"model": {"depth": "four"}}, "depth"),
        ({"model": {"width": True}}, "width"),
        ({"model": {"head": "segments"}}, "head"),
        ({"train": {"patch": [64, 64]}}, "patch"),
        ({"train": {"fold": 1.5}}, "fold"),
        ({"preprocess": {"spacing_mm": ["1", 1, 1]}}, "spacing_mm"),
        ({"model": {"no_such_setting": 1}}, "no_such_setting"),
        ({"train": [1, 2]}, "TrainConfig"),
    ],
)
def test_settings_of_the_wrong_kind_are_refused_naming_them(data, named):
    with pytest.raises(ValueError, match=named):
        RunConfig.from_dict(data)
