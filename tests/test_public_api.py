"""The public API (``import glioseg``) and saved checkpoints keep working whatever moves inside the package."""

import pickletools
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import glioseg
from glioseg.inference.predict import SHIPPED_MODELS
from glioseg.network.runs import LAST_CHECKPOINT


def test_every_public_name_is_there():
    assert all(hasattr(glioseg, name) for name in glioseg.__all__)
    assert glioseg.__version__ and glioseg.__version__ != "0+unknown"  # read from the installed metadata


def test_the_public_api_from_reading_to_an_overlay(tiny_runs, cohort_factory, tmp_path):
    files = glioseg.find_cases(cohort_factory("msd", cases=1, shape=(40, 40, 32)))[0]
    case = glioseg.load_case(files)
    model = glioseg.load_model(tiny_runs(0), device="cpu")
    prediction = model.predict(case)
    assert np.asarray(prediction).shape == case.label.shape
    written = glioseg.write_label(tmp_path / "mask.nii.gz", prediction.label, case)
    assert np.array_equal(glioseg.read_case(files).label, case.label) and written.exists()
    assert set(glioseg.sens_spec_table(prediction, case.label).index) == {"edema", "core", "enhancing"}
    glioseg.plot_overlay(case, prediction).savefig(tmp_path / "overlay.png")
    assert (tmp_path / "overlay.png").stat().st_size > 1000


def test_the_public_api_segments_a_case_lacking_a_sequence(tiny_runs, cohort_factory, tmp_path):
    source = glioseg.find_cases(cohort_factory("brats2021", cases=1, shape=(40, 40, 32)))[0]
    folder = Path(shutil.copytree(source.images[0].parent, tmp_path / source.case_id))
    (folder / f"{source.case_id}_flair.nii.gz").unlink()
    with pytest.raises(glioseg.InputError, match="FLAIR image missing"):
        glioseg.load_case(folder)
    case = glioseg.load_case(folder, complete=False)
    assert case.absent == ("FLAIR",)
    review = glioseg.load_model(tiny_runs(0), device="cpu").predict(case).review
    assert review.absent == ("FLAIR",) and review.advised and review.unreliable == ("WT", "TC", "ET")  # unmeasured


def pickled_globals(checkpoint) -> set[str]:
    """The ``module.name`` of every class or function a torch checkpoint's pickle refers to."""
    with zipfile.ZipFile(checkpoint) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    found, strings = set(), []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            found.add(argument.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
        elif isinstance(argument, str):
            strings.append(argument)
    return found


def test_checkpoints_name_no_glioseg_class(tiny_runs):
    """A checkpoint holds tensors, numbers, strings and dicts (the config as a dict): a run saved before a module
    moved, and the shipped model, still load."""
    for path in (*SHIPPED_MODELS, tiny_runs(0) / LAST_CHECKPOINT):
        names = pickled_globals(path)
        assert any(name.startswith("torch.") for name in names), path  # the reader sees the pickle's globals
        assert not [name for name in names if name.startswith("glioseg")], path
