"""`glioseg synth-followup`: a synthetic follow-up of a real labelled case with known changes, to try ``glioseg
compare`` on: the tumour grown (or, negative, shrunk), an enhancing lesion with an edema rim added in the other
hemisphere, the whole head moved rigidly. Changed voxels take their new class's mean intensity of the case in each
sequence, so a model sees the change.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from glioseg.core.config import FollowupConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.core.registration import RigidTransform, resample, to_sitk
from glioseg.datasets.cases import Case, read_case
from glioseg.datasets.layouts import LAYOUTS, MODALITIES
from glioseg.evaluation.metrics import volumes_ml

WRITTEN_LAYOUT = LAYOUTS["brats2021"]


def changed_label(label: np.ndarray, brain: np.ndarray, changes: FollowupConfig) -> np.ndarray:
    """The follow-up's internal label before the motion: grown (edema around, enhancing tumour with it) or shrunk,
    plus a new enhancing lesion mirrored across the midline from the tumour's centre, with 4 voxels of edema."""
    changed, tumour = label.copy(), label > 0
    grow = changes.grow_voxels
    if grow > 0:
        grown = ndimage.binary_dilation(tumour, iterations=grow) & brain
        changed[grown & ~tumour] = EDEMA
        changed[ndimage.binary_dilation(label == ENHANCING, iterations=grow) & grown] = ENHANCING
    elif grow < 0:
        changed[tumour & ~ndimage.binary_erosion(tumour, iterations=-grow)] = 0
    radius = changes.new_lesion_radius_mm
    if radius > 0:
        centre = np.argwhere(tumour).mean(0)
        centre[0] = label.shape[0] - 1 - centre[0]  # mirrored across the midline
        grid = np.ogrid[tuple(slice(0, n) for n in label.shape)]
        distance = np.sqrt(sum((axis - c) ** 2 for axis, c in zip(grid, centre)))
        changed[(distance <= radius + 4) & (changed == 0) & brain] = EDEMA
        changed[(distance <= radius) & brain] = ENHANCING
    return changed


def painted_image(case: Case, label: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """The case's image where each changed voxel takes its new class's mean intensity in each sequence."""
    image = case.image.copy()
    for value in (0, EDEMA, CORE, ENHANCING):
        changed = (label == value) & (case.label != value) & brain
        if changed.any() and (case.label == value).any():
            for channel in range(len(MODALITIES)):
                image[channel][changed] = image[channel][(case.label == value) & brain].mean()
    return image


def head_motion(case: Case, changes: FollowupConfig) -> RigidTransform:
    """The rigid motion of the whole head, about the grid's centre."""
    import SimpleITK as sitk

    motion = sitk.Euler3DTransform()
    centre = [(n - 1) / 2 for n in case.image.shape[1:]]
    motion.SetCenter(to_sitk(case.image[0], case.affine).TransformContinuousIndexToPhysicalPoint(centre))
    motion.SetRotation(*(float(np.radians(a)) for a in changes.rotation_degrees))
    motion.SetTranslation(tuple(float(t) for t in changes.translation_mm))
    return RigidTransform(motion, 0.0, 0.0, 0.0)


def write_followup(case_path: Path, out: Path, changes: FollowupConfig = FollowupConfig()) -> dict:
    """Write the follow-up of ``case_path`` as a BraTS 2018-style case folder in ``out``; returns what was done (with
    the follow-up's label volumes, before the motion), also saved as ``<out>/followup.json``."""
    case = read_case(case_path)
    if case.label is None:
        raise InputError(Path(case_path), "the case has no label to change", "give a case with its expert label")
    brain = case.image[0] > 0
    label = changed_label(case.label, brain, changes)
    image = painted_image(case, label, brain)
    moved = head_motion(case, changes)
    case_id, shape = f"{case.case_id}_followup", label.shape
    for channel, path in enumerate(WRITTEN_LAYOUT.image_paths(Path(out), case_id)):
        volume = resample(image[channel], case.affine, shape, case.affine, moved, labels=False).astype(np.float32)
        with atomic_path(path) as temporary:
            nib.save(nib.Nifti1Image(volume, case.affine, case.header), temporary)
    moved_label = WRITTEN_LAYOUT.convention.from_internal(resample(label, case.affine, shape, case.affine, moved,
                                                                   labels=True))  # fmt: skip
    with atomic_path(WRITTEN_LAYOUT.label_path(Path(out), case_id)) as temporary:
        nib.save(nib.Nifti1Image(moved_label, case.affine, case.header), temporary)
    record = {
        "case": case_id, "from": str(case_path), "grow_voxels": changes.grow_voxels,
        "new_lesion_radius_mm": changes.new_lesion_radius_mm, "rotation_degrees": list(changes.rotation_degrees),
        "translation_mm": list(changes.translation_mm),
        "volumes_ml": {name: round(v, 3) for name, v in volumes_ml(label, case.spacing).items()},
    }  # fmt: skip
    (Path(out) / "followup.json").write_text(json.dumps(record, indent=1))
    return record
