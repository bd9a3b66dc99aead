"""Phantom cohort: real MNI152 anatomy with synthetic gliomas, written in any dataset layout.

Users want to try glioseg before they hold BraTS data, and tests need cases made on the spot. Each
phantom starts from the MNI152 2009a template and its grey / white matter maps that the ``nilearn``
wheel ships (no download), placed on a BraTS-like grid (240 x 240 x 155 at 1 mm, voxel axes
L->R flipped like BraTS' affine ``diag(-1, -1, 1)``), then per case:

1. a random smooth deformation of the anatomy (affine jitter + smooth displacement + mass effect
   pushing tissue away from each tumour);
2. one to three tumours of varied size and place, each with a necrotic / non-enhancing core, an
   enhancing rim (absent in about one case in five, like low-grade gliomas) and irregular edema that
   spreads along white matter and stops at CSF;
3. per-modality contrasts calibrated on the real BraTS sample after z-scoring (``benchmarks/
   phantom_realism.py`` prints the comparison); CSF is dark on T1 and FLAIR and bright on T2, the
   rim bright on T1Gd, edema bright on FLAIR and T2;
4. a smooth multiplicative bias field, Rician noise and a random intensity scale per modality,
   skull-stripped (zero outside the brain) and stored as int16 like BraTS.

Everything is deterministic for a given seed and case index.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from glioseg.core.config import BRATS_SHAPE, CohortConfig
from glioseg.core.files import atomic_path, make_folder
from glioseg.core.geometry import rotation_matrix, smooth_random_field
from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.datasets.layouts import LAYOUTS, MODALITIES, Layout

TISSUES = ("CSF", "GM", "WM")
COMPARTMENTS = ("edema", "core", "enhancing")

# Mean intensity of each tissue and tumour compartment per modality (FLAIR, T1, T1Gd, T2), in units
# of white matter; calibrated so that z-scored phantoms match the real BraTS 2018 sample
# (benchmarks/phantom_realism.py prints both).
CONTRAST = {
    "CSF": (0.35, 0.35, 0.40, 1.80),
    "GM": (1.05, 0.78, 0.80, 1.25),
    "WM": (1.00, 1.00, 1.00, 1.00),
    "edema": (1.58, 0.78, 0.80, 1.45),
    "core": (1.55, 0.60, 0.62, 1.75),
    "enhancing": (1.55, 0.80, 1.40, 1.40),
}
LESION_JITTER = 0.12
"""Per-case log-normal spread of each tumour contrast: real tumours vary from case to case."""
CONTRAST_T1 = [CONTRAST[name][1] for name in TISSUES]


@dataclass(frozen=True)
class Anatomy:
    """MNI152 tissue maps on the target grid, cropped to the brain plus a margin (where work happens).

    Attributes:
        maps: ``float32 (4, x, y, z)`` = CSF, GM, WM probabilities and the T1 template (WM = 1), in ``box``.
        depth_mm: ``float32 (x, y, z)`` distance to the brain's edge, for placing tumours.
        box: where ``maps`` sits in the full grid.
        full_shape: the whole grid, voxels.
        spacing: voxel size, mm.
    """

    maps: np.ndarray
    depth_mm: np.ndarray
    box: tuple[slice, slice, slice]
    full_shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.maps.shape[1:]  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def load_anatomy(shape: tuple[int, int, int] = BRATS_SHAPE) -> Anatomy:
    """The MNI152 template on a BraTS-like grid of ``shape`` voxels covering 240 x 240 x 155 mm."""
    from nilearn import datasets  # imported here: nilearn is slow to import and only synth needs it

    t1 = datasets.load_mni152_template(resolution=1).get_fdata(dtype=np.float32)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(gm + wm > 0.1, iterations=3))
    brain = ndimage.binary_dilation(brain, iterations=1)
    csf = np.clip(brain - gm - wm, 0, 1)
    maps = np.stack([csf, gm, wm, t1 / np.percentile(t1[wm > 0.9], 50)]) * brain
    maps = maps[:, ::-1, ::-1, :]  # MNI voxel axes are RAS; BraTS files run L->R and A->P
    maps = _centre_in(maps, BRATS_SHAPE)
    if tuple(shape) != BRATS_SHAPE:
        factors = [1] + [s / b for s, b in zip(shape, BRATS_SHAPE)]
        maps = ndimage.zoom(maps, factors, order=1, grid_mode=True, mode="grid-constant")
    spacing = tuple(b / s for b, s in zip(BRATS_SHAPE, shape))
    inside = np.argwhere(maps[:3].sum(0) > 0.5)
    margin = [int(np.ceil(6 / s)) for s in spacing]
    box = tuple(
        slice(max(int(lo) - m, 0), min(int(hi) + 1 + m, n))
        for lo, hi, m, n in zip(inside.min(0), inside.max(0), margin, shape)
    )
    maps = np.ascontiguousarray(maps[(slice(None), *box)], dtype=np.float32)
    depth_mm = ndimage.distance_transform_edt(maps[:3].sum(0) > 0.5, sampling=spacing).astype(np.float32)
    return Anatomy(maps, depth_mm, box, tuple(shape), spacing)  # type: ignore[arg-type]


def _centre_in(maps: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Crop or pad so that the brain's bounding box sits centred in ``shape``."""
    inside = np.argwhere(maps[1] + maps[2] > 0.05)
    low, high = inside.min(0), inside.max(0) + 1
    out = np.zeros((maps.shape[0], *shape), dtype=np.float32)
    source, target = [], []
    for axis, size in enumerate(shape):
        start = (low[axis] + high[axis]) // 2 - size // 2
        src_lo, src_hi = max(start, 0), min(start + size, maps.shape[axis + 1])
        source.append(slice(src_lo, src_hi))
        target.append(slice(src_lo - start, src_hi - start))
    out[(slice(None), *target)] = maps[(slice(None), *source)]
    return out


