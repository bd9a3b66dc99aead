"""Figures of cases and results (matplotlib, no screen needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioseg.core.files import atomic_path
from glioseg.core.labels import CORE, EDEMA, ENHANCING
from glioseg.datasets.layouts import MODALITIES

LABEL_COLOURS = {EDEMA: (0.1, 0.8, 0.2), CORE: (0.9, 0.15, 0.15), ENHANCING: (1.0, 0.85, 0.0)}
"""Overlay colour per internal class: edema green, core red, enhancing yellow (the BraTS habit)."""


def label_rgba(label: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An RGBA overlay ``(..., 4)`` for a 2D slice of internal classes; background transparent."""
    rgba = np.zeros((*label.shape, 4), dtype=np.float32)
    for value, colour in LABEL_COLOURS.items():
        rgba[label == value] = (*colour, alpha)
    return rgba


def tumour_centre(label: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The tumour's centre of mass (voxel), or the volume's centre when there is no tumour."""
    if label is None or not label.any():
        return tuple(n // 2 for n in shape)  # type: ignore[return-value]
    return tuple(int(round(c)) for c in np.argwhere(label > 0).mean(0))  # type: ignore[return-value]


PLANES = ("axial", "coronal", "sagittal")
CONVENTION = "radiological: patient's right on the image's left; anterior up (axial), superior up"


@dataclass(frozen=True)
class Orientation:
    """How a file's voxel axes map to RAS (x to the patient's right, y anterior, z superior), from its affine."""

    transform: np.ndarray  # nibabel orientation: for each voxel axis, its RAS axis and whether it is flipped
    shape: tuple[int, ...]
    spacing: tuple[float, float, float]  # along R, A, S

    @classmethod
    def of(cls, affine: np.ndarray, shape: tuple[int, ...]) -> Orientation:
        import nibabel as nib

        transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(affine),
                                                    nib.orientations.axcodes2ornt("RAS"))  # fmt: skip
        zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
        spacing = [0.0, 0.0, 0.0]
        for axis, (target, _) in enumerate(transform):
            spacing[int(target)] = float(zooms[axis])
        return cls(transform, tuple(shape[:3]), tuple(spacing))  # type: ignore[arg-type]

    def volume(self, array: np.ndarray) -> np.ndarray:
        import nibabel as nib

        return nib.orientations.apply_orientation(array, self.transform)

    def voxel(self, loc: tuple[int, int, int]) -> tuple[int, int, int]:
        """A file voxel's index in the RAS-oriented array."""
        out = [0, 0, 0]
        for axis, (target, flip) in enumerate(self.transform):
            out[int(target)] = self.shape[axis] - 1 - loc[axis] if flip < 0 else loc[axis]
        return tuple(out)  # type: ignore[return-value]


def radiological_slices(
    volume: np.ndarray, affine: np.ndarray, loc: tuple[int, int, int]
) -> dict[str, tuple[np.ndarray, float]]:
    """The axial, coronal and sagittal slices of a ``(X, Y, Z, ...)`` volume through voxel ``loc``, displayed the
    radiological way whatever the file's voxel order (``CONVENTION``), each with its pixel aspect (height / width).

    Example: BraTS files (affine diag(-1, -1, 1)) and the same scan stored RAS give identical pictures.
    """
    orientation = Orientation.of(affine, volume.shape)
    ras, (x, y, z) = orientation.volume(volume), orientation.voxel(loc)
    r, a, s = orientation.spacing
    return {  # rows top to bottom and columns left to right, in RAS terms
        "axial": (np.swapaxes(ras[::-1, ::-1, z], 0, 1), a / r),  # rows anterior -> posterior, columns right -> left
        "coronal": (np.swapaxes(ras[::-1, y, ::-1], 0, 1), s / r),  # rows superior -> inferior
        "sagittal": (np.swapaxes(ras[x, ::-1, ::-1], 0, 1), s / a),  # columns anterior -> posterior
    }


