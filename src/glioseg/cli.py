"""`glioseg` command line: thin commands, each calling one library function; imports inside commands
so that `glioseg --help` starts fast."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported inside the commands at run time (torch is slow to import)
    from glioseg.postprocess import PostprocessConfig

app = typer.Typer(
    help="Brain tumour segmentation in multimodal MRI with a 3D U-Net.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
DEFAULT_CACHE = Path.home() / ".cache" / "glioseg"


def reports_input_errors(command):
    """Turn an InputError into one red line (file, problem, fix) and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from glioseg.errors import InputError

        try:
            return command(*args, **kwargs)
        except InputError as error:
            console.print(
                f"[bold red]error:[/] {error.path}: {error.problem}\n[bold]fix:[/] {error.fix}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@reports_input_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Dataset folder to create (or complete).")],
    cases: Annotated[int, typer.Option(min=1, help="Number of phantom cases.")] = 8,
    layout: Annotated[str, typer.Option(help="msd | brats2021 | brats2023 | nnunet")] = "brats2021",
    seed: Annotated[int, typer.Option(help="Same seed, same cohort.")] = 0,
    shape: Annotated[tuple[int, int, int] | None, typer.Option(help="Grid X Y Z (default 240 240 155).")] = None,
    preview: Annotated[bool, typer.Option(help="Also write OUT/preview.png of the first case.")] = False,
) -> None:
    """Generate a phantom cohort: MNI152 anatomy with synthetic gliomas, in a dataset layout.

    Example: glioseg synth phantoms --cases 24 --shape 96 96 64 --layout msd --preview
    """
    from glioseg.layouts import LAYOUTS
    from glioseg.synth import BRATS_SHAPE, make_phantom, write_cohort

    if layout not in LAYOUTS:
        raise typer.BadParameter(f"choose one of {', '.join(LAYOUTS)}", param_hint="--layout")
    grid = tuple(shape) if shape else BRATS_SHAPE
    ids = write_cohort(out, cases, layout, seed, grid, progress=True)  # type: ignore[arg-type]
    console.print(f"{len(ids)} phantom cases in {out} ({layout}, grid {grid}, seed {seed})")
    if preview:
        import numpy as np

        from glioseg.figures import save_case_preview

        phantom = make_phantom(0, seed, grid, ids[0])  # type: ignore[arg-type]
        spacing = tuple(float(s) for s in np.abs(np.diag(phantom.affine))[:3])
        path = save_case_preview(phantom.image, phantom.label, out / "preview.png", ids[0], spacing)
        console.print(f"preview: {path}")


@app.command()
@reports_input_errors
def check(data: Annotated[Path, typer.Argument(help="Dataset folder (any layout).")]) -> None:
    """Verify a dataset: modalities present, grids agree, no NaN/Inf or empty images, valid labels,
    unique case ids, readable files. Exits 1 if anything is wrong.

    Example: glioseg check ../shared/data/brats2018-sample
    """
    from rich.table import Table

    from glioseg.check import check_dataset

    count, problems = check_dataset(data, progress=True)
    if not problems:
        console.print(f"[green]ok[/]: {count} cases in {data}, no problems")
        return
    table = Table(title=f"{len(problems)} problems in {data}", show_lines=True)
    for column in ("case", "file", "problem", "fix"):
        table.add_column(column, overflow="fold")
    for problem in problems:
        path = Path(problem.path)
        shown = path.relative_to(data) if path.is_relative_to(data) else path  # short enough to read unwrapped
        table.add_row(problem.case_id, str(shown), problem.problem, problem.fix)
    Console(width=200).print(table)
    raise typer.Exit(1)


@app.command("sample-data")
@reports_input_errors
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to put the 12 BraTS 2018 cases in.")],
    from_dir: Annotated[Path | None, typer.Option("--from", help="Copy from this local folder.")] = None,
    url: Annotated[str | None, typer.Option(help="Download base URL (default: the public source).")] = None,
) -> None:
    """Get the 12 public BraTS 2018 sample cases, SHA-256 checked; resumes partial downloads.

    Example: glioseg sample-data data/brats2018-sample --from ../shared/data/brats2018-sample
    """
    from glioseg.sample_data import SOURCE_URL, fetch_sample

    files = fetch_sample(out, source_url=url or SOURCE_URL, from_dir=from_dir)
    console.print(f"{len(files)} files verified in {out} (BraTS data: research use; see the README for citations)")


