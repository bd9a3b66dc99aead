import json

import pytest

from conftest import REPO
from glioseg.core.config import TrainConfig
from glioseg.datasets.splits import kfold_splits, patient_of

IDS = [f"case{i:02d}" for i in range(12)]
BRATS = TrainConfig.group_regex


def test_every_patient_validated_once_and_never_in_both():
    splits = kfold_splits(IDS, folds=4, seed=3, group_regex=BRATS)
    assert len(splits) == 4
    validated = [c for split in splits for c in split["val"]]
    assert sorted(validated) == IDS
    for split in splits:
        assert not set(split["train"]) & set(split["val"])
        assert sorted(split["train"] + split["val"]) == IDS
        assert len(split["val"]) == 3


def test_seeded():
    assert kfold_splits(IDS, 5, 1, BRATS) == kfold_splits(list(reversed(IDS)), 5, 1, BRATS)
    assert kfold_splits(IDS, 5, 1, BRATS) != kfold_splits(IDS, 5, 2, BRATS)


def test_the_shipped_models_splits_are_unchanged(tmp_path):
    """One scan per patient: the folds of before patients were grouped (docs/model/splits.json: 4 folds, seed 0)."""

    recorded = json.loads((REPO / "docs" / "model" / "splits.json").read_text())
    ids = sorted(recorded[0]["train"] + recorded[0]["val"])
    assert kfold_splits(ids, 4, 0, BRATS) == recorded


def test_time_points_of_one_patient_stay_in_one_fold():
    """BraTS 2023+: -000 and -001 are two scans of one patient; a fold holding one holds the other."""
    ids = [f"BraTS-GLI-{p:05d}-{t:03d}" for p in range(9) for t in range(1 + p % 3)]  # 1-3 time points each
    assert patient_of("BraTS-GLI-00004-001", BRATS) == "BraTS-GLI-00004" and patient_of("case01", BRATS) == "case01"
    for seed in range(5):
        splits = kfold_splits(ids, 3, seed, BRATS)
        assert sorted(c for s in splits for c in s["val"]) == sorted(ids)
        for split in splits:
            held = {patient_of(c, BRATS) for c in split["val"]}
            assert not held & {patient_of(c, BRATS) for c in split["train"]}
            assert 4 <= len(split["val"]) <= 8  # 18 cases: balanced as whole patients allow
    custom = kfold_splits(["p1_scan1", "p1_scan2", "p2_scan1", "p3_scan1"], 3, 0, r"^(p\d+)_")
    assert any(set(s["val"]) == {"p1_scan1", "p1_scan2"} for s in custom)


def test_too_many_folds():
    with pytest.raises(ValueError, match="patients"):
        kfold_splits(IDS[:3], 5, 0, BRATS)
    with pytest.raises(ValueError, match="patients"):  # four scans, two patients
        kfold_splits(["BraTS-GLI-00001-000", "BraTS-GLI-00001-001", "BraTS-GLI-00002-000", "BraTS-GLI-00002-001"],
                     3, 0, BRATS)  # fmt: skip
