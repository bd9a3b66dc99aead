"""Reading cases and writing their masks (nibabel), with the checks that keep bad files out.

Contracts (docs/architecture.md): an image array is ``float32 (4, X, Y, Z)`` in FLAIR, T1, T1Gd, T2 order and in
the file's voxel order; a label array is ``uint8 (X, Y, Z)`` of internal classes; every written file
keeps the source's affine, header codes and shape, and appears atomically (temporary file + rename).
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.core.labels import ENHANCING, RESECTION_CAVITY, LabelConvention, LabelValueError, present_values
from glioseg.datasets.layouts import LAYOUTS, MODALITIES, CaseFiles, locate_case, scan_dataset

AFFINE_TOLERANCE = 1e-3
"""Largest difference allowed between two files' affine entries (mm, or unitless for rotations)."""
MAX_VOXELS = 512**3
"""A header claiming more voxels than this per 3D volume is refused before anything is allocated (the viewer sets a
lower cap, config.UploadLimits.max_voxels)."""
SPACING_RANGE_MM = (0.1, 20.0)
"""Voxel sizes glioseg takes: MRI's run from about 0.2 mm (7 T) to 10 mm (thick clinical slices). Outside this range
a header is wrong (metres written where millimetres belong, a zero spacing, slices stacked on one position)."""


@dataclass
class Case:
    """One case in memory.

    Attributes:
        case_id: the case's name.
        image: ``float32 (4, X, Y, Z)``, FLAIR, T1, T1Gd, T2.
        label: ``uint8 (X, Y, Z)`` internal classes, or None.
        affine: ``(4, 4)`` voxel-to-world of the images.
        header: the NIfTI header of the first image file, kept so that outputs match it.
        files: where the case was read from (layout and label convention included).
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray
    header: nib.Nifti1Header
    files: CaseFiles

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the array's three axes."""
        return tuple(float(z) for z in self.header.get_zooms()[:3])  # type: ignore[return-value]

    @property
    def layout(self) -> str:
        return self.files.layout

    @property
    def absent(self) -> tuple[str, ...]:
        """The sequences the case lacks (their channels are zero)."""
        return self.files.absent

    @property
    def convention(self) -> LabelConvention:
        return self.files.convention


def open_nifti(path: Path, max_voxels: int = MAX_VOXELS) -> nib.Nifti1Image:
    """Open a NIfTI header (no voxel data yet), refusing what cannot be a usable volume: more than ``max_voxels`` in
    a 3D volume, or more volumes than the four modalities of a 4D image, is refused from the header alone (a small
    .nii.gz can claim gigabytes of zeros)."""
    try:
        if path.stat().st_size == 0:
            raise InputError(path, "the file is empty", "re-copy or re-export it")
        image = nib.load(path)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, "file not found", "check the path") from None
    except Exception as error:  # nibabel raises many types for a file that is not NIfTI
        raise InputError(path, f"not a readable NIfTI file ({error})", "re-export it as .nii.gz") from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(path, f"a {type(image).__name__}, not NIfTI", "convert it to .nii.gz")
    stored = image.get_data_dtype()
    if stored.fields is not None or stored.kind not in "biuf":
        what = "colour (RGB) pixels" if stored.fields is not None else f"{stored} values"
        raise InputError(path, f"holds {what}, not one real number per voxel", "export the scan as a greyscale image")
    _check_stored_voxel_sizes(image, path)
    check_geometry(image, path)
    voxels = int(np.prod(image.shape[:3], dtype=np.int64))
    volumes = int(np.prod(image.shape[3:], dtype=np.int64))
    if voxels > max_voxels or volumes > len(MODALITIES):
        raise InputError(
            path,
            f"header claims {image.shape}: {voxels:,} voxels per volume x {volumes} volumes, more than glioseg reads "
            f"(at most {max_voxels:,} voxels per volume and {len(MODALITIES)} volumes)",
            "check the header; crop or resample very large images before use",
        )
    return image


