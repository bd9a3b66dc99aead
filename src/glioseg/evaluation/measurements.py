"""Per-lesion measurements of a label map, the way follow-up reading measures tumours.

Each lesion is a 26-connected component of the whole tumour (its volume per class) and, separately, of the
enhancing tumour (the lesions RANO measures). For each: volume, centroid (voxel and scanner coordinates), and on
the axial slice where it is longest, the longest diameter and the longest diameter perpendicular to it, their
product (RANO's bidimensional product) and whether it is measurable (both at least 10 mm).

"Axial" is the voxel axis closest to the scanner's inferior-superior axis (from the affine), so a sagittal or
coronal acquisition is measured in the patient's axial plane too, as far as its grid allows. A diameter runs
between the outer edges of the extreme voxels: the distance of their centres plus one in-plane voxel.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from glioseg.core.files import atomic_path
from glioseg.core.labels import CLASS_NAMES, REGION_CLASSES, STRUCTURE_NAMES, class_mask
from glioseg.evaluation.lesionwise import components
from glioseg.evaluation.metrics import volumes_ml

MEASURABLE_MM = 10.0
"""RANO: a lesion is measurable when both perpendicular diameters are at least 10 mm."""
SMALLEST_SHOWN_ML = 0.1
"""The report and the viewer list lesions of at least this volume (specks would crowd them; lesions.csv has all)."""
LESION_KINDS = {"tumour": REGION_CLASSES["WT"], "enhancing": REGION_CLASSES["ET"]}
"""Which classes make up each kind of lesion: whole-tumour components, enhancing components."""
LESION_FIELDS = (
    "case_id", "kind", "lesion", "volume_ml", *(f"{name}_ml" for name in CLASS_NAMES.values()),
    "centroid_i", "centroid_j", "centroid_k", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
    "axial_slice", "longest_diameter_mm", "perpendicular_diameter_mm", "product_mm2", "measurable",
)  # fmt: skip
"""The columns of ``lesions.csv``."""


def axial_axis(affine: np.ndarray) -> int:
    """The voxel axis pointing most along the scanner's inferior-superior (z) axis."""
    return int(np.argmax(np.abs(affine[2, :3]) / np.linalg.norm(affine[:3, :3], axis=0)))


def diameters(points_mm: np.ndarray, pixel_mm: float) -> tuple[float, float]:
    """The longest diameter of a slice's lesion pixels (``(n, 2)`` centres in mm) and the longest chord at right
    angles to it, both edge to edge (``pixel_mm`` added): the RANO pair."""
    if len(points_mm) < 2:
        return (pixel_mm, pixel_mm) if len(points_mm) else (0.0, 0.0)
    try:
        corners = points_mm[ConvexHull(points_mm).vertices]
    except QhullError:  # all pixels on one line
        corners = points_mm
    gaps = corners[:, None, :] - corners[None, :, :]
    lengths = np.linalg.norm(gaps, axis=-1)
    first, second = np.unravel_index(np.argmax(lengths), lengths.shape)
    direction = gaps[first, second] / max(lengths[first, second], 1e-12)
    along, across = points_mm @ direction, points_mm @ np.array([-direction[1], direction[0]])
    # the perpendicular chords: pixels grouped by their position along the long axis, one group per pixel width
    positions = np.round((along - along.min()) / pixel_mm).astype(int)
    order = np.argsort(positions)
    groups = np.split(across[order], np.flatnonzero(np.diff(positions[order])) + 1)
    perpendicular = max(float(group.max() - group.min()) for group in groups)
    return float(lengths[first, second]) + pixel_mm, perpendicular + pixel_mm


def numbered_lesions(label: np.ndarray, kind: str) -> tuple[np.ndarray, int]:
    """The lesions of one kind as a map of ids, lesion 1 the largest (the numbering of ``lesions.csv``)."""
    lesions, count = components(class_mask(label, LESION_KINDS[kind]))
    if count:
        sizes = np.bincount(lesions.ravel(), minlength=count + 1)[1:]
        renumber = np.zeros(count + 1, np.int32)
        renumber[1 + np.argsort(-sizes, kind="stable")] = np.arange(1, count + 1)
        lesions = renumber[lesions]
    return lesions, count


def measure_lesion(where: np.ndarray, label: np.ndarray, affine: np.ndarray) -> dict:
    """Volumes, centroid and RANO diameters of one lesion given as its ``(n, 3)`` voxel indices."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    voxel_ml = float(np.prod(spacing)) / 1000
    axial = axial_axis(affine)
    in_plane = [axis for axis in range(3) if axis != axial]
    centroid = where.mean(0)
    world = affine[:3, :3] @ centroid + affine[:3, 3]
    classes_here = label[tuple(where.T)]
    longest, perpendicular, slice_index = 0.0, 0.0, -1
    for index in np.unique(where[:, axial]):
        pixels = where[where[:, axial] == index][:, in_plane] * spacing[in_plane]
        candidate = diameters(pixels, float(spacing[in_plane].mean()))
        if candidate[0] > longest:
            (longest, perpendicular), slice_index = candidate, int(index)
    return {
        "volume_ml": round(len(where) * voxel_ml, 4),
        **{f"{name}_ml": round(int(np.count_nonzero(classes_here == value)) * voxel_ml, 4)
           for value, name in CLASS_NAMES.items()},
        **{f"centroid_{axis}": round(float(c), 2) for axis, c in zip("ijk", centroid)},
        **{f"centroid_{axis}_mm": round(float(c), 2) for axis, c in zip("xyz", world)},
        "axial_slice": slice_index, "longest_diameter_mm": round(longest, 2),
        "perpendicular_diameter_mm": round(perpendicular, 2), "product_mm2": round(longest * perpendicular, 2),
        "measurable": bool(longest >= MEASURABLE_MM and perpendicular >= MEASURABLE_MM),
    }  # fmt: skip


def measure_lesions(label: np.ndarray, affine: np.ndarray) -> list[dict]:
    """One row per lesion of an internal label map (``(X, Y, Z)``) on the grid ``affine`` describes, the largest
    first within each kind."""
    rows = []
    for kind in LESION_KINDS:
        lesions, _ = numbered_lesions(label, kind)
        for number, box in enumerate(ndimage.find_objects(lesions), start=1):
            where = np.argwhere(lesions[box] == number) + [s.start for s in box]
            rows.append({"kind": kind, "lesion": number, **measure_lesion(where, label, affine)})
    return rows


def measure_case(label: np.ndarray, affine: np.ndarray, zooms: tuple[float, ...]) -> tuple[dict, list[dict]]:
    """A mask's numbers as glioseg reports them everywhere (``volumes.csv``, ``lesions.csv``, the DICOM SR): its
    volumes (``<structure>_ml``, mL to 3 decimals) from the header's voxel sizes, and its lesions' rows."""
    measured = volumes_ml(label, tuple(float(z) for z in zooms[:3]))
    return {f"{n}_ml": round(measured[n], 3) for n in STRUCTURE_NAMES}, measure_lesions(label, affine)


def write_lesions(path: Path, rows: list[dict]) -> Path:
    """``lesions.csv`` (the columns of :data:`LESION_FIELDS`), written whole or not at all."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=LESION_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path
