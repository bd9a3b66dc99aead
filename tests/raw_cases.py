"""Real cases made raw the way scanners differ, for the tests and benchmarks of preparing raw scans: each sequence
on its own grid and in its own place, with the motions known."""

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from glioseg.core.registration import RigidTransform, resample, to_sitk

CROP = (slice(40, 200), slice(30, 210), slice(10, 140))  # most of the brain; registration is faster on less


def make_raw(case, out, rng, crop=CROP):
    """Each sequence moved by its own rigid motion (up to 15 degrees, 20 mm; the T1Gd not), FLAIR and T2 axial at
    0.9 x 0.9 x 5 mm, T1 stored sagittally (voxel axes permuted), T1Gd with x and y flipped: {sequence: motion}."""
    affine = case.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ [s.start for s in crop] + affine[:3, 3]
    shape = tuple(s.stop - s.start for s in crop)
    centre = to_sitk(np.zeros(shape, np.float32), affine).TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in shape])  # fmt: skip
    motions, paths = {}, {}
    for channel, role in enumerate(("FLAIR", "T1", "T1Gd", "T2")):
        motion = sitk.Euler3DTransform()
        motion.SetCenter(centre)
        if role != "T1Gd":
            motion.SetRotation(*np.radians(rng.uniform(-15, 15, 3)))
            motion.SetTranslation(tuple(rng.uniform(-20, 20, 3)))
        padded = affine.copy()  # a scanner's field of view holds the whole moved head: 25 mm more on each side
        padded[:3, 3] -= padded[:3, :3] @ np.full(3, 25.0)
        wide = tuple(n + 50 for n in shape)
        if role in ("FLAIR", "T2"):
            grid = padded @ np.diag([0.9, 0.9, 5.0, 1.0])
            size = (int(wide[0] / 0.9), int(wide[1] / 0.9), wide[2] // 5)
        elif role == "T1":
            grid = padded @ np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)
            size = (wide[1], wide[2], wide[0])
        else:
            flip = np.diag([-1.0, -1.0, 1.0, 1.0])
            flip[:2, 3] = [shape[0] - 1, shape[1] - 1]
            grid, size = affine @ flip, shape
        image = case.image[channel][crop]
        data = resample(image, affine, size, grid, RigidTransform(motion, 0, 0, 0), labels=False)
        paths[role] = out / f"{role}.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), grid), paths[role])
        motions[role] = motion
    return paths, motions
