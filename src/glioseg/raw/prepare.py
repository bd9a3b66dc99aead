"""`glioseg prepare`: scans as they come (a DICOM study, or NIfTI files of any orientation, spacing and alignment)
-> a BraTS-ready case folder: the four sequences on one 1 mm grid, co-registered, brain extracted.

Steps, each by a library of the field: DICOM series found from their tags (:mod:`glioseg.raw.dicom`) and converted by
dcm2niix (its registry wheel: the converter the field checks its DICOM against); every image reoriented to RAS
(nibabel); the T1Gd resampled to 1 mm isotropic (SimpleITK, cubic B-spline) as the reference grid; FLAIR, T1 and T2
registered rigidly onto it by mutual information (:mod:`glioseg.core.registration`) and resampled there; the brain
extracted by deepbet (MIT, weights inside its wheel; optional extra ``glioseg[prepare]``) from the registered T1,
or not at all for input already skull-stripped. Writes ``OUT/<case>/<case>_{flair,t1,t1ce,t2}.nii.gz`` (the BraTS
2021 layout, which ``glioseg predict`` reads) and beside them ``prepare/`` (:mod:`glioseg.raw.prepared`: the record,
transforms, the T1Gd as it came, brain mask, QC picture). The case folder appears whole or not at all.
``glioseg predict`` prepares raw input itself and maps its masks back (:mod:`glioseg.inference.native`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from glioseg.core.config import REFERENCE, PrepareConfig
from glioseg.core.errors import InputError
from glioseg.core.files import make_folder
from glioseg.core.registration import RigidTransform, register_rigid, resample
from glioseg.core.stopwatch import Stopwatch
from glioseg.datasets.cases import check_geometry, check_signal, load_voxels, open_nifti
from glioseg.datasets.layouts import LAYOUTS, MODALITIES
from glioseg.raw.prepared import PreparedFiles, PrepareRecord

PREPARED_LAYOUT = LAYOUTS["brats2021"]
"""A prepared case is a BraTS 2018-2021 case folder (what ``glioseg predict`` and the viewer read)."""
SPACING_MM = 1.0
GUESSED_GEOMETRY = re.compile(
    r"bogus spatial|slice direction|interslice distance varies|not equidistant|missing images|orientation varies|"
    r"gantry tilt|tilt correction|pixelspacing \(0028,0030\) varies|imagepositionpatient varies|"
    r"slice positions repeated",
    re.IGNORECASE,
)
"""dcm2niix's warnings that the geometry it writes is its guess (its source, 1.0.2025): such a series is refused."""
MIN_VOXELS_PER_AXIS = 4
"""Registration smooths each axis at its coarsest level, which needs four voxels along it (SimpleITK)."""
EXTENT_RANGE_MM = (50.0, 400.0)
"""How much of the head a sequence covers along each voxel axis: at least enough to place and register it, at most
more than any head (a header in the wrong unit); the upper bound also bounds the 1 mm grid before it is allocated."""
STRIPPED_MAX_ML = 2000.0
"""Input whose reference has at most this volume of non-zero voxels is taken as skull-stripped: a brain is 1000-1800
mL (the BraTS sample: 1200-1700), a head with its skull, scalp and neck (and the scanner's background noise) far
more (the Philips 3D T1 here: 8300 mL)."""


@dataclass(frozen=True)
class Prepared:
    """Where the prepared case is and what was done to each sequence."""

    folder: Path
    motions: dict[str, RigidTransform]
    brain_ml: float


def dicom_images(study: Path, choices: dict[str, str], work: Path,
                 complete: bool = True) -> tuple[dict[str, nib.Nifti1Image], dict]:  # fmt: skip
    """The four sequences of a DICOM study (three, where it lacks one and ``complete`` is False), each series
    converted by dcm2niix (in ``work``), and which series each is (number, UID, files: what ``prepare.json`` records,
    so that a DICOM SEG can reference the T1Gd's files without reading the study's headers again)."""
    from glioseg.raw.dicom import choose_series, scan_study

    chosen = choose_series(study, scan_study(study), choices, complete)
    images = {}
    for role, series in chosen.items():
        image = convert_series(series.files, work / role, f"series {series.number} of {study}")
        check_sequence(image, Path(series.files[0]).parent, role)
        images[role] = image
    sources = {role: {"series": series.number, "uid": series.uid,
                      "files": [str(Path(path).resolve()) for path in series.files]}
               for role, series in chosen.items()}  # fmt: skip
    return images, sources


