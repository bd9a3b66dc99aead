"""`glioseg report`: one self-contained HTML file (figures inlined as PNG, no scripts or styles fetched) with a
run's learning curves, the evaluation per case (sortable) and its summary, box plots per structure, overlays
of the best and worst cases, the tumour volumes and the per-lesion measurements.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, make_folder
from glioseg.core.labels import REGIONS, STRUCTURE_NAMES
from glioseg.evaluation.measurements import SMALLEST_SHOWN_ML

BEST_WORST = 2  # overlays of this many best and worst cases


@dataclass(frozen=True)
class Evaluation:
    """A prediction folder and the metrics of ``glioseg evaluate`` on it; either may be missing. With a ``title``,
    its sections appear under that heading (a report can compare several)."""

    predictions: Path | None = None
    metrics: Path | None = None
    title: str = ""


@dataclass(frozen=True)
class ReportInputs:
    """What a report is made from: a run's training, and evaluations of predictions; any part may be missing."""

    run: Path | None = None
    evaluations: tuple[Evaluation, ...] = ()


def find_report_inputs(folder: Path, metrics: Path | None = None) -> ReportInputs:
    """Read a run folder (``config.json``), a prediction folder (``predict.json``) or a folder holding both
    (as ``glioseg demo`` writes); the metrics CSV defaults to ``metrics.csv`` beside or inside the predictions."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder", "give a run folder, a prediction folder or a demo output folder")
    run = folder if (folder / "config.json").exists() else None
    predictions = folder if (folder / "predict.json").exists() else None
    if run is None and predictions is None:
        run = next((p for p in sorted(folder.iterdir()) if (p / "config.json").exists()), None)
        predictions = next((p for p in sorted(folder.iterdir()) if (p / "predict.json").exists()), None)
    if predictions is not None and run is None:
        run = _run_of(predictions)
    if metrics is None:
        candidates = [folder / "metrics.csv"] + ([predictions / "metrics.csv"] if predictions else [])
        metrics = next((c for c in candidates if c.exists()), None)
    if run is None and predictions is None and metrics is None:
        raise InputError(folder, "holds no run (config.json), predictions (predict.json) or metrics.csv",
                         "give the folder that glioseg train, predict or demo wrote")  # fmt: skip
    return ReportInputs(run, (Evaluation(predictions, metrics),))


def _run_of(predictions: Path) -> Path | None:
    """The run folder of the first model that made the predictions, if it still exists."""
    sources = json.loads((predictions / "predict.json").read_text()).get("sources", [])
    for source in sources:
        folder = Path(source).parent
        if (folder / "history.jsonl").exists():
            return folder
    return None


def write_report(out: Path, inputs: ReportInputs, title: str = "glioseg report") -> Path:
    """Write the HTML report to ``out`` atomically; returns ``out``."""
    sections = [] if inputs.run is None else [_run_section(inputs.run)]
    for evaluation in inputs.evaluations:
        sections.append(_evaluation_sections(evaluation))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    paths = [inputs.run] + [p for e in inputs.evaluations for p in (e.predictions, e.metrics)]
    sources = " · ".join(html.escape(str(p)) for p in paths if p)
    page = PAGE.format(title=html.escape(title), made=made, sources=sources, body="\n".join(sections), script=SCRIPT)
    out = Path(out)
    make_folder(out.parent)
    with atomic_path(out) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return out


def _evaluation_sections(evaluation: Evaluation) -> str:
    """Metrics, overlays and volumes of one evaluation; under its title, if it has one."""
    rows = _read_csv(evaluation.metrics, METRICS_COLUMNS) if evaluation.metrics else []
    sections = [_metrics_section(rows)] if rows else []
    if evaluation.predictions is not None:
        sections.append(_review_section(evaluation.predictions))
        sections.append(_overlay_section(evaluation.predictions, rows))
        volumes, lesions = evaluation.predictions / "volumes.csv", evaluation.predictions / "lesions.csv"
        if volumes.exists():
            sections.append(_table_section("Tumour volumes (mL, predicted)", _read_csv(volumes, ("case_id",))))
        if lesions.exists():
            sections.append(_lesions_section(_read_csv(lesions, LESION_COLUMNS)))
    body = "\n".join(sections)
    if not evaluation.title:
        return body
    demoted = re.sub(r"<(/?)h([23])>", lambda m: f"<{m[1]}h{int(m[2]) + 1}>", body)  # headings one level down
    return f"<h2>{html.escape(evaluation.title)}</h2>\n{demoted}"


METRICS_COLUMNS = ("case_id", "structure", "dice")
"""What the report reads of a metrics table (``glioseg evaluate`` writes these and more)."""


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    """The rows of a table glioseg wrote, refused with the file named if it lacks ``columns`` or a row is short."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            rows = list(reader)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(path, f"cannot be read as a table ({error})", "write it again with glioseg") from None
    short = next((number for number, row in enumerate(rows, start=2) if None in row.values()), None)
    if missing or short:
        problem = f"lacks the columns {', '.join(missing)}" if missing else f"row {short} is cut short"
        raise InputError(path, f"not a table glioseg wrote: it {problem}", "write it again with glioseg "
                         "(evaluate writes metrics.csv, predict volumes.csv and lesions.csv)")  # fmt: skip
    return rows


