import json

import pytest

from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, claim_folder, remove_stale_temporaries


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_endings_and_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "mask.nii.gz"
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent and temporary.name.endswith(".nii.gz")
        temporary.write_text("new")
    assert target.read_text() == "new" and [p.name for p in target.parent.iterdir()] == ["mask.nii.gz"]


def test_claim_folder_refuses_other_settings_unless_overwrite(tmp_path):
    record = tmp_path / "out" / "predict.json"
    claim_folder(record, {"model": "a", "tta": False}, overwrite=False, what="predictions")
    claim_folder(record, {"model": "a", "tta": False}, overwrite=False, what="predictions")  # same: resumes
    with pytest.raises(InputError, match="--overwrite"):
        claim_folder(record, {"model": "a", "tta": True}, overwrite=False, what="predictions")
    claim_folder(record, {"model": "a", "tta": True}, overwrite=True, what="predictions")
    assert json.loads(record.read_text()) == {"model": "a", "tta": True}


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".tmp-1234abcd-mask.nii.gz").write_bytes(b"half")
    (tmp_path / "mask.nii.gz").write_bytes(b"whole")
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nii.gz"]
    assert remove_stale_temporaries(tmp_path / "missing") == 0


def test_an_output_folder_that_is_a_file_is_a_clear_error(tmp_path):
    from glioseg.core.files import make_folder

    (tmp_path / "taken").write_text("a file")
    with pytest.raises(InputError, match="is a file") as refused:
        make_folder(tmp_path / "taken")
    assert refused.value.path == tmp_path / "taken"
    with pytest.raises(InputError, match="cannot be made"):
        make_folder(tmp_path / "taken" / "below")
    assert make_folder(tmp_path / "new" / "deeper").is_dir()
