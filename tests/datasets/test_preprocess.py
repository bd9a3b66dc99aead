import os

import nibabel as nib
import numpy as np
import pytest
import torch

import glioseg.datasets.preprocess as preprocessing
from glioseg.core.config import PreprocessConfig
from glioseg.core.geometry import label_from_fractions, tumour_fractions
from glioseg.core.labels import MSD
from glioseg.datasets.cases import Case, find_cases, read_case
from glioseg.datasets.layouts import CaseFiles
from glioseg.datasets.preprocess import brain_box, cache_dataset, preprocess_case, zscore_inside
from glioseg.evaluation.metrics import case_metrics
from glioseg.inference.postprocess import to_crop_grid


def made_case(image: np.ndarray, label: np.ndarray | None) -> Case:
    """A case in memory on a 1 mm grid."""
    header = nib.Nifti1Image(image[0], np.eye(4)).header
    return Case("made", image, label, np.eye(4), header, CaseFiles("made", "msd", (), None, MSD))


def thin_rim_case(shape=(61, 57, 53), centre=(30.3, 28.6, 26.2), rim_mm=3.0) -> Case:
    """A tumour with a 3 mm enhancing rim (the BraTS habit) around a core, in edema, on a 1 mm grid."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    radius = np.linalg.norm(grid - np.array(centre), axis=-1)
    label = np.zeros(shape, np.uint8)
    label[radius < 21] = 1
    label[radius < 15] = 3
    label[radius < 15 - rim_mm] = 2
    image = np.where(radius < 28, 1.0, 0.0).astype(np.float32)[None].repeat(4, 0)
    return made_case(image, label)


def enhancing_dice_after_round_trip(fractions: torch.Tensor, truth: np.ndarray, box) -> float:
    """ET Dice of network-grid fractions brought back to the 1 mm crop as predictions are (trilinear, argmax)."""
    back = label_from_fractions(to_crop_grid(fractions, box))
    return case_metrics(back, truth, distances=False)["ET"]["dice"]


def test_a_thin_rim_survives_resampling_to_2mm():
    """1 mm -> 2 mm -> 1 mm of a 3 mm rim: nearest neighbour (each coarse voxel one corner voxel) kept ET Dice 0.78;
    the tumour fractions (what the network is taught) keep 0.97, their argmax (the cached label) 0.89."""
    case = thin_rim_case()
    result = preprocess_case(case, PreprocessConfig(spacing_mm=(2.0, 2.0, 2.0), crop_margin=0))
    truth = case.label[tuple(slice(a, b) for a, b in result.box)]
    assert result.fractions.shape == (3, *result.image.shape[1:]) and result.label.shape == result.image.shape[1:]
    assert enhancing_dice_after_round_trip(torch.from_numpy(result.fractions), truth, result.box) > 0.93
    hard = tumour_fractions(result.label)
    assert enhancing_dice_after_round_trip(hard, truth, result.box) > 0.85
    # partial volume is kept: the enhancing volume in mL is that of the truth
    assert result.fractions[2].sum() * 8 == pytest.approx((truth == 3).sum(), rel=0.05)


def test_resampling_gives_the_values_of_trilinear_interpolation():
    """A parabola along x resampled from 1 mm to 2 mm: each coarse voxel is the mean of the two fine voxels it covers
    (a straight ramp would not tell: z-scoring hides any sampling that is affine in x, nearest neighbour too)."""
    x = np.arange(40, dtype=np.float32)
    image = np.broadcast_to((1 + 0.05 * x**2)[:, None, None], (40, 20, 30)).copy()
    image = np.stack([image, 2 * image, image + 3, image * 0.5])
    label = np.zeros((40, 20, 30), np.uint8)
    label[:7] = 3  # seven fine slabs of enhancing tumour: the 4th coarse slab is half enhancing
    result = preprocess_case(made_case(image, label), PreprocessConfig(spacing_mm=(2.0, 2.0, 2.0), crop_margin=0))
    assert result.image.shape == (4, 20, 10, 15) and result.spacing == (2.0, 2.0, 2.0)
    # z-scored inside the brain (everywhere here): undo it to compare with the ramp's coarse values
    fine = 1 + 0.05 * np.arange(40.0) ** 2
    expected = (fine[0::2] + fine[1::2]) / 2
    coarse = result.image[0, :, 0, 0]
    np.testing.assert_allclose(coarse, (expected - expected.mean()) / expected.std(), atol=1e-5)
    np.testing.assert_allclose(result.fractions[2, :, 0, 0], [1, 1, 1, 0.5] + [0] * 16, atol=1e-6)
    assert not result.fractions[:2].any()


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


def test_a_new_preprocessing_version_rebuilds_the_cache(cohort_factory, tmp_path, monkeypatch):
    """Caches written by another preprocessing version are never reused (they are keyed by it)."""
    data = cohort_factory("brats2021")
    cases = find_cases(data)[:1]
    old = cache_dataset(cases, data, tmp_path, PreprocessConfig(), workers=1, progress=False)[0]
    stamp = (old.folder / "image.npy").stat().st_mtime_ns
    monkeypatch.setattr(preprocessing, "PREPROCESS_VERSION", preprocessing.PREPROCESS_VERSION + 1)
    new = cache_dataset(cases, data, tmp_path, PreprocessConfig(), workers=1, progress=False)[0]
    assert new.folder != old.folder and (new.folder / "meta.json").exists()
    assert (old.folder / "image.npy").stat().st_mtime_ns == stamp  # the old one untouched, not read
    np.testing.assert_array_equal(new.targets(), np.round(tumour_fractions(new.label()).numpy() * 255))


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