def _check_stored_voxel_sizes(image: nib.Nifti1Image, path: Path) -> None:
    """Refuse voxel sizes of 0 as the file stores them: nibabel reads them as 1 mm (a guess, with a log line)."""
    with nib.openers.ImageOpener(path) as stream:
        stored = type(image.header).from_fileobj(stream, check=False)["pixdim"][1 : 1 + min(len(image.shape), 3)]
    if not (np.abs(stored) > 0).all():
        raise InputError(path, f"its header stores voxel sizes {' x '.join(f'{v:g}' for v in stored)} mm (pixdim): "
                         "a size of 0 places no voxel", "re-export the image with its voxel sizes")  # fmt: skip


def check_geometry(image: nib.Nifti1Image, path: Path) -> None:
    """Refuse a header that cannot place its voxels: a voxel-to-world matrix (sform or qform, else the voxel sizes)
    that is not finite or is singular, or voxel sizes outside :data:`SPACING_RANGE_MM`, in the matrix or in
    ``pixdim`` (volumes in mL are measured from it)."""
    fix = "re-export the image with its orientation and voxel sizes (sform/qform and pixdim), from its source"
    try:
        affine = np.asarray(image.affine, dtype=np.float64)
        zooms = np.asarray(image.header.get_zooms()[:3], dtype=np.float64)
    except Exception as error:  # nibabel raises several types for a header it cannot make a matrix of
        raise InputError(path, f"its header's geometry cannot be read ({error})", fix) from None
    if not np.isfinite(affine).all() or not np.isfinite(zooms).all():
        raise InputError(path, "its voxel-to-world matrix holds NaN or Inf", fix)
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    low, high = SPACING_RANGE_MM
    for what, values in (("voxel size", sizes), ("pixdim voxel size", zooms[: len(image.shape[:3])])):
        if not ((values >= low) & (values <= high)).all():
            shown = " x ".join(f"{v:.4g}" for v in values)
            raise InputError(path, f"{what} {shown} mm: not an MRI voxel's (glioseg takes {low} to {high} mm)", fix)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-6 * float(np.prod(sizes)):
        raise InputError(path, "its voxel-to-world matrix is singular (the voxel axes are not independent)", fix)


def check_signal(channel: np.ndarray, path: Path, what: str) -> None:
    """Refuse an image with nothing to segment or register: all zero, or one value everywhere."""
    if not channel.any():
        raise InputError(path, f"the {what} image is all zero", "re-export the scan; it holds no signal")
    if channel.min() == channel.max():
        raise InputError(path, f"the {what} image holds one value ({channel.flat[0]:g}) in every voxel",
                         "re-export the scan; it holds no contrast")  # fmt: skip


