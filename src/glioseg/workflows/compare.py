"""`glioseg compare BASELINE FOLLOWUP`: how a patient's tumour changed between two scans.

The follow-up is registered rigidly onto the baseline (T1Gd to T1Gd, :mod:`glioseg.core.registration`); its mask moves
with it (nearest neighbour) only to match lesions: every volume and diameter is measured on each scan's own grid
(:mod:`glioseg.evaluation.measurements`). Per region (WT, TC, ET): volumes and their change; for the enhancing lesions
the sum of the RANO bidimensional products of the measurable ones. Lesions (whole-tumour and enhancing components) are
matched when they overlap after registration; the rest are new or vanished. RANO-style flags, for research only:
a sum of products grown by at least 25 % or a new measurable enhancing lesion marks a progression candidate, one
shrunk by at least 50 % a response candidate. Not a diagnosis: RANO also weighs non-enhancing disease, steroids and
the clinical state, which a mask does not hold.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioseg.core.config import DEFAULT_DEVICE
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, make_folder
from glioseg.core.labels import CONVENTIONS, REGIONS
from glioseg.core.registration import RigidTransform, register_rigid, resample
from glioseg.datasets.cases import Case, open_nifti, read_case, read_label, write_label
from glioseg.datasets.layouts import MODALITIES
from glioseg.evaluation.measurements import LESION_KINDS, measure_lesions, numbered_lesions
from glioseg.evaluation.metrics import volumes_ml

PROGRESSION_INCREASE = 0.25
"""RANO: a sum of products grown by at least 25 % (from its smallest value; here: the baseline) is progression."""
RESPONSE_DECREASE = 0.50
"""RANO: a sum of products shrunk by at least 50 % is a (partial) response."""
RESEARCH_USE = "Research use only: not a diagnosis and not a RANO assessment."
T1GD_CHANNEL = MODALITIES.index("T1Gd")
"""The channel registered and shown: the T1Gd, where the enhancing lesions RANO measures are seen."""


@dataclass
class Comparison:
    """What changed: per region, the enhancing sum of products, each lesion's fate, the flags and the motion."""

    regions: list[dict]
    sum_of_products: dict
    lesions: list[dict]
    flags: list[str]
    motion: RigidTransform
    followup_in_baseline: np.ndarray  # the follow-up's internal label on the baseline grid
    followup_image_in_baseline: np.ndarray  # its T1Gd there, for the figure

    def summary(self) -> dict:
        return {
            "research_use": RESEARCH_USE, "regions": self.regions, "sum_of_products": self.sum_of_products,
            "flags": self.flags, "lesions": self.lesions,
            "registration": {"rotation_degrees": round(self.motion.rotation_degrees, 2),
                             "translation_mm": round(self.motion.translation_mm, 2),
                             "mutual_information": round(self.motion.metric, 4)},
        }  # fmt: skip


def compare(
    baseline: Path,
    followup: Path,
    out: Path,
    masks: tuple[Path | None, Path | None] = (None, None),
    mask_labels: str | None = None,
    runs: list[Path] | None = None,
    device: str = DEFAULT_DEVICE,
) -> Comparison:
    """Read both time points (case folders or files, as ``glioseg predict`` takes them), take their masks (given,
    in ``mask_labels`` or each case's own convention; else segmented with ``runs`` or the shipped model, and written
    to ``out`` as ``baseline_mask.nii.gz``, ``followup_mask.nii.gz``), compare them and write the results (with
    ``followup_mask_in_baseline.nii.gz``, the follow-up's mask registered onto the baseline, in its convention).

    Raises:
        InputError: a case or mask that cannot be read, or a mask off its case's grid.
    """
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder", "choose another --out")
    cases = [read_case(path) for path in (baseline, followup)]
    labels, predicted, model = [], [], None
    for case, mask in zip(cases, masks):
        if mask is not None:
            convention = CONVENTIONS[mask_labels] if mask_labels else case.files.convention
            files = dataclasses.replace(case.files, label=Path(mask), convention=convention)
            labels.append(read_label(files, open_nifti(case.files.first_image)))
            predicted.append(False)
        else:
            from glioseg.inference.predict import load_model

            model = model or load_model(runs or None, device)
            labels.append(model.predict(case).label)
            predicted.append(True)
    comparison = compare_cases(cases[0], labels[0], cases[1], labels[1])
    make_folder(out)
    for case, label, made, name in zip(cases, labels, predicted, ("baseline", "followup")):
        if made:
            write_label(out / f"{name}_mask.nii.gz", label, case)
    write_label(out / "followup_mask_in_baseline.nii.gz", comparison.followup_in_baseline, cases[0])
    write_comparison(out, cases[0], labels[0], comparison, (cases[0].case_id, cases[1].case_id))
    return comparison


def percent(before: float, after: float) -> float | None:
    """The change in percent of ``before``; None where there was nothing before."""
    return round(100 * (after - before) / before, 1) if before > 0 else None


