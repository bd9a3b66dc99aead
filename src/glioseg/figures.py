"""Figures of cases and results (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glioseg.io import atomic_path
from glioseg.labels import CORE, EDEMA, ENHANCING
from glioseg.layouts import MODALITIES

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


def _display(plane: np.ndarray) -> np.ndarray:
    """Array axes (x, y) -> image rows/columns with superior/anterior up, as radiologists view it."""
    return np.rot90(plane)


def _aspect(spacing: tuple[float, ...], axis: int) -> float:
    """Pixel aspect (height / width) of the plane normal to ``axis`` after ``_display``."""
    columns, rows = (a for a in range(3) if a != axis)
    return spacing[rows] / spacing[columns]


def save_case_preview(
    image: np.ndarray,
    label: np.ndarray | None,
    path: str | Path,
    title: str = "",
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Path:
    """PNG of the four modalities (columns) in three planes (rows) through the tumour, label overlaid.

    Args:
        image: ``(4, X, Y, Z)`` FLAIR, T1, T1Gd, T2.
        label: ``(X, Y, Z)`` internal classes, or None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centre = tumour_centre(label, image.shape[1:])
    figure, axes = plt.subplots(3, 4, figsize=(12, 9), facecolor="black")
    for column, modality in enumerate(MODALITIES):
        volume = image[column]
        high = float(np.percentile(volume[volume > 0], 99.5)) if volume.any() else 1.0
        for row, axis in enumerate((2, 1, 0)):  # axial, coronal, sagittal
            index = [slice(None)] * 3
            index[axis] = centre[axis]
            ax = axes[row, column]
            ax.imshow(_display(volume[tuple(index)]), cmap="gray", vmin=0, vmax=high, aspect=_aspect(spacing, axis))
            if label is not None:
                ax.imshow(_display(label_rgba(label[tuple(index)])), aspect=_aspect(spacing, axis))
            ax.set_axis_off()
            if row == 0:
                ax.set_title(modality, color="white")
    if title:
        figure.suptitle(title, color="white")
    figure.tight_layout()
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
        history: ``history.jsonl`` entries of a run (glioseg.train.read_history).
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
    ground truth on the top row and prediction below, over one modality (the original's ``predict_and_viz``).

    Args:
        case: a ``glioseg.io.Case`` (its label is the ground truth; a case without one shows the image).
        prediction: a label array or ``Prediction`` on the case's grid.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = np.asarray(prediction)
    volume = case.image[MODALITIES.index(modality)]
    loc = loc or tumour_centre(case.label if case.label is not None else predicted, volume.shape)
    high = float(np.percentile(volume[volume > 0], 99.5)) if volume.any() else 1.0
    rows = [("ground truth", case.label), ("prediction", predicted)]
    figure, axes = plt.subplots(2, 3, figsize=(11, 7.5), facecolor="black")
    for row, (title, label) in enumerate(rows):
        for column, (axis, plane) in enumerate(((2, "axial"), (1, "coronal"), (0, "sagittal"))):
            index = [slice(None)] * 3
            index[axis] = loc[axis]
            ax = axes[row, column]
            aspect = _aspect(case.spacing, axis)
            ax.imshow(_display(volume[tuple(index)]), cmap="gray", vmin=0, vmax=high, aspect=aspect)
            if label is not None:
                ax.imshow(_display(label_rgba(label[tuple(index)])), aspect=aspect)
            ax.set_title(f"{title}, {plane} {loc[axis]}", color="white", fontsize=10)
            ax.set_axis_off()
    figure.suptitle(f"{case.case_id}  (edema green, core red, enhancing yellow)", color="white")
    figure.tight_layout()
    return figure