def convert_series(files: tuple[Path, ...], work: Path, what: str) -> nib.Nifti1Image:
    """One DICOM series -> one NIfTI image by dcm2niix (its files linked into a folder of their own)."""
    source, out = work / "dicom", work / "nifti"
    source.mkdir(parents=True)
    out.mkdir()
    for index, path in enumerate(files):
        (source / f"{index:05d}.dcm").symlink_to(Path(path).resolve())
    binary = _dcm2niix_binary()
    result = subprocess.run([binary, "-z", "n", "-b", "n", "-f", "image", "-o", str(out), str(source)],
                            capture_output=True, text=True)  # fmt: skip
    made = sorted(out.glob("*.nii"))
    guessed = [line.strip() for line in (result.stdout + result.stderr).splitlines() if GUESSED_GEOMETRY.search(line)]
    if guessed:
        raise InputError(Path(files[0]).parent, f"dcm2niix had to guess the geometry of {what}: {guessed[0]}",
                         "export the series again from the scanner or PACS, with every slice's position")  # fmt: skip
    if result.returncode != 0 or not made:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no image written"]
        raise InputError(Path(files[0]).parent, f"dcm2niix could not convert {what}: {detail[0]}",
                         "check the series is complete (every slice present), or export it again")  # fmt: skip
    if len(made) > 1:
        raise InputError(Path(files[0]).parent, f"{what} holds {len(made)} volumes: several images at each slice "
                         "position (echoes, time points or repeated acquisitions)",
                         "choose a series of one 3D volume with --series")  # fmt: skip
    image = nib.load(made[0])
    return nib.Nifti1Image(np.asarray(image.dataobj, dtype=np.float32), image.affine, image.header)


def _dcm2niix_binary() -> str:
    """The dcm2niix of the registry wheel glioseg depends on (a different one on the PATH may read differently)."""
    import dcm2niix

    bundled = Path(dcm2niix.__file__).parent / "dcm2niix"
    return str(bundled) if bundled.exists() else (shutil.which("dcm2niix") or "dcm2niix")


def check_sequence(image: nib.Nifti1Image, path: Path, role: str) -> None:
    """Refuse a sequence that cannot be placed or registered, naming ``path``: geometry a header cannot give, no
    signal, too little or too much of a head (:data:`EXTENT_RANGE_MM`)."""
    check_geometry(image, path)
    check_signal(np.asarray(image.dataobj), path, role)
    shape = tuple(image.shape[:3]) + (1,) * (3 - len(image.shape[:3]))
    low, high = EXTENT_RANGE_MM
    for axis, (count, size) in enumerate(zip(shape, np.linalg.norm(image.affine[:3, :3], axis=0))):
        extent = count * size
        if count < MIN_VOXELS_PER_AXIS or extent < low:
            raise InputError(path, f"the {role} covers {extent:.0f} mm along its voxel axis {axis} ({count} voxels): "
                             "too little of the head to place and register", "give the whole sequence, covering "
                             "the brain")  # fmt: skip
        if extent > high:
            raise InputError(path, f"the {role}'s field of view is {extent:.0f} mm along its voxel axis {axis}, more "
                             f"than any head (at most {high:.0f} mm)", "check the header's voxel sizes")  # fmt: skip


def nifti_images(paths: dict[str, Path]) -> dict[str, nib.Nifti1Image]:
    """The four sequences from NIfTI files (any orientation and spacing), 3D or one-volume 4D."""

    images = {}
    for role, path in paths.items():
        image = open_nifti(Path(path))
        data = load_voxels(image, Path(path))
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise InputError(Path(path), f"the {role} image has shape {data.shape}, not one 3D volume",
                             "give one 3D volume per sequence")  # fmt: skip
        header = image.header.copy()  # the input's geometry fields (qform, sform, codes) stay for its mask
        header.set_data_dtype(np.float32)
        header.set_slope_inter(1.0, 0.0)
        images[role] = nib.Nifti1Image(data, image.affine, header)
        check_sequence(images[role], Path(path), role)
    return images


