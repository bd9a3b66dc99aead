"""Figures are oriented from the affine: the same scan stored in any voxel order looks the same, the radiological
way (patient's right on the image's left, anterior / superior up)."""

import numpy as np
import pytest

from glioseg.evaluation.figures import CONVENTION, radiological_slices


def scan_with_a_marker():
    """A RAS-stored volume (x to the patient's right, y anterior, z superior) with a bright marker in the patient's
    right, anterior, superior corner; 1 mm in x, 2 mm in y, 3 mm in z."""
    volume = np.zeros((20, 16, 12), np.float32)
    volume[15:18, 11:14, 8:11] = 1  # right, anterior, superior
    return volume, np.diag([1.0, 2.0, 3.0, 1.0])


@pytest.mark.parametrize("codes", ["LPS", "RAS", "PSR", "ILA"])
def test_the_same_scan_in_any_voxel_order_gives_the_same_pictures(codes):
    import nibabel as nib

    volume, affine = scan_with_a_marker()
    loc = (16, 12, 9)
    expected = radiological_slices(volume, affine, loc)
    # store the same scan in another voxel order: reorder the array, and the affine with it
    transform = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(codes)
    )
    stored = nib.orientations.apply_orientation(volume, transform)
    stored_affine = affine @ nib.orientations.inv_ornt_aff(transform, volume.shape)
    assert nib.aff2axcodes(stored_affine) == tuple(codes)
    stored_loc = tuple(np.round(np.linalg.inv(stored_affine) @ affine @ (*loc, 1))[:3].astype(int))
    for plane, (picture, aspect) in radiological_slices(stored, stored_affine, stored_loc).items():
        np.testing.assert_array_equal(picture, expected[plane][0], err_msg=plane)
        assert aspect == pytest.approx(expected[plane][1])


def test_the_marker_shows_where_a_radiologist_expects_it():
    volume, affine = scan_with_a_marker()
    slices = radiological_slices(volume, affine, (16, 12, 9))
    axial, aspect = slices["axial"]
    rows, columns = np.nonzero(axial)
    assert rows.max() < axial.shape[0] / 2 and columns.max() < axial.shape[1] / 2  # anterior up, right on the left
    assert aspect == 2.0  # rows 2 mm (anterior-posterior), columns 1 mm
    coronal, _ = slices["coronal"]
    rows, columns = np.nonzero(coronal)
    assert rows.max() < coronal.shape[0] / 2 and columns.max() < coronal.shape[1] / 2  # superior up, right on the left
    sagittal, _ = slices["sagittal"]
    rows, columns = np.nonzero(sagittal)
    assert rows.max() < sagittal.shape[0] / 2 and columns.max() < sagittal.shape[1] / 2  # superior up, anterior left
    assert "radiological" in CONVENTION


@pytest.mark.parametrize("columns", [("T1Gd (native grid)",), ("FLAIR", "T1", "T1Gd", "T2")])
def test_the_preview_title_fits_inside_the_picture(columns):
    """The native QC picture has one column: its long title must wrap, not run off the edges."""
    import matplotlib.pyplot as plt

    from glioseg.evaluation.figures import case_preview

    volume, affine = scan_with_a_marker()
    image = np.stack([volume] * len(columns))
    figure = case_preview(image, None, "Brats18_CBICA_AAB_1_made_raw: mask on the native T1Gd grid", affine, columns)
    figure.canvas.draw()
    box = figure._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height
    top_of_pictures = max(ax.get_window_extent().y1 for ax in figure.axes)
    assert box.y0 >= top_of_pictures - 1  # above the pictures, not over them
    plt.close(figure)