def case_preview(
    image: np.ndarray,
    label: np.ndarray | None,
    title: str = "",
    affine: np.ndarray | None = None,
    columns: tuple[str, ...] = MODALITIES,
):
    """The figure of the four modalities (columns) in three planes (rows) through the tumour, label overlaid.

    Args:
        image: ``(4, X, Y, Z)`` FLAIR, T1, T1Gd, T2 (or one volume per name in ``columns``).
        label: ``(X, Y, Z)`` internal classes, or None.
        title: above the pictures, wrapped to the figure's width (a one-column figure is narrow).
        affine: the voxel-to-world transform that orients the pictures (default: RAS, 1 mm).
    """
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    affine = np.eye(4) if affine is None else affine
    centre = tumour_centre(label, image.shape[1:])
    width = max(3 * len(columns), 6)
    figure, axes = plt.subplots(3, len(columns), figsize=(width, 9), facecolor="black", squeeze=False)
    for column, modality in enumerate(columns):
        volume = image[column]
        high = float(np.percentile(volume[volume > 0], 99.5)) if volume.any() else 1.0
        planes = radiological_slices(volume, affine, centre)
        overlays = radiological_slices(label, affine, centre) if label is not None else {}
        for row, plane in enumerate(PLANES):
            ax = axes[row, column]
            picture, aspect = planes[plane]
            ax.imshow(picture, cmap="gray", vmin=0, vmax=high, aspect=aspect)
            if plane in overlays:
                ax.imshow(label_rgba(overlays[plane][0]), aspect=aspect)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(modality, color="white")
    fontsize = 9
    characters = int(width * 72 / (fontsize * 0.62))  # a line's worth of 9 pt characters across the figure
    text = "\n".join(textwrap.wrap(f"{title}  ({CONVENTION})" if title else CONVENTION, characters))
    figure.suptitle(text, color="white", fontsize=fontsize)
    lines = text.count("\n") + 1
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.018 * lines))  # room for the title's lines above the pictures
    return figure


def save_case_preview(
    image: np.ndarray,
    label: np.ndarray | None,
    path: str | Path,
    title: str = "",
    affine: np.ndarray | None = None,
    columns: tuple[str, ...] = MODALITIES,
) -> Path:
    """:func:`case_preview` as a PNG (written whole or not at all)."""
    import matplotlib.pyplot as plt

    figure = case_preview(image, label, title, affine, columns)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=80, facecolor="black", format="png")
    plt.close(figure)
    return Path(path)


def save_learning_curves(history: list[dict], path: str | Path, title: str = "") -> Path:
    """PNG of :func:`learning_curves` (written atomically)."""
    import matplotlib.pyplot as plt

    figure = learning_curves(history, title)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=90, format="png")
    plt.close(figure)
    return Path(path)


def learning_curves(history: list[dict], title: str = ""):
    """Figure of training/validation loss and validation Dice per region against the optimisation step.

    Args:
        history: ``history.jsonl`` entries of a run (glioseg.training.loop.read_history).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, dice_axes) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [e["step"] for e in history]
    loss_axes.plot(steps, [e["loss/train"] for e in history], label="train")
    validated = [e for e in history if "loss/val" in e]
    loss_axes.plot([e["step"] for e in validated], [e["loss/val"] for e in validated], "o-", label="validation")
    loss_axes.set(xlabel="step", ylabel="loss", title="loss")
    loss_axes.legend()
    for region in ("WT", "TC", "ET"):
        dice_axes.plot([e["step"] for e in validated], [e[f"dice/{region}"] for e in validated], "o-", label=region)
    dice_axes.set(xlabel="step", ylabel="Dice", title="validation Dice", ylim=(0, 1))
    dice_axes.grid(alpha=0.3)
    dice_axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_overlay(case, prediction, loc: tuple[int, int, int] | None = None, modality: str = "FLAIR"):
    """Matplotlib figure: axial, coronal and sagittal slices through ``loc`` (voxel; default the tumour's centre),
    ground truth on the top row and prediction below, over one modality (the original's ``predict_and_viz``), oriented
    from the case's affine (``CONVENTION``).

    Args:
        case: a ``glioseg.datasets.cases.Case`` (its label is the ground truth; a case without one shows the image).
        prediction: a label array or ``Prediction`` on the case's grid.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = np.asarray(prediction)
    volume = case.image[MODALITIES.index(modality)]
    loc = loc or tumour_centre(case.label if case.label is not None else predicted, volume.shape)
    high = float(np.percentile(volume[volume > 0], 99.5)) if volume.any() else 1.0
    planes = radiological_slices(volume, case.affine, loc)
    rows = [("ground truth", case.label), ("prediction", predicted)]
    figure, axes = plt.subplots(2, 3, figsize=(11, 7.5), facecolor="black")
    for row, (title, label) in enumerate(rows):
        overlays = radiological_slices(label, case.affine, loc) if label is not None else {}
        for column, plane in enumerate(PLANES):
            ax = axes[row, column]
            picture, aspect = planes[plane]
            ax.imshow(picture, cmap="gray", vmin=0, vmax=high, aspect=aspect)
            if plane in overlays:
                ax.imshow(label_rgba(overlays[plane][0]), aspect=aspect)
            ax.set_title(f"{title}, {plane}", color="white", fontsize=10)
            ax.set_axis_off()
    figure.suptitle(f"{case.case_id} through voxel {tuple(int(v) for v in loc)}  (edema green, core red, enhancing "
                    f"yellow; {CONVENTION})", color="white", fontsize=9)  # fmt: skip
    figure.tight_layout()
    return figure