def _png(figure) -> str:
    """An ``<img>`` with the figure inlined (base64 PNG), so the page needs no other file."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, facecolor=figure.get_facecolor())
    plt.close(figure)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _run_section(run: Path) -> str:
    from glioseg.evaluation.figures import learning_curves
    from glioseg.network.runs import read_history

    history = read_history(run)
    if not history:
        return f"<h2>Training</h2><p>{html.escape(str(run))} has no finished epoch yet.</p>"
    config = json.loads((run / "config.json").read_text())
    last = history[-1]
    facts = (f"{last['epoch']} epochs, {last['step']} steps, {last.get('samples_per_s', 0):.1f} samples/s; "
             f"patch {config['train']['patch']}, batch {config['train']['batch']}, head {config['model']['head']}, "
             f"width {config['model']['width']}, fold {config['train']['fold']}")  # fmt: skip
    return f"<h2>Training</h2><p>{html.escape(facts)}</p>{_png(learning_curves(history, run.name))}"


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _metrics_section(rows: list[dict]) -> str:
    by_case: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault(row["case_id"], {})[row["structure"]] = row
    summary = ["<table><tr><th>structure</th><th>Dice mean ± std</th><th>Dice median</th><th>HD95 mm median</th>"
               "<th>sensitivity</th><th>specificity</th><th>cases</th></tr>"]  # fmt: skip
    for name in STRUCTURE_NAMES:
        chosen = [r for r in rows if r["structure"] == name]
        if not chosen:
            continue
        dice = np.array([_number(r["dice"]) for r in chosen])
        hd95 = np.array([_number(r["hd95"]) for r in chosen])
        sensitivity = np.nanmean([_number(r["sensitivity"]) for r in chosen])
        specificity = np.nanmean([_number(r["specificity"]) for r in chosen])
        summary.append(f"<tr><td>{name}</td><td>{np.nanmean(dice):.3f} ± {np.nanstd(dice):.3f}</td>"
                       f"<td>{np.nanmedian(dice):.3f}</td><td>{np.nanmedian(hd95):.1f}</td><td>{sensitivity:.3f}</td>"
                       f"<td>{specificity:.4f}</td><td>{len(chosen)}</td></tr>")  # fmt: skip
    summary.append("</table>")
    columns = [("dice", region) for region in REGIONS] + [("hd95", region) for region in REGIONS]
    columns += [("volume_pred_ml", "WT"), ("volume_true_ml", "WT")]
    header = "".join(f"<th>{html.escape(f'{metric} {name}')}</th>" for metric, name in columns)
    body = []
    for case_id, structures in sorted(by_case.items()):
        cells = "".join(
            f"<td>{_number(structures.get(name, {}).get(metric, 'nan')):.3f}</td>" for metric, name in columns
        )
        body.append(f"<tr><td>{html.escape(case_id)}</td>{cells}</tr>")
    per_case = f'<table class="sortable"><tr><th>case</th>{header}</tr>{"".join(body)}</table>'
    return (f"<h2>Evaluation</h2>{''.join(summary)}{_png(_box_plots(rows))}"
            f"<h3>Per case</h3><p>Click a column to sort.</p>{per_case}")  # fmt: skip


def _box_plots(rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in STRUCTURE_NAMES if any(r["structure"] == n for r in rows)]
    figure, (dice_axes, hd_axes) = plt.subplots(1, 2, figsize=(11, 4))
    dice_axes.boxplot([[_number(r["dice"]) for r in rows if r["structure"] == n] for n in names], tick_labels=names)
    dice_axes.set(title="Dice per case", ylim=(0, 1.02))
    regions = [n for n in REGIONS if n in names]
    hd_axes.boxplot([[_number(r["hd95"]) for r in rows if r["structure"] == n] for n in regions], tick_labels=regions)
    hd_axes.set(title="HD95 per case (mm)")
    for axes in (dice_axes, hd_axes):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


REVIEW_BADGE = ' <span class="review">review advised</span>'
"""The mark of a case whose review flag is up (:mod:`glioseg.inference.review`)."""


def _review_section(predictions: Path) -> str:
    """The cases a reader should check first (their review flag up), each with its badge and why: doubt about its
    enhancing tumour, or a sequence it lacked and the regions unreliable without it; empty where none is."""
    from glioseg.inference.predict import read_case_index

    entries = read_case_index(predictions)
    flagged = [entry for entry in entries if entry.get("review_advised")]
    if not flagged:
        return ""
    items = "".join(f"<li>{html.escape(entry['case_id'])}{REVIEW_BADGE} {html.escape(_review_reason(entry))}</li>"
                    for entry in flagged)  # fmt: skip
    return (f"<h2>Review advised</h2><p>{len(flagged)} of {len(entries)} cases: the model is unsure of their "
            "enhancing tumour, or they lacked a sequence; check the regions named before using their numbers "
            f"(<code>quality.csv</code> has every case's score).</p><ul>{items}</ul>")  # fmt: skip


def _review_reason(entry: dict) -> str:
    """Why a case is flagged, from its ``cases.json`` entry."""
    if entry.get("absent"):
        unreliable = ", ".join(entry.get("unreliable", [])) or "no region"
        return f"segmented without {' or '.join(entry['absent'])} (the case lacks it): {unreliable} unreliable"
    return f"score {entry['review_score']:.2f}: doubt about enhancing tumour"


def _overlay_section(predictions: Path, rows: list[dict]) -> str:
    from glioseg.inference.predict import read_case_index

    index = {entry["case_id"]: entry for entry in read_case_index(predictions)}
    if not index:
        return "<h2>Cases</h2><p>No cases.json in the prediction folder (predicted with an older glioseg).</p>"
    scores = {}
    for row in rows:
        if row["structure"] in REGIONS and row["case_id"] in index:
            scores.setdefault(row["case_id"], []).append(_number(row["dice"]))
    if scores:
        ranked = sorted(scores, key=lambda case_id: float(np.nanmean(scores[case_id])), reverse=True)
        chosen = [("best", c) for c in ranked[:BEST_WORST]] + [("worst", c) for c in ranked[BEST_WORST:][-BEST_WORST:]]
        heading = "Best and worst cases (mean Dice over WT, TC, ET)"
    else:
        chosen = [("case", c) for c in sorted(index)[: 2 * BEST_WORST]]
        heading = "Cases"
    figures = []
    for kind, case_id in chosen:
        figure = _case_overlay(predictions, index[case_id])
        score = f", mean Dice {np.nanmean(scores[case_id]):.3f}" if case_id in scores else ""
        badge = REVIEW_BADGE if index[case_id].get("review_advised") else ""
        figures.append(f"<figure>{_png(figure)}<figcaption>{kind}: {html.escape(case_id)}{score}{badge}"
                       "</figcaption></figure>")  # fmt: skip
    return f"<h2>{heading}</h2>{''.join(figures)}"


def _case_overlay(predictions: Path, entry: dict):
    import nibabel as nib

    from glioseg.core.labels import convention_from_record
    from glioseg.datasets.cases import read_case
    from glioseg.evaluation.figures import plot_overlay

    case = read_case(entry["source"], complete=False)
    mask = np.asarray(nib.load(predictions / entry["mask"]).dataobj)
    return plot_overlay(case, convention_from_record(entry["mask_convention"]).to_internal(mask))


def html_table(rows: list[dict], columns: list[str], css_class: str = "") -> str:
    """An HTML table of ``rows`` (dicts) in ``columns``, every cell escaped; a missing value is an empty cell."""
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>" for row in rows
    )
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<table{attribute}><tr>{header}</tr>{body}</table>"


def _table_section(title: str, rows: list[dict], note: str = "") -> str:
    if not rows:
        return ""
    return f"<h2>{html.escape(title)}</h2>{note}{html_table(rows, list(rows[0]), 'sortable')}"


LESION_COLUMNS = ("case_id", "kind", "lesion", "volume_ml", "edema_ml", "core_ml", "enhancing_ml",
                  "longest_diameter_mm", "perpendicular_diameter_mm", "product_mm2", "measurable", "axial_slice",
                  "centroid_x_mm", "centroid_y_mm", "centroid_z_mm")  # fmt: skip
"""The columns of lesions.csv the report shows."""


def _lesions_section(rows: list[dict]) -> str:
    shown = [{c: row[c] for c in LESION_COLUMNS} for row in rows if _number(row["volume_ml"]) >= SMALLEST_SHOWN_ML]
    hidden = len(rows) - len(shown)
    note = (f"<p>Whole-tumour and enhancing lesions; RANO diameters on the axial slice where each is longest "
            f"(measurable: both at least 10 mm). {hidden} lesions under {SMALLEST_SHOWN_ML} mL are in lesions.csv "
            f"only.</p>")  # fmt: skip
    return _table_section("Lesions (predicted)", shown, note) or f"<h2>Lesions (predicted)</h2>{note}"


SCRIPT = """
document.querySelectorAll("table.sortable").forEach(table => {
  table.querySelectorAll("tr:first-child th").forEach((th, column) => {
    th.addEventListener("click", () => {
      const rows = Array.from(table.querySelectorAll("tr")).slice(1);
      const up = th.dataset.order !== "up";
      th.dataset.order = up ? "up" : "down";
      const key = row => { const text = row.children[column].textContent; const n = parseFloat(text);
                           return isNaN(n) ? text : n; };
      rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (up ? 1 : -1));
      rows.forEach(row => table.appendChild(row));
    });
  });
});
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #eee; cursor: pointer; }} td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }} .meta {{ color: #666; font-size: 0.85em; }}
.review {{ background: #fff3cd; border: 1px solid #d9a400; border-radius: 0.3em; padding: 0 0.3em; }}
</style></head>
<body><h1>{title}</h1><p class="meta">made {made} from {sources}</p>
{body}
<script>{script}</script></body></html>
"""