@app.command()
@reports_input_errors
def train(
    data: Annotated[Path, typer.Argument(help="Labelled dataset folder (any layout).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to create (or resume).")],
    fold: Annotated[str, typer.Option(help="Fold to hold out for validation, or 'all' to train on every case.")] = "0",
    folds: Annotated[int, typer.Option(min=2, help="Number of cross-validation folds (by patient).")] = 5,
    epochs: Annotated[int, typer.Option(min=1)] = 50,
    steps_per_epoch: Annotated[int, typer.Option(min=1)] = 50,
    patch: Annotated[tuple[int, int, int], typer.Option(help="Patch size X Y Z (multiple of 2**(depth-1)).")] = (
        64,
        64,
        64,
    ),
    batch: Annotated[int, typer.Option(min=1)] = 2,
    foreground_fraction: Annotated[
        float, typer.Option(min=0, max=1, help="Share of patches centred on tumour (classes balanced).")
    ] = 1 / 3,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    init_from: Annotated[Path | None, typer.Option(help="Start from another run's weights (fine-tune).")] = None,
    width: Annotated[int, typer.Option(min=1, help="Channels at full resolution.")] = 16,
    depth: Annotated[int, typer.Option(min=2, help="Resolution levels of the U-Net.")] = 4,
    head: Annotated[str, typer.Option(help="regions (3 sigmoid: WT, TC, ET) | classes (4 softmax)")] = "regions",
    deep_supervision: Annotated[bool, typer.Option()] = False,
    loss: Annotated[str, typer.Option(help="dice | dice_bce | dice_ce")] = "dice_bce",
    optimizer: Annotated[str, typer.Option(help="adamw | sgd")] = "adamw",
    lr: Annotated[float, typer.Option(help="Initial learning rate (poly decay).")] = 3e-3,
    spacing: Annotated[tuple[float, float, float] | None, typer.Option(help="Resample to this voxel size, mm.")] = None,
    augment: Annotated[bool, typer.Option(help="Spatial and intensity augmentation.")] = True,
    validate_every: Annotated[int, typer.Option(min=1, help="Epochs between validations.")] = 5,
    workers: Annotated[int, typer.Option(min=0, help="Loader processes.")] = 1,
    amp: Annotated[
        bool, typer.Option(help="Mixed precision: float16 on CUDA, bfloat16 on a CPU that has it natively.")
    ] = True,
    cache: Annotated[Path, typer.Option(help="Preprocessed-data cache.")] = DEFAULT_CACHE,
    extra_data: Annotated[
        Path | None,
        typer.Option(help="Labelled cases added to every fold's training set, never validated on (phantoms, say)."),
    ] = None,
) -> None:
    """Train a 3D U-Net on one fold of a labelled dataset; checkpoints every epoch, TensorBoard in OUT.

    Example: glioseg train phantoms --out runs/p0 --epochs 20 --steps-per-epoch 40 --patch 64 64 64
    Distributed: torchrun --nproc-per-node 2 -m glioseg train DATA --out RUN ...
    """
    from glioseg.config import ModelConfig, PreprocessConfig, RunConfig, TrainConfig
    from glioseg.losses import LOSSES
    from glioseg.train import train as run_training

    if head not in ("regions", "classes"):
        raise typer.BadParameter("choose regions or classes", param_hint="--head")
    if loss not in LOSSES or (head == "classes") != (loss == "dice_ce"):
        raise typer.BadParameter("regions go with dice or dice_bce, classes with dice_ce", param_hint="--loss")
    if any(p % 2 ** (depth - 1) for p in patch):
        raise typer.BadParameter(f"each size must be a multiple of {2 ** (depth - 1)}", param_hint="--patch")
    if fold != "all" and not (fold.isdigit() and int(fold) < folds):
        raise typer.BadParameter(f"give 0 to {folds - 1} (below --folds), or all", param_hint="--fold")
    config = RunConfig(
        preprocess=PreprocessConfig(spacing_mm=spacing),
        model=ModelConfig(head=head, width=width, depth=depth, deep_supervision=deep_supervision),
        train=TrainConfig(
            patch=patch, batch=batch, epochs=epochs, steps_per_epoch=steps_per_epoch, optimizer=optimizer,
            foreground_fraction=foreground_fraction,
            learning_rate=lr, loss=loss, augment=augment, folds=folds, seed=seed, validate_every=validate_every,
            fold=None if fold == "all" else int(fold), workers=workers, amp=amp,
            extra_data=str(extra_data) if extra_data else None,
        ),
    )  # fmt: skip
    entry = run_training(data, out, config, device=device, resume=resume, init_from=init_from, cache_root=cache)
    if entry and "dice/mean_regions" in entry:
        console.print(
            f"epoch {entry['epoch']}: validation Dice WT {entry['dice/WT']:.3f} TC {entry['dice/TC']:.3f} "
            f"ET {entry['dice/ET']:.3f}; run in {out}"
        )