def compare_cases(baseline: Case, baseline_label: np.ndarray, followup: Case, followup_label: np.ndarray) -> Comparison:
    """Compare two time points of one patient, each a case with its internal label map on the case's grid."""
    motion = register_rigid(
        baseline.image[T1GD_CHANNEL], baseline.affine, followup.image[T1GD_CHANNEL], followup.affine
    )
    shape = baseline_label.shape
    moved_label = resample(followup_label, followup.affine, shape, baseline.affine, motion, labels=True)
    moved_image = resample(followup.image[T1GD_CHANNEL], followup.affine, shape, baseline.affine, motion, labels=False)
    measured = {name: measure_lesions(label, case.affine) for name, label, case in
                (("baseline", baseline_label, baseline), ("followup", followup_label, followup))}  # fmt: skip
    before, after = volumes_ml(baseline_label, baseline.spacing), volumes_ml(followup_label, followup.spacing)
    regions = [
        {"region": name, "baseline_ml": round(before[name], 3), "followup_ml": round(after[name], 3),
         "change_ml": round(after[name] - before[name], 3), "change_percent": percent(before[name], after[name])}
        for name in REGIONS
    ]  # fmt: skip
    products = {
        name: sum(r["product_mm2"] for r in rows if r["kind"] == "enhancing" and r["measurable"])
        for name, rows in measured.items()
    }
    moved_ids = {kind: resample(numbered_lesions(followup_label, kind)[0], followup.affine, shape, baseline.affine,
                                motion, labels=True) for kind in LESION_KINDS}  # fmt: skip
    lesions = match_lesions(baseline_label, moved_ids, measured)
    new_measurable = [r for r in lesions if r["status"] == "new" and r["kind"] == "enhancing" and r["measurable"]]
    change = percent(products["baseline"], products["followup"])
    flags = []
    if (
        (change is not None and change >= 100 * PROGRESSION_INCREASE)
        or new_measurable
        or (products["baseline"] == 0 and products["followup"] > 0)
    ):
        flags.append("progression candidate")
    if change is not None and change <= -100 * RESPONSE_DECREASE:
        flags.append("response candidate")
    sum_of_products = {"baseline_mm2": round(products["baseline"], 2), "followup_mm2": round(products["followup"], 2),
                       "change_percent": change, "new_measurable_enhancing_lesions": len(new_measurable)}  # fmt: skip
    return Comparison(regions, sum_of_products, lesions, flags or ["stable"], motion, moved_label, moved_image)


def match_lesions(
    baseline_label: np.ndarray, moved_ids: dict[str, np.ndarray], measured: dict[str, list[dict]]
) -> list[dict]:
    """Each lesion's fate. Lesions that overlap after registration form a group, through any chain of overlaps (a
    lesion that split, lesions that merged): ``matched``; a baseline lesion overlapping none ``vanished``, a follow-up
    one ``new``. ``moved_ids``: per kind, the follow-up's lesion numbers moved onto the baseline grid. Numbers are
    those of each scan's lesions.csv; a row sums its lesions' measurements, each on its own scan's grid."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = []
    for kind in LESION_KINDS:
        before, _ = numbered_lesions(baseline_label, kind)
        after = moved_ids[kind]
        by_number = {name: {r["lesion"]: r for r in found if r["kind"] == kind} for name, found in measured.items()}
        count_before, count_after = len(by_number["baseline"]), len(by_number["followup"])
        both = (before > 0) & (after > 0)
        pairs = np.unique(np.stack([before[both], after[both]]), axis=1)  # (2, n): baseline, follow-up numbers
        # one graph over both scans' lesions (baseline 0.., follow-up after them), an edge per overlapping pair
        nodes = count_before + count_after
        edges = coo_matrix((np.ones(pairs.shape[1]), (pairs[0] - 1, count_before + pairs[1] - 1)), (nodes, nodes))
        _, group = connected_components(edges, directed=False)
        for members in np.unique(group):
            numbers = np.flatnonzero(group == members) + 1
            lesions_before = [int(n) for n in numbers if n <= count_before]
            lesions_after = [int(n) - count_before for n in numbers if n > count_before]
            status = "matched" if lesions_before and lesions_after else "vanished" if lesions_before else "new"
            rows.append(lesion_row(kind, status, lesions_before, lesions_after, by_number))
    return rows


def lesion_row(kind: str, status: str, before: list[int], after: list[int], by_number: dict) -> dict:
    """One row of the lesion table: each side's volumes summed over its lesions, the products over its measurable
    ones (as RANO sums them), its longest diameter."""
    sides = {"baseline": before, "followup": after}
    row: dict = {"kind": kind, "status": status, "baseline_lesions": " ".join(map(str, before)),
                 "followup_lesions": " ".join(map(str, after))}  # fmt: skip
    for side, numbers in sides.items():
        found = [by_number[side][n] for n in numbers]
        row[f"{side}_ml"] = round(sum(r["volume_ml"] for r in found), 4)
        row[f"{side}_product_mm2"] = round(sum(r["product_mm2"] for r in found if r["measurable"]), 2)
        row[f"{side}_longest_diameter_mm"] = max((r["longest_diameter_mm"] for r in found), default=0.0)
    row["change_ml"] = round(row["followup_ml"] - row["baseline_ml"], 4)
    row["measurable"] = any(by_number[side][n]["measurable"] for side, ns in sides.items() for n in ns)
    return row


LESION_TABLE = ("kind", "status", "baseline_lesions", "followup_lesions", "baseline_ml", "followup_ml", "change_ml",
                "baseline_product_mm2", "followup_product_mm2", "baseline_longest_diameter_mm",
                "followup_longest_diameter_mm", "measurable")  # fmt: skip
"""The columns of the comparison's lesions.csv."""