def load_voxels(image: nib.Nifti1Image, path: Path) -> np.ndarray:
    """The scaled voxel data as float32, refusing truncated files and NaN/Inf."""
    try:
        data = image.get_fdata(dtype=np.float32, caching="unchanged")
    except (EOFError, zlib.error, OSError, ValueError, TypeError) as error:
        raise InputError(
            path, f"cannot read the voxel data; the file is truncated or corrupt ({error})", "re-copy it"
        ) from None
    bad = data.size - int(np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(path, f"{bad} voxels are NaN or Inf", "re-export the image without invalid values")
    return data


def _squeeze_to_3d(data: np.ndarray, path: Path) -> np.ndarray:
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(
            path,
            f"expected a 3D volume, found shape {data.shape}",
            "give one 3D file per modality (or an MSD 4D file with 4 channels last)",
        )
    return data


def grid_mismatch(reference: nib.Nifti1Image, other: nib.Nifti1Image) -> str | None:
    """Why two files do not share a voxel grid (shape or affine), or None if they do."""
    if tuple(reference.shape[:3]) != tuple(other.shape[:3]):
        return f"shape {tuple(other.shape[:3])} differs from {tuple(reference.shape[:3])}"
    difference = float(np.abs(reference.affine - other.affine).max())
    if difference > AFFINE_TOLERANCE:
        return f"affine differs from the first image's by up to {difference:.4g}"
    return None


def read_image(files: CaseFiles, max_voxels: int = MAX_VOXELS) -> tuple[np.ndarray, nib.Nifti1Image]:
    """The ``(4, X, Y, Z)`` float32 image of a case and the header image of its first file."""
    if LAYOUTS[files.layout].four_d:
        path = files.images[0]
        nifti = open_nifti(path, max_voxels)
        if len(nifti.shape) != 4 or nifti.shape[3] != len(MODALITIES):
            raise InputError(
                path,
                f"an MSD image is 4D with 4 channels last (FLAIR, T1, T1Gd, T2); this one has shape {nifti.shape}",
                "give the 4D file, or the four 3D files in a BraTS case folder",
            )
        data = load_voxels(nifti, path)
        image = np.ascontiguousarray(np.moveaxis(data, -1, 0)[list(files.channels)])  # FLAIR, T1, T1Gd, T2
        for index, modality in enumerate(MODALITIES):
            check_signal(image[index], path, modality)
        return image, nifti
    niftis = [None if path is None else open_nifti(path, max_voxels) for path in files.images]
    reference = next(nifti for nifti in niftis if nifti is not None)
    for path, nifti in zip(files.images, niftis):
        mismatch = None if nifti is None else grid_mismatch(reference, nifti)
        if mismatch:
            raise InputError(path, mismatch, f"resample it onto {files.first_image.name}'s grid (co-register)")
    image = np.zeros((len(MODALITIES), *reference.shape[:3]), dtype=np.float32)  # an absent sequence stays zero

    def fill(index: int) -> None:
        path = files.images[index]
        if path is not None:
            image[index] = _squeeze_to_3d(load_voxels(niftis[index], path), path)
            check_signal(image[index], path, MODALITIES[index])

    with ThreadPoolExecutor(len(MODALITIES)) as pool:  # gzip inflation releases the GIL: files decode in parallel
        list(pool.map(fill, range(len(MODALITIES))))  # list() re-raises the first file's error
    return image, reference


def read_label(files: CaseFiles, reference: nib.Nifti1Image) -> np.ndarray | None:
    """The case's label as internal classes, checked against the image grid and the convention."""
    if files.label is None:
        return None
    path = files.label
    nifti = open_nifti(path)
    mismatch = grid_mismatch(reference, nifti)
    if mismatch:
        raise InputError(path, f"label grid: {mismatch}", "resample the label onto the image grid (nearest)")
    values = _squeeze_to_3d(np.asanyarray(_read_raw(nifti, path)), path)
    try:
        return files.convention.to_internal(values)
    except LabelValueError as error:
        raise InputError(path, str(error), f"relabel to the {files.convention.name} convention") from None


def _read_raw(nifti: nib.Nifti1Image, path: Path) -> np.ndarray:
    try:
        return np.asanyarray(nifti.dataobj)
    except (EOFError, zlib.error, OSError, ValueError) as error:
        raise InputError(path, f"cannot read the label data; truncated or corrupt ({error})", "re-copy it") from None


def read_case(path: str | Path | CaseFiles, max_voxels: int = MAX_VOXELS, complete: bool = True) -> Case:
    """Read a case in any supported layout.

    Args:
        path: a BraTS case folder, an MSD 4D image, an nnU-Net ``<case>_0000.nii.gz``, or a
            :class:`CaseFiles` from :func:`find_cases`.
        max_voxels: refuse volumes larger than this (from the header, before reading).
        complete: refuse a case folder that lacks a sequence; with False it is read with that sequence's channel
            all zero and named in ``case.absent`` (what ``Model.predict`` segments without).

    Raises:
        InputError: naming the file at fault and the fix.
    """
    files = path if isinstance(path, CaseFiles) else locate_case(path, complete=complete)
    image, reference = read_image(files, max_voxels)
    label = read_label(files, reference)
    return Case(files.case_id, image, label, reference.affine.copy(), reference.header.copy(), files)


def find_cases(folder: str | Path, label_convention: str | None = None, complete: bool = True) -> list[CaseFiles]:
    """The cases of a dataset folder, images paired with labels, their label numbering checked over the dataset.

    Args:
        label_convention: the convention every label file is in (``--label-convention``), overriding the one the
            layout implies and the check below.
        complete: a case lacking a sequence is refused (else read without it: prediction).

    Raises:
        InputError: naming the first problem (``glioseg check`` lists them all), or labels whose numbering
            contradicts their layout (:func:`label_numbering_problem`).
    """
    cases, problems = scan_dataset(folder, label_convention, complete)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems: run `glioseg check {folder}`)" if len(problems) > 1 else ""
        raise InputError(first.path, first.problem + more, first.fix)
    if label_convention is None:
        problem = label_numbering_problem(cases, Path(folder))
        if problem:
            raise problem
    return cases