@dataclass(frozen=True)
class Phantom:
    """One generated case: ``image float32 (4, X, Y, Z)`` (FLAIR, T1, T1Gd, T2), ``label uint8``."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray


def brats_like_affine(spacing: tuple[float, float, float], shape: tuple[int, int, int]) -> np.ndarray:
    """BraTS' voxel-to-world convention, ``diag(-1, -1, 1)`` at 1 mm, scaled to ``spacing``."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[1, 3] = spacing[1] * (shape[1] - 1)
    return affine


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], cells: int) -> torch.Tensor:
    """A smooth random field scaled to unit std (see ``smooth_random_field``)."""
    field = smooth_random_field(rng, shape, cells)
    return field / field.std().clamp_min(1e-6)


def _identity_grid(shape: tuple[int, int, int]) -> torch.Tensor:
    axes = [torch.linspace(-1, 1, n) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (X, Y, Z, 3) in array order


@dataclass(frozen=True)
class Tumour:
    centre: np.ndarray  # voxel coordinates
    radius_mm: float  # core radius
    edema_mm: float  # edema extent beyond the core
    necrotic_fraction: float  # inner fraction of the core that is necrotic
    enhancing: bool


def _draw_tumours(rng: np.random.Generator, anatomy: Anatomy) -> list[Tumour]:
    """Place 1-3 tumours in deep white matter, away from the brain's edge."""
    count = int(rng.choice([1, 2, 3], p=[0.75, 0.2, 0.05]))
    wm, depth_mm = anatomy.maps[2], anatomy.depth_mm
    tumours = []
    for index in range(count):
        radius = float(rng.uniform(14, 30)) * (0.7 if index else 1.0)
        candidates = np.argwhere((wm > 0.6) & (depth_mm > min(radius + 8, 25)))
        if len(candidates) == 0:
            candidates = np.argwhere(depth_mm > 0)
        centre = candidates[rng.integers(len(candidates))].astype(np.float32)
        tumours.append(
            Tumour(
                centre=centre,
                radius_mm=radius,
                edema_mm=float(rng.uniform(5, 16)),
                # the rim is at least 1.5 voxels thick, so the grid can show it (binds only on coarse grids)
                necrotic_fraction=min(float(rng.uniform(0.45, 0.8)), 1 - 1.5 * max(anatomy.spacing) / radius),
                enhancing=bool(rng.random() > 0.2),
            )
        )
    return tumours


def _deformation(rng: np.random.Generator, anatomy: Anatomy, tumours: list[Tumour]) -> torch.Tensor:
    """Sampling grid for ``grid_sample``: affine jitter, smooth warp and each tumour's mass effect."""
    shape = anatomy.shape
    grid = _identity_grid(shape)
    half_extent_mm = torch.tensor([(n - 1) * s / 2 for n, s in zip(shape, anatomy.spacing)])
    angle = np.deg2rad(rng.uniform(-6, 6, size=3))
    rotation = torch.from_numpy(rotation_matrix(angle).astype(np.float32))
    scale = float(rng.uniform(0.84, 0.92))  # MNI brains are larger than BraTS patients'
    points_mm = grid * half_extent_mm
    points_mm = points_mm @ rotation.T / scale
    warp = torch.stack([smooth_noise(rng, shape, 5) for _ in range(3)], dim=-1) * float(rng.uniform(1.5, 3.5))
    points_mm = points_mm + warp
    for tumour in tumours:
        centre_mm = (torch.from_numpy(tumour.centre) - torch.tensor([(n - 1) / 2 for n in shape])) * torch.tensor(
            anatomy.spacing
        )
        offset = points_mm - centre_mm
        reach = tumour.radius_mm + tumour.edema_mm
        distance = offset.norm(dim=-1, keepdim=True)
        push = 0.5 * tumour.radius_mm * torch.exp(-((distance / reach) ** 2))
        points_mm = points_mm - offset / distance.clamp_min(1e-3) * push * (distance / reach).clamp(max=1)
    return (points_mm / half_extent_mm).flip(-1)[None]  # grid_sample wants (z, y, x) order last


def _tumour_compartments(
    rng: np.random.Generator, tumour: Tumour, anatomy_maps: torch.Tensor, spacing: tuple[float, ...]
) -> tuple[tuple[slice, ...], torch.Tensor]:
    """Soft masks of edema, core and enhancing rim in the tumour's bounding box.

    Returns:
        The box (slices into the volume) and ``float32 (3, x, y, z)`` compartment weights in [0, 1].
    """
    shape = anatomy_maps.shape[1:]
    spacing_t = torch.tensor(spacing)
    reach_mm = (tumour.radius_mm + tumour.edema_mm) * 1.6
    box = tuple(
        slice(max(int(c - reach_mm / s), 0), min(int(c + reach_mm / s) + 1, n))
        for c, s, n in zip(tumour.centre, spacing, shape)
    )
    box_shape = tuple(b.stop - b.start for b in box)
    axes = [torch.arange(b.start, b.stop, dtype=torch.float32) for b in box]
    offset_mm = (torch.stack(torch.meshgrid(*axes, indexing="ij"), -1) - torch.from_numpy(tumour.centre)) * spacing_t
    stretch = torch.from_numpy(rng.uniform(0.75, 1.3, size=3).astype(np.float32))
    rotation = torch.from_numpy(rotation_matrix(rng.uniform(0, np.pi, size=3)).astype(np.float32))
    radius_field = ((offset_mm @ rotation.T) / stretch).norm(dim=-1)  # ellipsoidal distance, mm
    cells = max(3, int(max(box_shape) * max(spacing) / 12))
    lobes = smooth_noise(rng, box_shape, cells)
    core_level = radius_field / tumour.radius_mm + 0.18 * lobes  # < 1 inside the core
    csf, wm = anatomy_maps[0][box], anatomy_maps[2][box]
    ragged = smooth_noise(rng, box_shape, cells * 2)
    edema_reach = (tumour.radius_mm + tumour.edema_mm * (0.6 + 0.8 * wm)) / tumour.radius_mm
    edema_level = core_level + 0.15 * ragged - (edema_reach - 1)  # < 1 inside the edema
    edema_level = torch.maximum(edema_level, radius_field / (tumour.radius_mm + 1.3 * tumour.edema_mm))
    inside_brain = anatomy_maps[:3].sum(0)[box] > 0.5
    necrosis_level = core_level / tumour.necrotic_fraction + 0.3 * smooth_noise(rng, box_shape, cells * 2)

    def soft(level: torch.Tensor) -> torch.Tensor:  # partial volume over about one voxel
        return torch.sigmoid((1 - level) * tumour.radius_mm / (1.2 * max(spacing)))

    core = soft(core_level) * inside_brain
    edema = torch.clamp(soft(edema_level) * (1 - csf).clamp(0, 1) * inside_brain - core, 0, 1)
    if tumour.enhancing:
        enhancing = torch.clamp(core - soft(necrosis_level), 0, 1)
        core = core - enhancing
    else:
        enhancing = torch.zeros_like(core)
    return box, torch.stack([edema, core, enhancing])


def make_phantom(
    index: int, seed: int = 0, shape: tuple[int, int, int] = BRATS_SHAPE, case_id: str | None = None
) -> Phantom:
    """Generate phantom number ``index`` of the cohort with ``seed``; same arguments, same arrays."""
    rng = np.random.default_rng([seed, index])
    anatomy = load_anatomy(tuple(shape))
    tumours = _draw_tumours(rng, anatomy)
    with torch.inference_mode():
        grid = _deformation(rng, anatomy, tumours)
        maps = F.grid_sample(torch.from_numpy(anatomy.maps)[None], grid, mode="bilinear", align_corners=True)[
            0
        ]  # (4, X, Y, Z): CSF, GM, WM, T1
        brain = maps[:3].sum(0) > 0.5
        weights = torch.zeros((3, *anatomy.shape))  # edema, core, enhancing
        for tumour in tumours:
            box, compartments = _tumour_compartments(rng, tumour, maps, anatomy.spacing)
            weights[(slice(None), *box)] = torch.maximum(weights[(slice(None), *box)], compartments)
        weights = weights * brain / weights.sum(0).clamp_min(1)  # overlapping tumours share a voxel, never exceed it
        image = np.zeros((len(MODALITIES), *anatomy.full_shape), dtype=np.float32)
        label = np.zeros(anatomy.full_shape, dtype=np.uint8)
        image[(slice(None), *anatomy.box)] = _intensities(rng, maps, weights, brain).numpy()
        label[anatomy.box] = _hard_label(weights).numpy()
    return Phantom(
        case_id or f"phantom_{index:03d}",
        image,
        label,
        brats_like_affine(anatomy.spacing, anatomy.full_shape),
    )


def _hard_label(weights: torch.Tensor) -> torch.Tensor:
    """Internal classes from compartment weights: the strongest compartment above one half wins."""
    label = torch.zeros(weights.shape[1:], dtype=torch.uint8)
    tumour = weights.sum(0) > 0.5
    strongest = weights[:, tumour].argmax(0)  # only tumour voxels: a full-volume argmax is slow
    label[tumour] = torch.tensor([EDEMA, CORE, ENHANCING], dtype=torch.uint8)[strongest]
    return label


def _intensities(
    rng: np.random.Generator,
    maps: torch.Tensor,
    weights: torch.Tensor,
    brain: torch.Tensor,
) -> torch.Tensor:
    """The four modalities: tissue mixture + tumour, texture, bias field, Rician noise, scale."""
    shape = tuple(maps.shape[1:])
    tissue = maps[:3] / maps[:3].sum(0, keepdim=True).clamp_min(1e-3)
    normal_weight = (1 - weights.sum(0)).clamp(0, 1)
    t1_texture = maps[3] / (tissue * torch.tensor(CONTRAST_T1)[:, None, None, None]).sum(0).clamp_min(0.05)
    t1_texture = t1_texture.clamp(0.7, 1.3)
    normal = torch.einsum("tm,txyz->mxyz", torch.tensor([CONTRAST[n] for n in TISSUES]), tissue)
    lesion_contrast = np.array([CONTRAST[n] for n in COMPARTMENTS]) * np.exp(
        rng.normal(0, LESION_JITTER, size=(len(COMPARTMENTS), len(MODALITIES)))
    )
    lesion = torch.einsum("cm,cxyz->mxyz", torch.from_numpy(lesion_contrast.astype(np.float32)), weights)
    image = torch.empty((len(MODALITIES), *shape))
    for channel in range(len(MODALITIES)):
        heterogeneity = 1 + 0.12 * smooth_noise(rng, shape, 24)
        texture = t1_texture if channel in (1, 2) else 1 + 0.35 * (t1_texture - 1)  # anatomy's fine detail
        signal = normal[channel] * normal_weight * texture + lesion[channel] * heterogeneity  # tumour replaces it
        bias = torch.exp(float(rng.uniform(0.05, 0.15)) * smooth_noise(rng, shape, 4))
        sigma = float(rng.uniform(0.015, 0.035))
        noise = torch.from_numpy(rng.standard_normal((2, *shape), dtype=np.float32)) * sigma
        signal = torch.sqrt((signal * bias + noise[0]) ** 2 + noise[1] ** 2)  # Rician
        image[channel] = signal * float(rng.uniform(300, 1500)) * brain
    return image.round().clamp(0, 32767)


def write_phantom(phantom: Phantom, out: Path, layout: Layout) -> None:
    """Write one phantom as a training case of dataset folder ``out`` in ``layout`` (int16 images, uint8 labels)."""
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm", "sec")

    def save(data: np.ndarray, path: Path, dtype: type) -> None:
        image = nib.Nifti1Image(data.astype(dtype), phantom.affine, header=header.copy())
        image.set_qform(phantom.affine, code=1)
        image.set_sform(phantom.affine, code=1)
        with atomic_path(path) as temporary:
            nib.save(image, temporary)

    paths = layout.image_paths(out, phantom.case_id)
    volumes = [np.moveaxis(phantom.image, 0, -1)] if layout.four_d else list(phantom.image)
    for volume, path in zip(volumes, paths, strict=True):
        save(volume, path, np.int16)
    save(layout.convention.from_internal(phantom.label), layout.label_path(out, phantom.case_id), np.uint8)


def write_cohort(out: str | Path, settings: CohortConfig = CohortConfig(), progress: bool = False) -> list[str]:
    """Generate ``settings.cases`` phantoms into dataset folder ``out`` in ``settings.layout`` (a name in
    ``layouts.LAYOUTS``), named as that layout's datasets name cases; cases already written are kept (the label is
    written last).

    Returns:
        The case ids, in order.
    """
    if settings.layout not in LAYOUTS:
        raise ValueError(f"unknown layout {settings.layout!r}; choose one of {', '.join(LAYOUTS)}")
    layout, out = LAYOUTS[settings.layout], Path(out)
    make_folder(out)
    meta = layout.dataset_json(settings.cases, "glioseg phantoms")
    if meta:
        with atomic_path(out / "dataset.json") as temporary:
            temporary.write_text(json.dumps(meta, indent=2))
    ids = [layout.case_id_format.format(number + 1) for number in range(settings.cases)]
    from rich.progress import track

    for index in track(range(settings.cases), description="phantoms", disable=not progress):
        if not layout.label_path(out, ids[index]).exists():
            write_phantom(make_phantom(index, settings.seed, settings.shape, ids[index]), out, layout)
    return ids
