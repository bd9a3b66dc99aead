"""Training packs: what training reads, within the quantisation step, whole or not at all; training from a pack
splits the cases as training from the dataset does."""

import json

import numpy as np

from conftest import assert_clear_error, glioseg_cli, glioseg_in_process
from glioseg.core.config import PreprocessConfig, TrainConfig
from glioseg.datasets.cases import labelled_cases
from glioseg.datasets.packs import STEPS_PER_SD, open_pack, write_pack
from glioseg.datasets.preprocess import cache_dataset
from glioseg.datasets.splits import kfold_splits, read_splits
from glioseg.network.runs import read_history

SHAPE = (40, 40, 32)
SETTINGS = PreprocessConfig()  # the files' grid: tiny volumes stay tiny


def test_a_pack_unpacks_to_what_the_cache_holds(cohort_factory, tmp_path):
    data, extra = cohort_factory("brats2021", cases=4, shape=SHAPE), cohort_factory("msd", cases=2, shape=SHAPE)
    cases, extra_cases = labelled_cases(data), labelled_cases(extra, minimum=1)
    pack, size = write_pack(cases, extra_cases, data, extra, tmp_path / "p.pack", SETTINGS, tmp_path / "cache",
                            workers=1, progress=False)  # fmt: skip
    assert size == sum(p.stat().st_size for p in pack.iterdir())
    record = json.loads((pack / "pack.json").read_text())
    assert [c["role"] for c in record["cases"]] == ["dataset"] * 4 + ["extra"] * 2
    roles = open_pack(pack, tmp_path / "unpacked")
    cached = cache_dataset(cases, data, tmp_path / "cache", SETTINGS, workers=1, progress=False)
    assert [c.case_id for c in roles["dataset"]] == [c.case_id for c in cached]
    for original, unpacked in zip(cached, roles["dataset"]):
        image = np.asarray(original.image())
        assert unpacked.image().shape == image.shape
        assert np.abs(unpacked.image() - image).max() <= 0.5 / STEPS_PER_SD + 1e-6
        assert np.array_equal(unpacked.targets(), original.targets())
        assert np.array_equal(unpacked.label(), original.label())
        assert unpacked.locations().keys() == original.locations().keys()
        for value, points in original.locations().items():
            assert np.array_equal(unpacked.locations()[value], points)
        assert unpacked.meta()["box"] == original.meta()["box"]
    assert len(roles["extra"]) == 2


def test_training_from_a_pack_splits_the_cases_as_the_dataset_does(cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=6, shape=SHAPE)
    pack = tmp_path / "data.pack"
    result = glioseg_cli("pack", data, "--out", pack, "--cache", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "6 cases and 0 extra" in " ".join(result.stderr.split())
    common = ("--folds", "3", "--patch", "16", "16", "16", "--width", "4", "--depth", "3", "--epochs", "1",
              "--steps-per-epoch", "2", "--workers", "0", "--cache", tmp_path / "cache")  # fmt: skip
    result = glioseg_cli("train", pack, "--out", tmp_path / "run", *common)
    assert result.returncode == 0, result.stderr
    ids = [case.case_id for case in labelled_cases(data)]
    assert read_splits(tmp_path / "run/splits.json") == kfold_splits(ids, 3, 0, TrainConfig().group_regex)
    assert [entry["epoch"] for entry in read_history(tmp_path / "run")] == [1]

    other_spacing = glioseg_in_process("train", pack, "--out", tmp_path / "r1", *common, "--spacing", "2", "2", "2")
    assert_clear_error(other_spacing, str(pack))
    assert "pack the dataset again" in " ".join(other_spacing.stderr.split())
    with_extra = glioseg_in_process("train", pack, "--out", tmp_path / "r2", *common, "--extra-data", data)
    assert_clear_error(with_extra, "--extra-data")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_a_pack_is_written_whole_or_not_at_all(cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=6, shape=SHAPE)
    pack = tmp_path / "data.pack"
    pack.mkdir()
    refused = glioseg_in_process("pack", data, "--out", pack, "--cache", tmp_path / "cache")
    assert_clear_error(refused, str(pack))
    assert list(pack.iterdir()) == []
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    refused = glioseg_in_process("pack", unlabelled, "--out", tmp_path / "p2", "--cache", tmp_path / "cache")
    assert_clear_error(refused, str(unlabelled))
    assert not (tmp_path / "p2").exists()


def test_a_damaged_pack_is_refused_naming_the_file(cohort_factory, tmp_path):
    data = cohort_factory("msd", cases=6, shape=SHAPE)
    pack, _ = write_pack(labelled_cases(data), [], data, None, tmp_path / "p.pack", SETTINGS, tmp_path / "cache",
                         workers=1, progress=False)  # fmt: skip
    member = next(pack.glob("*.npz.xz"))
    member.write_bytes(member.read_bytes()[:100])
    refused = glioseg_in_process("train", pack, "--out", tmp_path / "run", "--cache", tmp_path / "unpacked")
    assert_clear_error(refused, member.name)
    assert not (tmp_path / "run").exists()
    (pack / "pack.json").write_text("{")
    refused = glioseg_in_process("train", pack, "--out", tmp_path / "run", "--cache", tmp_path / "unpacked")
    assert_clear_error(refused, "pack.json")