def reference_grid(image: nib.Nifti1Image, spacing: float = SPACING_MM) -> tuple[tuple[int, int, int], np.ndarray]:
    """The 1 mm grid over a (RAS-reoriented) image's field of view, its voxels in BraTS's order (LPS: x runs to the
    patient's left, y to the back, the order the model was trained in): its shape and affine."""
    zooms = np.linalg.norm(image.affine[:3, :3], axis=0)
    extent = np.array(image.shape[:3]) * zooms
    shape = tuple(int(n) for n in np.maximum(np.round(extent / spacing), 1))
    directions = image.affine[:3, :3] / zooms
    affine = np.eye(4)
    affine[:3, :3] = directions * spacing
    # the same field of view: the first voxel's outer corner stays where it was
    corner = image.affine[:3, :3] @ np.full(3, -0.5) + image.affine[:3, 3]
    affine[:3, 3] = corner + affine[:3, :3] @ np.full(3, 0.5)
    to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])  # the same voxels, x and y counted from the other end
    to_lps[:2, 3] = [shape[0] - 1, shape[1] - 1]
    return shape, affine @ to_lps  # type: ignore[return-value]


def looks_skull_stripped(image: nib.Nifti1Image) -> bool:
    voxel_ml = float(np.prod(np.linalg.norm(image.affine[:3, :3], axis=0))) / 1000
    return bool(np.count_nonzero(np.asarray(image.dataobj)) * voxel_ml <= STRIPPED_MAX_ML)


