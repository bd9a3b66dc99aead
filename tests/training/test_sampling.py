import numpy as np
import pytest
import torch

from glioseg.core.config import PreprocessConfig
from glioseg.core.labels import ENHANCING
from glioseg.datasets.cases import find_cases
from glioseg.datasets.preprocess import cache_dataset
from glioseg.training.augment import augment_batch, random_flips, random_rotate_scale, simulate_thick_slices
from glioseg.training.sampling import PatchBatches, batch_loader, extract_patch


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
        centre = batch["targets"][:, :, 12, 12, 12]  # (B, 3): edema, core, enhancing share of the centre voxel
        forced_rows = batch["forced"].nonzero()[:, 0]
        chosen = batch["centre_class"][forced_rows]
        assert (centre[forced_rows, chosen - 1] == 1).all()  # centred on the chosen class
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
    return torch.from_numpy(pattern + 10 * np.arange(4, dtype=np.float32)[None, :, None, None, None])


def test_flips_never_touch_channels():
    rng = np.random.default_rng(0)
    for _ in range(20):
        volumes = channel_coded_batch(rng)
        flipped = random_flips(volumes, rng)
        for c in range(4):
            values = flipped[:, c]
            assert values.min() >= 10 * c and values.max() < 10 * c + 1
            np.testing.assert_allclose(flipped[:, c] - 10 * c, flipped[:, 0], atol=1e-5)  # channels moved together


def test_rotation_keeps_channels_apart():
    rng = np.random.default_rng(1)
    volumes = channel_coded_batch(rng)
    rotated = random_rotate_scale(volumes, rng, p_rotate=1.0, p_scale=1.0)
    for c in range(4):
        # at the edges, bilinear sampling blends with the zero padding; the centre stays inside the patch
        assert rotated[:, c].max() < 10 * c + 1 + 1e-4
        centre = rotated[:, c, 7:9, 7:9, 7:9]
        assert centre.min() >= 10 * c - 1e-4 and centre.max() < 10 * c + 1 + 1e-4


def blob_centres(volume) -> np.ndarray:
    """Centres of mass (voxels) of the two blobs of a ``(X, Y, Z)`` volume."""
    from scipy import ndimage

    labels, count = ndimage.label(np.asarray(volume) > 0.2)
    assert count == 2
    return np.array(ndimage.center_of_mass(np.asarray(volume), labels, [1, 2]))


@pytest.mark.parametrize("seed", range(5))
def test_rotation_keeps_distances_on_a_patch_whose_sides_differ(seed):
    """A rotation moves points rigidly, in millimetres (isotropic voxels), whatever the patch's shape: rotating in
    affine_grid's normalised coordinates would shear a 48 x 24 x 32 patch and change the distance."""
    import torch

    volume = torch.zeros(1, 1, 48, 24, 32)
    volume[0, 0, 12:15, 11:14, 15:18] = 1  # two small cubes 21 voxels apart along x, 6 along z
    volume[0, 0, 33:36, 11:14, 9:12] = 1
    before = blob_centres(volume[0, 0])
    angles = iter(np.random.default_rng(seed).uniform(0.2, 0.5, size=(3,)))

    class Always:  # every transform applied, no scaling, known angles
        def random(self):
            return 0.0

        def uniform(self, low, high, size=None):
            return np.array([next(angles) for _ in range(size)]) if size else 1.0

    rotated = random_rotate_scale(volume, Always(), p_rotate=1.0, p_scale=0.0)
    after = blob_centres(rotated[0, 0])
    assert np.linalg.norm(after[0] - after[1]) == pytest.approx(np.linalg.norm(before[0] - before[1]), abs=0.3)
    assert not np.allclose(after, before, atol=1)  # it did rotate


def test_augmentation_moves_image_and_targets_together():
    import torch

    rng = np.random.default_rng(2)
    image = channel_coded_batch(rng)
    targets = (image[:, :3] - 10 * torch.arange(3.0).view(1, 3, 1, 1, 1)) / 2  # the image's own pattern, in [0, 0.5)
    out, out_targets = augment_batch(image, targets, np.random.default_rng(3))
    assert out.shape == image.shape and out_targets.shape == targets.shape
    assert out_targets.min() >= 0 and out_targets.max() < 0.5 + 1e-4
    same = np.random.default_rng(3)
    spatial = random_flips(random_rotate_scale(torch.cat([image, targets], 1), same), same)
    assert torch.equal(out_targets, spatial[:, 4:])  # the same rotation and flips as the image got