def comparison_figure(baseline: Case, baseline_label: np.ndarray, comparison: Comparison):
    """Baseline and registered follow-up side by side (T1Gd, masks over them) in three planes through the
    baseline's largest lesion (or the follow-up's, where the baseline has none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glioseg.evaluation.figures import PLANES, label_rgba, radiological_slices, tumour_centre

    anchor = baseline_label if baseline_label.any() else comparison.followup_in_baseline
    loc = tumour_centre(anchor, anchor.shape)
    rows = [
        ("baseline", baseline.image[T1GD_CHANNEL], baseline_label),
        ("follow-up, registered", comparison.followup_image_in_baseline, comparison.followup_in_baseline),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(11, 7.5), facecolor="black")
    for row, (title, image, label) in enumerate(rows):
        high = float(np.percentile(image[image > 0], 99.5)) if image.any() else 1.0
        pictures, overlays = (
            radiological_slices(image, baseline.affine, loc),
            radiological_slices(label, baseline.affine, loc),
        )
        for column, plane in enumerate(PLANES):
            ax = axes[row, column]
            picture, aspect = pictures[plane]
            ax.imshow(picture, cmap="gray", vmin=0, vmax=high, aspect=aspect)
            ax.imshow(label_rgba(overlays[plane][0]), aspect=aspect)
            ax.set_title(f"{title}, {plane}", color="white", fontsize=10)
            ax.set_axis_off()
    figure.suptitle(RESEARCH_USE, color="white", fontsize=9)
    figure.tight_layout()
    return figure


def write_comparison(
    out: Path, baseline: Case, baseline_label: np.ndarray, comparison: Comparison, names: tuple[str, str]
) -> None:
    """``compare.json``, ``regions.csv``, ``lesions.csv``, ``compare.png`` and ``compare.html`` (self-contained) in
    ``out``, each written whole or not at all."""
    make_folder(out)
    summary = {"baseline": names[0], "followup": names[1], **comparison.summary()}
    with atomic_path(out / "compare.json") as temporary:
        temporary.write_text(json.dumps(summary, indent=1))
    for name, rows, columns in (("regions.csv", comparison.regions, list(comparison.regions[0])),
                                ("lesions.csv", comparison.lesions, list(LESION_TABLE))):  # fmt: skip
        with atomic_path(out / name) as temporary, open(temporary, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    figure = comparison_figure(baseline, baseline_label, comparison)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, facecolor="black")
    import matplotlib.pyplot as plt

    plt.close(figure)
    with atomic_path(out / "compare.png") as temporary:
        temporary.write_bytes(buffer.getvalue())
    with atomic_path(out / "compare.html") as temporary:
        temporary.write_text(comparison_page(summary, base64.b64encode(buffer.getvalue()).decode()), encoding="utf-8")


def comparison_page(summary: dict, png: str) -> str:
    """The offline HTML page of a comparison."""
    from glioseg.workflows.report import html_table

    motion = summary["registration"]
    products = summary["sum_of_products"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>glioseg compare</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; }}
.warning {{ background: #fff3cd; padding: 0.6em; border: 1px solid #e0c36b; }} img {{ max-width: 100%; }}</style>
</head><body>
<h1>Follow-up: {html.escape(summary["baseline"])} &rarr; {html.escape(summary["followup"])}</h1>
<p class="warning">{html.escape(RESEARCH_USE)} Flags: <b>{html.escape(", ".join(summary["flags"]))}</b>.</p>
<h2>Regions</h2>{html_table(summary["regions"], list(summary["regions"][0]))}
<h2>Enhancing lesions: sum of bidimensional products (measurable lesions)</h2>{html_table([products], list(products))}
<h2>Lesions</h2>{html_table(summary["lesions"], list(LESION_TABLE))}
<p>Registration (follow-up onto baseline, rigid, T1Gd): rotation {motion["rotation_degrees"]} degrees,
translation {motion["translation_mm"]} mm.</p>
<h2>Baseline and registered follow-up</h2><img alt="side by side" src="data:image/png;base64,{png}">
</body></html>
"""
