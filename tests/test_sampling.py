import numpy as np
import pytest

from glioseg.augment import augment_batch, random_flips, random_rotate_scale
from glioseg.config import PreprocessConfig
from glioseg.layouts import find_cases
from glioseg.preprocess import cache_dataset
from glioseg.sampling import PatchBatches, batch_loader, extract_patch


@pytest.fixture(scope="module")
def cached(cohort_factory, tmp_path_factory):
    data = cohort_factory("brats2021", cases=4)
    return cache_dataset(find_cases(data), data, tmp_path_factory.mktemp("cache"), PreprocessConfig(), 1, False)


def test_extract_patch_pads_outside_the_volume():
    volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(1, 4, 5, 6) + 1
    patch = extract_patch(volume, np.array([-2, 1, 3]), (4, 4, 4))
    assert patch.shape == (1, 4, 4, 4)
    assert not patch[:, :2].any()  # two rows before the volume
    np.testing.assert_array_equal(patch[0, 2:, :, :3], volume[0, :2, 1:5, 3:6])
    assert not patch[..., 3].any()  # one slice past the end
    assert not extract_patch(volume, np.array([10, 0, 0]), (2, 2, 2)).any()


def test_foreground_fraction_and_class_balance_hold(cached):
    sampler = PatchBatches(cached, (24, 24, 24), batch=4, foreground_fraction=1 / 3, seed=1, augment=False)
    forced, classes = [], []
    for step in range(300):
        batch = sampler[step]
        forced += batch["forced"].tolist()
        classes += batch["centre_class"][batch["forced"]].tolist()
        centre = batch["label"][:, 12, 12, 12]
        chosen = batch["centre_class"]
        assert (centre[batch["forced"]] == chosen[batch["forced"]]).all()  # centred on the chosen class
    fraction = np.mean(forced)
    assert abs(fraction - 1 / 3) < 0.05, fraction
    shares = np.bincount(classes, minlength=4)[1:] / len(classes)
    assert np.all(np.abs(shares - 1 / 3) < 0.08), shares  # edema, core, enhancing equally often


def test_batches_depend_only_on_seed_rank_and_step(cached):
    a = PatchBatches(cached, (16, 16, 16), batch=2, seed=5)
    b = PatchBatches(cached, (16, 16, 16), batch=2, seed=5)
    other_rank = PatchBatches(cached, (16, 16, 16), batch=2, seed=5, rank=1)
    np.testing.assert_array_equal(a[7]["image"], b[7]["image"])
    assert not np.array_equal(a[7]["image"], a[8]["image"])
    assert not np.array_equal(a[7]["image"], other_rank[7]["image"])
    via_workers = [batch["image"] for batch in batch_loader(a, 7, 2, workers=2)]
    np.testing.assert_array_equal(via_workers[0], b[7]["image"])
    np.testing.assert_array_equal(via_workers[1], b[8]["image"])


def channel_coded_batch(rng):
    """Channel c holds values in [10c, 10c + 1): any mixing of channels would show."""
    import torch

    pattern = rng.random((2, 1, 16, 16, 16)).astype(np.float32)
    image = torch.from_numpy(pattern + 10 * np.arange(4, dtype=np.float32)[None, :, None, None, None])
    label = torch.from_numpy((pattern[:, 0] * 4).astype(np.uint8))
    return image, label, pattern


def test_flips_never_touch_channels_and_keep_label_aligned():
    rng = np.random.default_rng(0)
    for _ in range(20):
        image, label, _ = channel_coded_batch(rng)
        flipped, flipped_label = random_flips(image, label, rng)
        for c in range(4):
            values = flipped[:, c]
            assert values.min() >= 10 * c and values.max() < 10 * c + 1
        # the label moves with the image: label = floor(4 * (channel 0 value))
        np.testing.assert_array_equal((flipped[:, 0] * 4).to(label.dtype), flipped_label)


def test_spatial_and_full_augmentation_keep_channels_and_shapes():
    import torch

    rng = np.random.default_rng(1)
    image, label, _ = channel_coded_batch(rng)
    rotated, rotated_label = random_rotate_scale(image, label, rng, p_rotate=1.0, p_scale=1.0)
    for c in range(4):
        # at the edges, bilinear sampling blends with the zero padding; the centre stays inside the patch
        assert rotated[:, c].max() < 10 * c + 1 + 1e-4
        centre = rotated[:, c, 7:9, 7:9, 7:9]
        assert centre.min() >= 10 * c - 1e-4 and centre.max() < 10 * c + 1 + 1e-4
    assert rotated_label.dtype == torch.uint8 and set(rotated_label.unique().tolist()) <= {0, 1, 2, 3}
    out, out_label = augment_batch(image, label, rng)
    assert out.shape == image.shape and out_label.shape == label.shape
