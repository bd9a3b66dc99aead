"""glioseg's sliding window gives what MONAI's sliding_window_inference gives (it replaces it to start faster)."""

import pytest
import torch
from monai.inferers import sliding_window_inference

from glioseg.core.config import ModelConfig
from glioseg.inference.sliding_window import MIRRORS, ensemble_probabilities, sliding_window, window_starts


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


class Asymmetric(torch.nn.Module):
    """A fake network that is not flip-symmetric: a random 3x3x3 convolution plus a ramp along each axis."""

    def __init__(self, head: str = "regions"):
        super().__init__()
        self.config = ModelConfig(head=head)
        self.conv = torch.nn.Conv3d(4, self.config.out_channels, 3, padding=1)

    def forward(self, x):
        ramps = sum(torch.linspace(-1, 1, n).view(*[-1 if a == axis else 1 for a in range(3)])
                    for axis, n in enumerate(x.shape[2:]))  # fmt: skip
        return self.conv(x) + ramps


@pytest.mark.parametrize("head", ["regions", "classes"])
def test_mirror_tta_averages_the_flipped_back_outputs(head):
    """TTA = mean over the 8 mirrors of (flip, predict, flip back), computed here by hand on one window."""
    torch.manual_seed(0)
    network = Asymmetric(head).eval()
    image = torch.randn(4, 16, 12, 8)
    mean, variance = ensemble_probabilities([network], image, (16, 12, 8), overlap=0.5, mirror=True)
    members = []
    with torch.no_grad():
        for dims in MIRRORS:
            flipped = torch.flip(image[None], dims) if dims else image[None]
            logits = network(flipped)
            probabilities = torch.sigmoid(logits) if head == "regions" else torch.softmax(logits, dim=1)
            members.append((torch.flip(probabilities, dims) if dims else probabilities)[0])
    expected = torch.stack(members)
    torch.testing.assert_close(mean, expected.mean(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(variance, expected.var(0, unbiased=False).mean(0), rtol=0, atol=1e-6)
    plain, _ = ensemble_probabilities([network], image, (16, 12, 8), overlap=0.5, mirror=False)
    assert not torch.allclose(plain, mean, atol=1e-3)  # the network is asymmetric: mirroring changes the mean


@pytest.mark.parametrize("head", ["regions", "classes"])
def test_temperature_divides_the_logits_and_keeps_the_labels(head):
    torch.manual_seed(0)
    network = Asymmetric(head).eval()
    image = torch.randn(4, 16, 12, 8)
    plain, _ = ensemble_probabilities([network], image, (16, 12, 8), overlap=0.5)
    network.config = ModelConfig(head=head, temperature=2.0)
    scaled, _ = ensemble_probabilities([network], image, (16, 12, 8), overlap=0.5)
    with torch.no_grad():
        logits = network(image[None])[0] / 2.0
    expected = torch.sigmoid(logits) if head == "regions" else torch.softmax(logits, dim=0)
    torch.testing.assert_close(scaled, expected, rtol=0, atol=1e-6)
    if head == "classes":  # softer, same argmax
        assert scaled.max(0).values.mean() < plain.max(0).values.mean()
        assert torch.equal(scaled.argmax(0), plain.argmax(0))
