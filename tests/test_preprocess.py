import os

import numpy as np
import pytest

from glioseg.config import PreprocessConfig
from glioseg.io import read_case
from glioseg.layouts import find_cases
from glioseg.preprocess import brain_box, cache_dataset, preprocess_case, zscore_inside


def test_brain_box_and_margin():
    image = np.zeros((4, 20, 30, 40), np.float32)
    image[2, 5:10, 12:20, 30:40] = 1
    assert brain_box(image, 0) == ((5, 10), (12, 20), (30, 40))
    assert brain_box(image, 3) == ((2, 13), (9, 23), (27, 40))


def test_zscore_inside_brain_only():
    rng = np.random.default_rng(0)
    image = rng.normal(50, 7, size=(4, 10, 10, 10)).astype(np.float32)
    brain = np.zeros((10, 10, 10), bool)
    brain[2:8, 2:8, 2:8] = True
    out = zscore_inside(image, brain)
    for channel in out:
        assert abs(channel[brain].mean()) < 1e-5 and abs(channel[brain].std() - 1) < 1e-4
        assert not channel[~brain].any()


def test_preprocess_case_crops_and_resamples(cohort_factory):
    case = read_case(find_cases(cohort_factory("msd"))[0])
    result = preprocess_case(case, PreprocessConfig(crop_margin=0))
    (x0, x1), (y0, y1), (z0, z1) = result.box
    assert result.image.shape == (4, x1 - x0, y1 - y0, z1 - z0) and result.label.shape == result.image.shape[1:]
    assert not case.image[:, :x0].any() and not case.image[:, x1:].any()
    assert (result.label > 0).sum() == (case.label > 0).sum()  # no tumour lost by cropping
    coarse = preprocess_case(case, PreprocessConfig(spacing_mm=(10.0, 10.0, 10.0), crop_margin=0))
    assert coarse.spacing == (10.0, 10.0, 10.0)
    expected = tuple(round(n * s / 10) for n, s in zip(result.image.shape[1:], case.spacing))
    assert coarse.image.shape[1:] == expected and coarse.label.shape == expected


def test_cache_is_built_once_and_rebuilt_when_source_or_settings_change(cohort_factory, tmp_path):
    data = cohort_factory("brats2021")
    cases = find_cases(data)
    config = PreprocessConfig()
    cached = cache_dataset(cases, data, tmp_path, config, workers=2, progress=False)
    assert [c.case_id for c in cached] == [c.case_id for c in cases]
    first = cached[0]
    np.testing.assert_array_equal(first.label(), preprocess_case(read_case(cases[0]), config).label)
    stamps = {c.case_id: (c.folder / "image.npy").stat().st_mtime_ns for c in cached}

    again = cache_dataset(cases, data, tmp_path, config, workers=1, progress=False)
    assert {c.case_id: (c.folder / "image.npy").stat().st_mtime_ns for c in again} == stamps

    flair = cases[1].images[0]
    os.utime(flair, ns=(flair.stat().st_atime_ns, flair.stat().st_mtime_ns + 10**9))  # source changed
    (cached[2].folder / "meta.json").unlink()  # an interrupted run: the case never finished
    rebuilt = cache_dataset(cases, data, tmp_path, config, workers=1, progress=False)
    changed = {c.case_id for c in rebuilt if (c.folder / "image.npy").stat().st_mtime_ns != stamps[c.case_id]}
    assert changed == {cases[1].case_id, cases[2].case_id}

    other = cache_dataset(cases, data, tmp_path, PreprocessConfig(crop_margin=5), workers=1, progress=False)
    assert other[0].folder.parent != first.folder.parent
    for (a, b), (c, d), n in zip(first.meta()["box"], other[0].meta()["box"], (48, 48, 32)):
        assert (c, d) == (max(a - 3, 0), min(b + 3, n))  # margin 5 instead of 2


@pytest.mark.parametrize("value", [1, 2, 3])
def test_cached_locations_point_at_their_class(cohort_factory, tmp_path, value):
    data = cohort_factory("brats2021")
    cached = cache_dataset(find_cases(data), data, tmp_path, PreprocessConfig(), workers=1, progress=False)
    for case in cached:
        label, locations = np.asarray(case.label()), case.locations()
        if value in locations:
            points = locations[value]
            assert (label[tuple(points.T)] == value).all()
