import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from glioseg.core.config import BRATS_SHAPE
from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.datasets.phantoms import make_phantom

SHAPE = (64, 64, 40)


def test_same_seed_same_phantom_other_seed_other_phantom():
    first, again, other = make_phantom(1, 7, SHAPE), make_phantom(1, 7, SHAPE), make_phantom(1, 8, SHAPE)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.label, again.label)
    assert not np.array_equal(first.label, other.label)


@pytest.fixture(scope="module")
def cohort():
    return [make_phantom(index, 0, SHAPE) for index in range(16)]


def test_skull_stripped_and_labels_inside_brain(cohort):
    for phantom in cohort:
        brain = (phantom.image > 0).any(0)
        assert 0.1 < brain.mean() < 0.3  # a brain fills about 16 % of the BraTS grid
        assert not phantom.label[~brain].any()
        assert (phantom.image >= 0).all() and phantom.image.dtype == np.float32


def test_tumours_vary_in_number_and_enhancement(cohort):
    counts = [ndimage.label(p.label > 0)[1] for p in cohort]
    assert max(counts) >= 2 and min(counts) >= 1
    assert any(not (p.label == ENHANCING).any() for p in cohort)  # rim sometimes absent
    assert all((p.label == EDEMA).any() and (p.label == CORE).any() for p in cohort)
    volumes_ml = [(p.label > 0).sum() * np.prod([240 / 64, 240 / 64, 155 / 40]) / 1000 for p in cohort]
    assert min(volumes_ml) > 5 and max(volumes_ml) > 3 * min(volumes_ml)


def test_tissue_and_tumour_contrasts_follow_real_mri(cohort):
    """Cohort medians of contrast ratios: single cases vary, as real ones do (benchmarks/phantom_realism.py)."""
    flair, t1, t1gd, t2 = range(4)
    ratios: dict[str, list[float]] = {}
    for phantom in cohort:
        image, label = phantom.image, phantom.label
        normal = (image > 0).any(0) & (label == 0)
        csf = normal & (image[t1] < np.percentile(image[t1][normal], 10))  # darkest tenth on T1

        def ratio(name, channel, mask, reference, image=image):
            if mask.sum() > 20:
                ratios.setdefault(name, []).append(
                    np.median(image[channel][mask]) / np.median(image[channel][reference])
                )

        ratio("edema/normal FLAIR", flair, label == EDEMA, normal)
        ratio("edema/normal T2", t2, label == EDEMA, normal)
        ratio("core/normal T1", t1, label == CORE, normal)
        ratio("enhancing/core T1Gd", t1gd, label == ENHANCING, label == CORE)
        ratio("csf/normal T2", t2, csf, normal)
        ratio("csf/normal FLAIR", flair, csf, normal)
    median = {name: float(np.median(values)) for name, values in ratios.items()}
    assert median["edema/normal FLAIR"] > 1.3
    assert median["edema/normal T2"] > 1.05
    assert median["core/normal T1"] < 0.95
    assert median["enhancing/core T1Gd"] > 1.2
    assert median["csf/normal T2"] > 1.1
    assert median["csf/normal FLAIR"] < 0.7


def test_full_size_phantom_is_brats_shaped():
    phantom = make_phantom(0, 0)
    assert phantom.image.shape == (4, *BRATS_SHAPE) and phantom.label.shape == BRATS_SHAPE
    np.testing.assert_array_equal(np.diag(phantom.affine), [-1, -1, 1, 1])
    brain_ml = (phantom.image > 0).any(0).sum() / 1000
    assert 1100 < brain_ml < 1900  # the real BraTS sample: 1170-1730 mL


def test_synth_command_writes_cohort_and_preview(tmp_path):
    out = tmp_path / "cohort dir"  # a space in the path must work
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "glioseg",
            "synth",
            str(out),
            "--cases",
            "2",
            "--layout",
            "brats2023",
            "--shape",
            "48",
            "48",
            "32",
            "--seed",
            "3",
            "--preview",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "BraTS-GLI-00001-000",
        "BraTS-GLI-00002-000",
        "preview.png",
    ]


def test_synth_command_refuses_unknown_layout(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "glioseg", "synth", str(tmp_path / "x"), "--layout", "dicom"],
        capture_output=True,
        text=True,
    )
    unwrapped = "".join(result.stderr.replace("│", "").split())  # typer's box wraps the message anywhere
    assert result.returncode == 2 and "'msd','brats2021','brats2023','nnunet'" in unwrapped
    assert not (tmp_path / "x").exists()
