"""glioseg: brain tumour segmentation in multimodal MRI with a 3D U-Net.

    import glioseg
    case = glioseg.load_case("Brats18_2013_20_1/")       # any layout
    model = glioseg.load_model("runs/fold0")            # a run folder (several: an ensemble)
    pred = model.predict(case)                          # label on the case's grid, volumes, ...
    pred.review.score, pred.review.advised              # whether a reader should check it (MODEL_CARD.md)
    lacking = glioseg.load_case("case_without_t1/", complete=False)  # a case lacking a sequence
    model.predict(lacking).review.unreliable            # the regions not to trust without it
    glioseg.sens_spec_table(pred, case.label)           # pandas DataFrame per class
    glioseg.plot_overlay(case, pred, loc=(120, 120, 77)).savefig("overlay.png")

Heavy modules (torch, MONAI, matplotlib) load on first use of the functions that need them.
"""

from glioseg.core.config import DEFAULT_DEVICE
from glioseg.core.errors import InputError
from glioseg.core.version import __version__
from glioseg.datasets.cases import Case, find_cases, read_case, write_label
from glioseg.datasets.layouts import CaseFiles

__all__ = [
    "Case", "CaseFiles", "InputError", "find_cases", "load_case", "load_model", "plot_overlay", "read_case",
    "sens_spec_table", "write_label", "__version__",
]  # fmt: skip


def load_case(path, complete: bool = True):
    """Read a case in any supported layout; ``complete=False`` reads a case lacking one sequence (its channel zero,
    named in ``case.absent``), which ``model.predict`` segments without it (``glioseg.datasets.cases.read_case``)."""
    return read_case(path, complete=complete)


def load_model(run=None, device: str = DEFAULT_DEVICE):
    """Load trained run(s) for prediction (see :func:`glioseg.inference.predict.load_model`)."""
    from glioseg.inference.predict import load_model as load

    return load(run, device)


def sens_spec_table(prediction, truth):
    """Sensitivity, specificity and Dice per class, a DataFrame (:func:`glioseg.evaluation.metrics.sens_spec_table`)."""
    from glioseg.evaluation.metrics import sens_spec_table as table

    return table(prediction, truth)


def plot_overlay(case, prediction, loc=None, modality: str = "FLAIR"):
    """Three orthogonal slices, truth above prediction (see :func:`glioseg.evaluation.figures.plot_overlay`)."""
    from glioseg.evaluation.figures import plot_overlay as plot

    return plot(case, prediction, loc, modality)
