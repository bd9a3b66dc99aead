"""glioseg's sliding window gives what MONAI's sliding_window_inference gives (it replaces it to start faster)."""

import pytest
import torch
from monai.inferers import sliding_window_inference

from glioseg.inference import MIRRORS, sliding_window, window_starts


@pytest.mark.parametrize(
    ("shape", "patch", "overlap", "batch"),
    [((72, 87, 70), (48, 48, 48), 0.5, 2), ((30, 50, 20), (32, 32, 32), 0.25, 3), ((33, 40, 48), (16, 16, 16), 0.6, 4),
     ((32, 32, 32), (32, 32, 32), 0.5, 1)],
)  # fmt: skip
def test_sliding_window_equals_monai(shape, patch, overlap, batch):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv3d(4, 3, 3, padding=1), torch.nn.Tanh())
    image = torch.randn(1, 4, *shape)
    with torch.inference_mode():
        expected = sliding_window_inference(image, patch, batch, network, overlap=overlap, mode="gaussian")
        ours = sliding_window(image, patch, overlap, network, batch)
    assert ours.shape == expected.shape == (1, 3, *shape)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_windows_cover_the_axis_and_end_flush():
    assert window_starts(100, 48, 0.5) == [0, 24, 48, 52]
    assert window_starts(48, 48, 0.5) == [0]
    for size, patch, overlap in ((100, 48, 0.5), (61, 16, 0.25), (17, 16, 0.9)):
        starts = window_starts(size, patch, overlap)
        covered = set().union(*(range(s, s + patch) for s in starts))
        assert covered == set(range(size)) and starts[-1] == size - patch


def test_the_eight_mirrors_are_distinct_spatial_flips():
    assert len(MIRRORS) == len(set(MIRRORS)) == 8
    assert all(set(dims) <= {2, 3, 4} for dims in MIRRORS)
