import pytest

from glioseg.splits import kfold_splits

IDS = [f"case{i:02d}" for i in range(12)]


def test_every_patient_validated_once_and_never_in_both():
    splits = kfold_splits(IDS, folds=4, seed=3)
    assert len(splits) == 4
    validated = [c for split in splits for c in split["val"]]
    assert sorted(validated) == IDS
    for split in splits:
        assert not set(split["train"]) & set(split["val"])
        assert sorted(split["train"] + split["val"]) == IDS
        assert len(split["val"]) == 3


def test_seeded():
    assert kfold_splits(IDS, 5, seed=1) == kfold_splits(list(reversed(IDS)), 5, seed=1)
    assert kfold_splits(IDS, 5, seed=1) != kfold_splits(IDS, 5, seed=2)


def test_too_many_folds():
    with pytest.raises(ValueError, match="folds"):
        kfold_splits(IDS[:3], folds=5)
