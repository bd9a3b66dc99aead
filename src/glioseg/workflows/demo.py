"""`glioseg demo`: the whole pipeline on phantoms, with no data and no network.

generate a phantom cohort -> the shipped model segments the held-out phantoms -> a small U-Net trains for a few
minutes on the CPU -> it segments them too -> both evaluated -> figures and one HTML report. Every step reuses what
an earlier, interrupted demo already finished.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from glioseg.core.config import CohortConfig, ModelConfig, PreprocessConfig, RunConfig, TrainConfig
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path
from glioseg.network.runs import read_run_config


@dataclass(frozen=True)
class DemoSettings:
    """What the demo makes and trains. The defaults are the quick demo (about 3 minutes on 2 CPU cores, measured in
    the README); :data:`FULL_DEMO` trains the same network four times longer on more phantoms.

    The network was chosen with ``benchmarks/phantom_training.py`` (table in benchmarks/README.md): phantoms at 2.5 mm
    keep thin enhancing rims learnable, a narrow network doubles the patches per second, and two thirds of patches
    centred on tumour teach enhancing vs non-enhancing tumour fastest."""

    cases: int = 16
    held_out: int = 8
    shape: tuple[int, int, int] = (96, 96, 64)
    epochs: int = 12
    steps_per_epoch: int = 50
    validate_every: int = 4
    seed: int = 0
    width: int = 8
    patch: tuple[int, int, int] = (32, 32, 32)
    batch: int = 4
    foreground_fraction: float = 2 / 3
    learning_rate: float = 3e-3

    def run_config(self) -> RunConfig:
        return RunConfig(
            preprocess=PreprocessConfig(),
            # the classes head and deep supervision were both measured to learn faster here
            model=ModelConfig(head="classes", deep_supervision=True, width=self.width),
            train=TrainConfig(
                patch=self.patch, batch=self.batch, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
                foreground_fraction=self.foreground_fraction, learning_rate=self.learning_rate, loss="dice_ce",
                validate_every=self.validate_every, seed=self.seed, workers=1,
            ),
        )  # fmt: skip


FULL_DEMO = DemoSettings(cases=24, held_out=16, epochs=50, validate_every=5)
"""``glioseg demo --full``: 2500 steps instead of 600 (its measured time is in the README)."""


def run_demo(out: Path, settings: DemoSettings = DemoSettings(), progress: bool = True) -> dict[str, Path]:
    """Run (or finish) the demo in ``out``: phantoms; the shipped model segments the held-out ones; a network trains
    on the others; it segments the held-out ones too; both are evaluated; one report. Returns what it made."""
    from glioseg.core.config import PredictConfig
    from glioseg.datasets.cases import find_cases, read_case
    from glioseg.datasets.phantoms import write_cohort
    from glioseg.evaluation.evaluate import evaluate, write_results
    from glioseg.evaluation.figures import plot_overlay
    from glioseg.inference.predict import load_model, predict_cohort
    from glioseg.network.runs import LAST_CHECKPOINT, load_checkpoint
    from glioseg.training.loop import train
    from glioseg.workflows.report import Evaluation, ReportInputs, write_report

    out = Path(out)
    _claim_folder(out, settings)
    phantoms, held_out = out / "phantoms", out / "held-out"
    write_cohort(phantoms, CohortConfig(settings.cases, "msd", settings.seed, settings.shape), progress)
    write_cohort(held_out, CohortConfig(settings.held_out, "brats2021", settings.seed + 1, settings.shape), progress)

    def predict_and_evaluate(model, folder: Path) -> tuple[Path, Path]:
        predict_cohort(model, [held_out], folder, PredictConfig(), progress=progress)
        return write_results(evaluate(folder, held_out), folder / "metrics.csv")

    shipped = out / "shipped-model"
    shipped_metrics, shipped_summary = predict_and_evaluate(load_model(), shipped)
    run = out / "run"
    last = run / LAST_CHECKPOINT
    finished = last.exists() and load_checkpoint(last)["epoch"] >= settings.epochs
    if not finished:
        train(phantoms, run, settings.run_config(), resume=last.exists(), cache_root=out / "cache", progress=progress)
    model = load_model(run)
    predictions = out / "predictions"
    metrics, summary_path = predict_and_evaluate(model, predictions)
    case = read_case(find_cases(held_out)[0])
    overlay = out / "overlay.png"
    plot_overlay(case, model.predict(case)).savefig(overlay, dpi=80, facecolor="black")
    steps = settings.epochs * settings.steps_per_epoch
    evaluations = (
        Evaluation(
            shipped, shipped_metrics, "The shipped model (trained on real BraTS scans) on the held-out phantoms"
        ),
        Evaluation(predictions, metrics, f"The network trained just now ({steps} steps) on the same phantoms"),
    )
    report = write_report(out / "report.html", ReportInputs(run, evaluations), "glioseg demo (phantoms)")
    return {
        "phantoms": phantoms, "held_out": held_out, "shipped_model": shipped, "shipped_summary": shipped_summary,
        "run": run, "curves": run / "curves.png", "predictions": predictions, "metrics": metrics,
        "summary": summary_path, "overlay": overlay, "report": report,
    }  # fmt: skip


def _claim_folder(out: Path, settings: DemoSettings) -> None:
    """Record the settings in ``out/demo.json``; refuse a folder that a demo with other settings (an older
    glioseg, say) started, since finishing it would mix its phantoms and run with these settings."""
    record = out / "demo.json"
    wanted = json.loads(json.dumps(dataclasses.asdict(settings)))
    if record.exists():
        started_elsewhere = json.loads(record.read_text()) != wanted
    else:  # a folder from before demo.json: its run's config tells
        run_config = out / "run" / "config.json"
        started_elsewhere = (out / "phantoms").exists() and (
            not run_config.exists() or read_run_config(run_config) != settings.run_config()
        )
    if started_elsewhere:
        raise InputError(out, "holds a demo made with other settings (perhaps by an older glioseg)",
                         "choose another --out, or delete this folder to start again")  # fmt: skip
    if not record.exists():
        with atomic_path(record) as temporary:
            temporary.write_text(json.dumps(wanted, indent=2))


def run_real_demo(out: Path, sample_dir: Path | None = None, progress: bool = True) -> dict[str, Path]:
    """The shipped model on the public BraTS 2018 sample: get it (or use ``sample_dir``), predict every case,
    evaluate against the expert labels, write the report. Four of the shipped model's five folds trained on each case,
    so these scores are optimistic; MODEL_CARD.md gives the cross-validated ones."""
    from glioseg.core.config import PredictConfig
    from glioseg.datasets.sample_data import fetch_sample
    from glioseg.evaluation.evaluate import evaluate, write_results
    from glioseg.inference.predict import load_model, predict_cohort
    from glioseg.workflows.report import Evaluation, ReportInputs, write_report

    out = Path(out)
    sample = Path(sample_dir) if sample_dir else out / "brats2018-sample"
    if sample_dir is None:
        fetch_sample(sample)
    model = load_model()
    predictions = out / "predictions"
    predict_cohort(model, [sample], predictions, PredictConfig(), progress=progress)
    metrics, summary_path = write_results(evaluate(predictions, sample), out / "metrics.csv")
    title = "glioseg demo: shipped model on the BraTS 2018 sample (its training cases: optimistic scores)"
    report = write_report(out / "report.html", ReportInputs(None, (Evaluation(predictions, metrics),)), title)
    return {"sample": sample, "predictions": predictions, "metrics": metrics, "summary": summary_path,
            "report": report}  # fmt: skip