def _window(text: str | None) -> tuple[int, int, int] | str | None:
    """``--window``: None, ``whole`` or ``X,Y,Z``."""
    if text is None or text == "whole":
        return text
    try:
        x, y, z = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter("give X,Y,Z (e.g. 64,64,64) or whole", param_hint="--window") from None
    return (x, y, z)


MinComponentMl = Annotated[
    float | None,
    typer.Option(min=0.0, help="Drop tumour components smaller than this, mL (default 0.1; 0 keeps every one)."),
]
MinEnhancingMl = Annotated[
    float | None,
    typer.Option(min=0.0, help="A whole enhancing tumour under this many mL becomes core (default 0.5; 0: never)."),
]


def _postprocess(min_component_ml: float | None, min_enhancing_ml: float | None) -> PostprocessConfig:
    """The cleaning rules of ``--min-component-ml`` and ``--min-enhancing-ml``; those not given keep glioseg's."""
    from glioseg.postprocess import PostprocessConfig

    given = {"min_component_ml": min_component_ml, "min_enhancing_ml": min_enhancing_ml}
    return PostprocessConfig(**{name: value for name, value in given.items() if value is not None})


def _split_runs(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Run folders (holding config.json) or checkpoint files (.pt) come first; the rest are inputs."""
    runs = [p for p in paths if (p / "config.json").exists() or p.suffix == ".pt"]
    return runs, [p for p in paths if p not in runs]


@app.command()
@reports_input_errors
def predict(
    paths: Annotated[
        list[Path], typer.Argument(help="[RUN ...] INPUT ...: runs (none: the shipped model), then cases or datasets.")
    ],  # fmt: skip
    out: Annotated[Path, typer.Option("--out", help="Folder for the masks, volumes.csv and predict.json.")],
    labels: Annotated[str | None, typer.Option(help="msd | brats2021 | brats2023 (default: each input's own)")] = None,
    tta: Annotated[bool, typer.Option(help="Mirror test-time augmentation (8 flips).")] = False,
    overlap: Annotated[float, typer.Option(min=0.0, max=0.9, help="Sliding-window overlap.")] = 0.5,
    window: Annotated[str | None, typer.Option(help="Window: X,Y,Z or 'whole' (default: the training patch).")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    save_probabilities: Annotated[bool, typer.Option(help="Also write <case>_probabilities.nii.gz.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace predictions made with other settings.")] = False,
    engine: Annotated[str, typer.Option(help="torch | onnx (ONNX Runtime; needs glioseg export --onnx)")] = "torch",
    min_component_ml: MinComponentMl = None,
    min_enhancing_ml: MinEnhancingMl = None,
) -> None:
    """Segment cases with trained runs (several runs ensemble); masks keep the input's grid and header.

    Without RUN the shipped model (trained on real BraTS 2018 cases) is used: glioseg predict CASE --out DIR
    Example: glioseg predict runs/fold0 runs/fold1 ../shared/data/brats2018-sample --out predictions --tta
    """
    from glioseg.labels import CONVENTIONS
    from glioseg.predict import PredictSettings, load_model, predict_cohort

    runs, inputs = _split_runs(paths)
    if not inputs:
        raise typer.BadParameter("give at least one case or dataset folder after the runs")
    if labels is not None and labels not in CONVENTIONS:
        raise typer.BadParameter(f"choose one of {', '.join(CONVENTIONS)}", param_hint="--labels")
    if engine not in ("torch", "onnx"):
        raise typer.BadParameter("choose torch or onnx", param_hint="--engine")
    model = load_model(runs or None, device, engine)
    postprocess = _postprocess(min_component_ml, min_enhancing_ml)
    settings = PredictSettings(labels=labels, tta=tta, overlap=overlap, save_probabilities=save_probabilities,
                               window=_window(window), postprocess=postprocess)  # fmt: skip
    masks = predict_cohort(model, inputs, out, settings, overwrite=overwrite)
    console.print(f"{len(masks)} masks in {out}; volumes in {out / 'volumes.csv'}")


@app.command()
@reports_input_errors
def evaluate(
    pred_dir: Annotated[Path, typer.Argument(help="Folder of <case_id>.nii.gz predictions.")],
    gt_dir: Annotated[Path, typer.Argument(help="Dataset folder with the ground-truth labels (any layout).")],
    out: Annotated[Path, typer.Option("--out", help="Per-case CSV; the summary goes beside it as .json.")] = Path(
        "metrics.csv"
    ),
    pred_labels: Annotated[str | None, typer.Option(help="Convention of the predictions if not glioseg's.")] = None,
    tolerance: Annotated[float, typer.Option(help="Surface Dice tolerance, mm.")] = 1.0,
) -> None:
    """Dice, HD95, surface Dice, sensitivity, specificity and volumes per case, region and class.

    Example: glioseg evaluate predictions ../shared/data/brats2018-sample --out metrics.csv
    """
    from glioseg.evaluate import evaluate as run_evaluation
    from glioseg.evaluate import write_results

    rows, summary = run_evaluation(pred_dir, gt_dir, pred_labels, tolerance)
    csv_path, json_path = write_results(rows, summary, out)
    _print_summary(json_path)
    console.print(f"per case: {csv_path}; summary: {json_path}")


def _print_summary(summary_path: Path) -> None:
    """The metrics summary (glioseg evaluate's JSON) as a table on the terminal."""
    import json

    from rich.table import Table

    summary = json.loads(summary_path.read_text())
    table = Table(title=f"{summary['WT']['dice']['n']} cases: mean (median)")
    table.add_column("")
    for metric in ("dice", "hd95", "nsd", "sensitivity", "specificity"):
        table.add_column(metric, justify="right")
    for name, metrics in summary.items():
        table.add_row(name, *(f"{metrics[m]['mean']:.3f} ({metrics[m]['median']:.3f})"
                              for m in ("dice", "hd95", "nsd", "sensitivity", "specificity")))  # fmt: skip
    Console(width=150).print(table)


@app.command()
@reports_input_errors
def export(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    out: Annotated[Path, typer.Option("--out", help="The weights file (.pt) to write.")],
    onnx: Annotated[bool, typer.Option(help="Also write the network as ONNX beside it (<out>.onnx).")] = False,
) -> None:
    """Write a run's best weights and settings, without training state (a third of the size), for sharing.

    Example: glioseg export runs/all --out model.pt --onnx   (then: glioseg predict model.pt CASE --out DIR)
    """
    from glioseg.runs import export_weights

    if out.suffix != ".pt":
        raise typer.BadParameter("name the weights file *.pt", param_hint="--out")
    for path in export_weights(run, out, onnx):
        console.print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")


@app.command()
@reports_input_errors
def crossval(
    runs: Annotated[list[Path], typer.Argument(help="The fold runs (each trained with --fold K on DATA).")],
    data: Annotated[Path, typer.Option("--data", help="The labelled dataset they were trained on.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for predictions and metrics.")],
    tta: Annotated[bool, typer.Option(help="Average the 8 mirrored copies.")] = False,
    window: Annotated[str | None, typer.Option(help="Window: X,Y,Z or 'whole' (default: the training patch).")] = None,
    min_component_ml: MinComponentMl = None,
    min_enhancing_ml: MinEnhancingMl = None,
) -> None:
    """Cross-validate: each case predicted by the fold run that held it out, then all evaluated together.

    Example: glioseg crossval runs/fold0 runs/fold1 runs/fold2 runs/fold3 --data DATA --out cv
    """
    from glioseg.crossval import cross_validate
    from glioseg.predict import PredictSettings

    postprocess = _postprocess(min_component_ml, min_enhancing_ml)
    settings = PredictSettings(tta=tta, window=_window(window), postprocess=postprocess)
    csv_path, json_path = cross_validate(runs, data, out, settings)
    _print_summary(json_path)
    console.print(f"per case: {csv_path}; summary: {json_path}")


@app.command()
@reports_input_errors
def report(
    folder: Annotated[Path, typer.Argument(help="A run folder, a prediction folder, or a demo output folder.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
    metrics: Annotated[Path | None, typer.Option(help="Metrics CSV of glioseg evaluate (default: found).")] = None,
    title: Annotated[str, typer.Option()] = "glioseg report",
) -> None:
    """One self-contained HTML page (opens offline): learning curves, metrics per case (sortable) and summary,
    box plots, overlays of the best and worst cases, tumour volumes.

    Example: glioseg report demo-output --out report.html
    """
    from glioseg.report import find_report_inputs, write_report

    inputs = find_report_inputs(folder, metrics)
    console.print(f"report: {write_report(out, inputs, title)}")


@app.command()
@reports_input_errors
def serve(
    runs: Annotated[
        list[Path] | None, typer.Argument(help="Run folder(s) to segment with (default: shipped model).")
    ] = None,
    predictions: Annotated[list[Path] | None, typer.Option(help="Prediction folder(s) to list in the viewer.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it to this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    max_upload_mb: Annotated[int, typer.Option(min=1, help="Largest upload accepted.")] = 512,
) -> None:
    """The web viewer: upload a case, watch it being segmented, explore it in 3D (NiiVue) and download the mask.

    Example: glioseg serve --predictions predictions   (then open http://127.0.0.1:8000)
    """
    import uvicorn

    from glioseg.errors import InputError
    from glioseg.predict import load_model
    from glioseg.viewer.app import create_app
    from glioseg.viewer.uploads import UploadLimits

    for folder in predictions or []:
        if not (folder / "cases.json").exists():
            raise InputError(folder, "no cases.json here", "give a folder written by glioseg predict")
    model = load_model(runs or None, device)  # fail now, not at the first upload
    app = create_app(lambda: model, list(predictions or []),
                     limits=UploadLimits(max_bytes=max_upload_mb * 1024**2))  # fmt: skip
    console.print(f"viewer on http://{host}:{port} (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command()
@reports_input_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes everything.")] = Path("demo-output"),
    real: Annotated[bool, typer.Option(help="Segment the public BraTS 2018 sample with the shipped model.")] = False,
    sample_dir: Annotated[Path | None, typer.Option(help="A local copy of the sample (with --real).")] = None,
) -> None:
    """Run the whole pipeline on phantoms: generate, train (under 10 minutes on 2 CPU cores), predict
    held-out cases, evaluate, write the report. Rerunning finishes an interrupted demo. With --real: the shipped
    model on the public BraTS 2018 sample instead (downloaded, or --sample-dir).

    Example: glioseg demo --out demo-output;  glioseg demo --real --sample-dir ../shared/data/brats2018-sample
    """
    import json

    from glioseg.demo import run_demo, run_real_demo

    made = run_real_demo(out, sample_dir) if real else run_demo(out)
    summary = json.loads(made["summary"].read_text())
    dice = ", ".join(f"{name} {summary[name]['dice']['mean']:.3f}" for name in ("WT", "TC", "ET"))
    scored = "Dice on the sample (the shipped model's training cases)" if real else "held-out Dice"
    console.print(f"[green]demo done[/]: {scored} {dice}")
    for name, path in made.items():
        console.print(f"  {name:<12} {path}")
    run = f"{made['run']} " if "run" in made else ""
    console.print(f"open {made['report']} in a browser; explore the cases in 3D with:\n"
                  f"  glioseg serve {run}--predictions {made['predictions']}")  # fmt: skip


def main() -> None:
    app()


if __name__ == "__main__":
    main()