def labelled_cases(data: Path, minimum: int = 2, label_convention: str | None = None) -> list[CaseFiles]:
    """The cases of ``data`` that have a label (what training and packing take), at least ``minimum`` of them."""
    cases = [c for c in find_cases(data, label_convention) if c.label is not None]
    if len(cases) < minimum:
        raise InputError(data, f"{len(cases)} labelled cases found; training needs at least {minimum}",
                         "add labelled cases")  # fmt: skip
    return cases


def label_numbering_problem(cases: list[CaseFiles], folder: Path) -> InputError | None:
    """BraTS 2023-named label files numbered the BraTS 2018-2021 way (4 enhancing), judged over the dataset: value 4
    in most cases and 3 in none. One case cannot tell: a BraTS 2024 post-treatment case rightly holds a resection
    cavity (4) and no enhancing tumour (3). Unreadable labels are left to ``glioseg check``."""
    named_2023 = [c for c in cases if c.layout == "brats2023" and c.label is not None]
    holding = {ENHANCING: 0, RESECTION_CAVITY: 0}
    for files in named_2023:
        try:
            values = present_values(np.asanyarray(open_nifti(files.label).dataobj))  # type: ignore[arg-type]
        except (InputError, LabelValueError, OSError, EOFError, zlib.error, ValueError):
            continue
        for value in holding:
            holding[value] += value in values
    if holding[ENHANCING] or holding[RESECTION_CAVITY] <= len(named_2023) / 2:
        return None
    return InputError(
        folder,
        f"labels are named the BraTS 2023 way but look numbered the BraTS 2018-2021 way: value 4 in "
        f"{holding[RESECTION_CAVITY]} of {len(named_2023)} cases and 3 in none (since 2023, 3 is enhancing tumour "
        "and 4 a resection cavity)",
        "if 4 means enhancing tumour, pass --label-convention brats2021; if these are post-treatment cases with "
        "cavities and no enhancing tumour, pass --label-convention brats2023",
    )


GEOMETRY_FIELDS = ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                   "qoffset_z", "srow_x", "srow_y", "srow_z", "xyzt_units")  # fmt: skip
"""The NIfTI header fields that place voxels in space (with ``pixdim``), copied exactly into every output."""


def nifti_like(data: np.ndarray, header: nib.Nifti1Header, dtype: type) -> nib.Nifti1Image:
    """A NIfTI image of ``data`` on the grid of ``header``, in a fresh header that carries only the geometry: qform
    and sform with their codes (whichever differ or are 0), voxel sizes and units, bit for bit. The source's
    intensity window, description and intent (a FLAIR's ``cal_max``, say) describe another image, so they stay behind.
    """
    fresh = nib.Nifti1Header()
    fresh.set_data_shape(data.shape)
    fresh.set_data_dtype(dtype)
    for key in GEOMETRY_FIELDS:
        fresh[key] = header[key]
    fresh["pixdim"][:4] = header["pixdim"][:4]  # qfac and voxel sizes
    return nib.Nifti1Image(np.asarray(data, dtype=dtype), None, header=fresh)


def write_label(path: str | Path, label: np.ndarray, like: Case, convention: LabelConvention | None = None) -> Path:
    """Write an internal label map in ``convention`` (default: the case's own) on the case's grid.

    Args:
        path: output file (``.nii.gz``).
        label: ``uint8 (X, Y, Z)`` internal classes, the case's grid.
        like: the case whose affine, header codes and shape the file keeps.
        convention: the label numbering to write.
    """
    if label.shape != like.image.shape[1:]:
        raise ValueError(f"label shape {label.shape} differs from the case's grid {like.image.shape[1:]}")
    values = (convention or like.convention).from_internal(label)
    with atomic_path(path) as temporary:
        nib.save(nifti_like(values, like.header, np.uint8), temporary)
    return Path(path)