def brain_mask(t1: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """deepbet's brain mask of a T1 on its grid.

    Raises:
        InputError: deepbet is not installed (``pip install 'glioseg[prepare]'``).
    """
    try:
        from deepbet.bet import BrainExtraction
    except ImportError:
        raise InputError(Path("deepbet"), "brain extraction needs deepbet, which is not installed",
                         "pip install 'glioseg[prepare]' (deepbet, MIT, weights in its wheel), or pass "
                         "--brain-extraction none for scans already skull-stripped") from None  # fmt: skip
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, mask, _ = BrainExtraction(no_gpu=True).run(nib.Nifti1Image(t1.astype(np.float32), affine))
    return np.asarray(mask.dataobj) > 0


@dataclass(frozen=True)
class Registered:
    """The four sequences on the reference's 1 mm grid (``volumes``, in BraTS's voxel order, ``affine``), brain
    extracted or not (``mask``: the brain), and how each was moved there."""

    volumes: dict[str, np.ndarray]
    affine: np.ndarray
    mask: np.ndarray
    motions: dict[str, RigidTransform]


def register_sequences(canonical: dict[str, nib.Nifti1Image], clock: Stopwatch | None = None
                       ) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:  # fmt: skip
    """The reference resampled to 1 mm, the others (those there are) registered rigidly onto it and resampled there
    (cubic B-spline): ``(volumes, affine, motions)``; ``clock`` laps ``register`` and ``resample``."""
    clock = clock or Stopwatch(None)
    shape, affine = reference_grid(canonical[REFERENCE])
    identity = _identity()
    reference = np.asarray(canonical[REFERENCE].dataobj, dtype=np.float32)
    volumes = {REFERENCE: resample(reference, canonical[REFERENCE].affine, shape, affine, identity, labels=False,
                                   sharp=True)}  # fmt: skip
    motions = {REFERENCE: identity}
    for role in (r for r in MODALITIES if r != REFERENCE and r in canonical):
        data = np.asarray(canonical[role].dataobj, dtype=np.float32)
        clock.lap("resample")
        motions[role] = register_rigid(volumes[REFERENCE], affine, data, canonical[role].affine)
        clock.lap("register")
        volumes[role] = resample(data, canonical[role].affine, shape, affine, motions[role], labels=False, sharp=True)
    clock.lap("resample")
    return volumes, affine, motions


def prepare_case(
    images: dict[str, nib.Nifti1Image], out: Path, case_id: str, settings: PrepareConfig = PrepareConfig(),
    sources: dict | None = None, clock: Stopwatch | None = None,
) -> Prepared:  # fmt: skip
    """Put four raw sequences (or three: a case may lack one but the T1Gd) onto the T1Gd's 1 mm grid, registered,
    brain extracted; write the case folder. ``sources`` (where each sequence came from) goes into ``prepare.json``
    as it is; ``clock`` laps each stage."""
    clock = clock or Stopwatch(None)
    canonical = {role: nib.as_closest_canonical(images[role]) for role in MODALITIES if role in images}
    volumes, affine, motions = register_sequences(canonical, clock)
    stripped = looks_skull_stripped(canonical[REFERENCE])
    extracted = settings.brain_extraction == "deepbet" or (settings.brain_extraction == "auto" and not stripped)
    if extracted:
        mask = brain_mask(volumes["T1"] if "T1" in volumes else volumes[REFERENCE], affine)  # deepbet: T1-weighted
        volumes = {role: np.where(mask, volume, 0).astype(np.float32) for role, volume in volumes.items()}
        clock.lap("brain extraction")
    else:  # kept as it is: the brain is what the input kept (none is lost)
        mask = volumes[REFERENCE] > 0
    brain_ml = float(mask.sum()) * SPACING_MM**3 / 1000
    record = PrepareRecord(
        case=case_id, reference=REFERENCE, spacing_mm=SPACING_MM, shape=list(mask.shape),
        input_skull_stripped=stripped, brain_extracted=extracted, brain_ml=round(brain_ml, 1),
        registration={role: {"rotation_degrees": round(m.rotation_degrees, 2),
                             "translation_mm": round(m.translation_mm, 2)}
                      for role, m in motions.items() if role != REFERENCE},
        native_grids={role: {"shape": list(image.shape[:3]), "affine": image.affine.tolist()}
                      for role, image in images.items()},
        sources=sources or {},
    )  # fmt: skip
    _write(out, Registered(volumes, affine, mask, motions), record, images[REFERENCE])
    clock.lap("write prepared case")
    return Prepared(out / case_id, motions, brain_ml)


def _identity() -> RigidTransform:
    import SimpleITK as sitk

    return RigidTransform(sitk.Euler3DTransform(), 0.0, 0.0, 0.0)


def _write(out: Path, registered: Registered, record: PrepareRecord, native_reference: nib.Nifti1Image) -> None:
    """Everything into a temporary folder beside the target, then one rename: whole or not at all."""
    import SimpleITK as sitk

    from glioseg.evaluation.figures import save_case_preview

    make_folder(out)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{record.case}-", dir=out))
    files = PreparedFiles(staging)
    try:
        for role, volume in registered.volumes.items():
            nib.save(nib.Nifti1Image(volume, registered.affine), staging / PREPARED_LAYOUT.file_name(record.case, role))
        files.transform(REFERENCE).parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(registered.mask.astype(np.uint8), registered.affine), files.brain_mask)
        for role, motion in registered.motions.items():
            sitk.WriteTransform(motion.transform, str(files.transform(role)))
        record.write(files)
        nib.save(native_reference, files.native_reference)
        blank = np.zeros_like(registered.volumes[REFERENCE])  # a sequence the case lacks: shown black
        image = np.stack([registered.volumes.get(role, blank) for role in MODALITIES])
        shown = registered.mask.astype(np.uint8) if record.brain_extracted else None  # the mask where made here
        title = f"{record.case}: brain mask" if record.brain_extracted else record.case
        save_case_preview(image, shown, files.qc, title, registered.affine)
        staging.rename(out / record.case)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def prepare(
    inputs: dict[str, Path] | Path, out: Path, case_id: str | None = None, choices: dict[str, str] | None = None,
    settings: PrepareConfig = PrepareConfig(), complete: bool = True, timings: dict[str, float] | None = None,
) -> Prepared:  # fmt: skip
    """A DICOM study folder, or ``{sequence: NIfTI file}`` for the four sequences -> a BraTS-ready case in ``out``.
    Unless ``complete``, the study or the files may lack one sequence other than the T1Gd. ``timings``, if given,
    receives the seconds of each stage (read or convert, resample, register, brain extraction, write)."""
    clock = Stopwatch(timings)
    out = Path(out)
    if isinstance(inputs, dict):
        inputs = {role: path for role, path in inputs.items() if path is not None}
    name = case_id or (Path(inputs[REFERENCE]).name.split(".")[0] if isinstance(inputs, dict) else Path(inputs).name)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder", "choose another --out")
    if (out / name).exists():  # checked before any work; the case folder then appears whole or not at all
        raise InputError(out / name, "already exists", "choose another --out, or remove it to prepare again")
    with tempfile.TemporaryDirectory() as work:
        if isinstance(inputs, dict):
            images = nifti_images(inputs)
            sources = {role: {"file": str(Path(path).resolve())} for role, path in inputs.items()}
        else:
            images, sources = dicom_images(Path(inputs), choices or {}, Path(work), complete)
        clock.lap("read" if isinstance(inputs, dict) else "convert (dcm2niix)")
        return prepare_case(images, out, name, settings, sources, clock)