def test_modality_dropout_zeroes_one_or_two_sequences_of_the_share_asked(cached):
    plain = PatchBatches(cached, (16, 16, 16), batch=4, seed=3)
    dropping = PatchBatches(cached, (16, 16, 16), batch=4, seed=3, modality_dropout=0.5)
    lost_counts = []
    for step in range(100):
        kept, dropped = plain[step]["image"], dropping[step]["image"]
        for patch in range(4):
            lost = [c for c in range(4) if not dropped[patch, c].any() and kept[patch, c].any()]
            others = [c for c in range(4) if c not in lost]
            np.testing.assert_array_equal(dropped[patch, others], kept[patch, others])  # the rest untouched
            lost_counts.append(len(lost))
        np.testing.assert_array_equal(dropping[step]["targets"], plain[step]["targets"])
    counts = np.bincount(lost_counts, minlength=3)
    assert max(lost_counts) <= 2
    assert abs(counts[0] / 400 - 0.5) < 0.08  # half the patches keep every sequence
    assert 2 < counts[1] / max(counts[2], 1) < 5  # one sequence three times as often as two
    np.testing.assert_array_equal(PatchBatches(cached, (16, 16, 16), batch=4, seed=3, modality_dropout=0.0)[5]["image"],
                                  plain[5]["image"])  # no dropout: the batches recipes always saw  # fmt: skip


def test_thick_slices_average_along_one_axis_of_some_sequences_and_leave_the_rest():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.standard_normal((64, 4, 12, 12, 12)).astype(np.float32))
    made = simulate_thick_slices(image.clone(), np.random.default_rng(1), probability=0.5)
    changed = [(p, c) for p in range(64) for c in range(4) if not torch.equal(made[p, c], image[p, c])]
    patches = {p for p, _ in changed}
    assert 20 < len(patches) < 44  # about half the patches
    assert all(0 < sum(q == p for q, _ in changed) <= 4 for p in patches)
    for patch, channel in changed:  # thick along one axis: smoother there (white noise loses variance), not across
        differences = [float(made[patch, channel].diff(dim=axis).abs().mean()) for axis in range(3)]
        original = float(image[patch, channel].diff(dim=0).abs().mean())
        assert min(differences) < 0.7 * original, differences
        assert float(made[patch, channel].mean()) == pytest.approx(float(image[patch, channel].mean()), abs=0.1)
    unchanged = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 4, 8, 8, 8)).astype(np.float32))
    generator = np.random.default_rng(5)
    assert torch.equal(simulate_thick_slices(unchanged.clone(), generator, 0.0), unchanged)
    assert generator.random() == np.random.default_rng(5).random()  # no draw at 0: recipes see the same batches


class TwoLesionCase:
    """A cached case (what PatchBatches reads) with one large enhancing lesion (1000 voxels) and one small (8)."""

    def __init__(self):
        self._label = np.zeros((40, 40, 40), np.uint8)
        self._label[5:15, 5:15, 5:15] = ENHANCING
        self._label[30:32, 30:32, 30:32] = ENHANCING

    def image(self):
        return np.zeros((4, 40, 40, 40), np.float32)

    def targets(self):
        return np.stack([np.zeros_like(self._label), self._label > 0, self._label > 0]).astype(np.uint8) * 255

    def label(self):
        return self._label

    def locations(self):
        return {ENHANCING: np.argwhere(self._label == ENHANCING).astype(np.int16)}


@pytest.mark.parametrize(("balanced", "small_share"), [(False, (0.0, 0.03)), (True, (0.4, 0.6))])
def test_balanced_enhancing_lesions_are_centred_on_as_often_as_each_other(balanced, small_share):
    sampler = PatchBatches([TwoLesionCase()], (8, 8, 8), batch=4, foreground_fraction=1.0, augment=False,
                           balance_enhancing_lesions=balanced)  # fmt: skip
    in_small = []
    for step in range(100):
        batch = sampler[step]
        assert batch["forced"].all() and (batch["centre_class"] == ENHANCING).all()
        assert (batch["targets"][:, 2, 4, 4, 4] == 1).all()  # centred on enhancing tumour
        in_small += (batch["targets"][:, 2].sum((1, 2, 3)) <= 8).tolist()  # the 8-voxel lesion (the other: >= 64)
    share = float(np.mean(in_small))
    assert small_share[0] <= share <= small_share[1], share
