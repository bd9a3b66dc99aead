"""`glioseg` command line: thin commands, each calling one library function; imports inside commands
so that `glioseg --help` starts fast."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from glioseg.core.config import (
    CACHE_DIR,
    DEFAULT_DEVICE,
    DEVICES,
    ENGINES,
    LABEL_CONVENTIONS,
    MODALITIES,
    CohortConfig,
    EvaluateConfig,
    FollowupConfig,
    ModelConfig,
    NodeConfig,
    PostprocessConfig,
    PredictConfig,
    PrepareConfig,
    PreprocessConfig,
    TrainConfig,
    UploadLimits,
)
from glioseg.datasets.layouts import LAYOUTS, describe_layouts
from glioseg.raw.dicomweb import PASSWORD_VARIABLE

app = typer.Typer(
    help="Brain tumour segmentation in multimodal MRI with a 3D U-Net.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


def config_options(**configs: type | tuple[type, tuple[str, ...]]):
    """Give a command one option per setting of each config dataclass (the fields marked with ``config.cli``: their
    name, type, default and help), and call it with the dataclasses built from them.

    ``configs`` maps the command's parameter name to the dataclass, or to ``(dataclass, fields left out)``.
    Example: ``@config_options(model=ModelConfig) def train(data: Path, model: ModelConfig)`` gives ``--width``,
    ``--depth``, ... and ``train`` receives ``model=ModelConfig(width=..., depth=..., ...)``.
    """

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)  # typer reads the annotations of the signature given
        kept = [p for name, p in signature.parameters.items() if name not in configs]
        generated, owner = [], {}
        kinds = {parameter: spec[0] if isinstance(spec, tuple) else spec for parameter, spec in configs.items()}
        for parameter, spec in configs.items():
            kind, left_out = kinds[parameter], spec[1] if isinstance(spec, tuple) else ()
            hints = typing.get_type_hints(kind)
            for setting in dataclasses.fields(kind):
                if "help" not in setting.metadata or setting.name in left_out:
                    continue
                options = dict(setting.metadata)
                flag = options.pop("flag", None)
                kind_of_value = hints[setting.name]
                if "parser" in options:  # the option reads text, the field's parser makes the value
                    options["parser"] = _usage_errors(options["parser"])
                    kind_of_value = str | None  # typer takes one type (no unions of several)
                annotation = Annotated[kind_of_value, typer.Option(*([flag] if flag else []), **options)]
                generated.append(inspect.Parameter(setting.name, inspect.Parameter.KEYWORD_ONLY,
                                                   default=setting.default, annotation=annotation))  # fmt: skip
                owner[setting.name] = parameter

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            values: dict[str, dict] = {parameter: {} for parameter in configs}
            for name, parameter in owner.items():
                values[parameter][name] = kwargs.pop(name)
            return command(*args, **kwargs, **{p: kinds[p](**v) for p, v in values.items()})

        wrapper.__signature__ = signature.replace(parameters=kept + generated)
        wrapper.__annotations__ = {p.name: p.annotation for p in kept + generated}
        return wrapper

    return decorate


def _usage_errors(parser):
    """A field's parser whose ValueError becomes typer's usage error (exit status 2, naming the option)."""

    @functools.wraps(parser)
    def parse(value):
        try:
            return parser(value)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None

    return parse


Device = Annotated[str, typer.Option(help=DEVICES)]


def reports_input_errors(command):
    """Turn an InputError into one red line (file, problem, fix) and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from glioseg.core.errors import InputError

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
@config_options(settings=CohortConfig)
def synth(
    out: Annotated[Path, typer.Argument(help="Dataset folder to create (or complete).")],
    settings: CohortConfig,
    layout: Annotated[
        typing.Literal[tuple(LAYOUTS)], typer.Option(help=f"Dataset layout: {describe_layouts()}.")
    ] = CohortConfig.layout,
    preview: Annotated[bool, typer.Option(help="Also write OUT/preview.png of the first case.")] = False,
) -> None:
    """Generate a phantom cohort: MNI152 anatomy with synthetic gliomas, in a dataset layout.

    Example: glioseg synth phantoms --cases 24 --shape 96 96 64 --layout msd --preview
    """
    from glioseg.datasets.phantoms import make_phantom, write_cohort

    settings = dataclasses.replace(settings, layout=layout)
    ids = write_cohort(out, settings, progress=True)
    console.print(f"{len(ids)} phantom cases in {out} ({layout}, grid {settings.shape}, seed {settings.seed})")
    if preview:
        from glioseg.evaluation.figures import save_case_preview

        phantom = make_phantom(0, settings.seed, settings.shape, ids[0])
        path = save_case_preview(phantom.image, phantom.label, out / "preview.png", ids[0], phantom.affine)
        console.print(f"preview: {path}")


@app.command()
@reports_input_errors
def check(
    data: Annotated[Path, typer.Argument(help="Dataset folder (any layout), or a whole download's top folder.")],
    label_convention: Annotated[
        typing.Literal[LABEL_CONVENTIONS] | None,
        typer.Option(help="Read the labels in this convention (default: what the layout implies)."),
    ] = None,
) -> None:
    """Verify a dataset: modalities present, grids agree, no NaN/Inf or empty images, valid labels read in the
    convention printed, unique case ids, readable files. Exits 1 if anything is wrong.

    Example: glioseg check ../shared/data/brats2018-sample
    """
    from collections import Counter

    from rich.table import Table

    from glioseg.core.labels import describe
    from glioseg.datasets.check import check_dataset

    cases, problems = check_dataset(data, label_convention, progress=True)
    readings = Counter(describe(case.convention) for case in cases if case.label is not None)
    for reading, count in readings.items():
        console.print(f"labels of {count} cases read as {reading}", highlight=False)
    if not problems:
        console.print(f"[green]ok[/]: {len(cases)} cases in {data}, no problems")
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
    out: Annotated[Path, typer.Argument(help="Folder to put the BraTS 2018 cases in.")],
    from_dir: Annotated[Path | None, typer.Option("--from", help="Copy from this local folder.")] = None,
    url: Annotated[str | None, typer.Option(help="A mirror's base URL (default: each file's public source).")] = None,
    all_cases: Annotated[bool, typer.Option("--all", help="The 16 extra training cases too: 28 in all.")] = False,
) -> None:
    """Get the 12 public BraTS 2018 sample cases (--all: 28), SHA-256 checked; resumes partial downloads.

    Example: glioseg sample-data data/brats2018 --all
    """
    from glioseg.datasets.sample_data import fetch_sample

    files = fetch_sample(out, source_url=url, from_dir=from_dir, extra=all_cases)
    console.print(f"{len(files)} files verified in {out} (BraTS data: research use; see the README for citations)")


@app.command()
@reports_input_errors
@config_options(preprocess=PreprocessConfig, model=ModelConfig, settings=TrainConfig)
def train(
    data: Annotated[Path, typer.Argument(help="Labelled dataset folder (any layout).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to create (or resume).")],
    preprocess: PreprocessConfig,
    model: ModelConfig,
    settings: TrainConfig,
    device: Device = DEFAULT_DEVICE,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    init_from: Annotated[Path | None, typer.Option(help="Start from another run's weights (fine-tune).")] = None,
    cache: Annotated[Path, typer.Option(help="Preprocessed-data cache.")] = CACHE_DIR,
) -> None:
    """Train a 3D U-Net on one fold of a labelled dataset; checkpoints every epoch, TensorBoard in OUT.

    Example: glioseg train phantoms --out runs/p0 --epochs 20 --steps-per-epoch 40 --patch 64 64 64
    Distributed: torchrun --nproc-per-node 2 -m glioseg train DATA --out RUN ...
    """
    from glioseg.core.config import RunConfig
    from glioseg.training.loop import train as run_training

    config = RunConfig(preprocess=preprocess, model=model, train=settings)
    entry = run_training(data, out, config, device=device, resume=resume, init_from=init_from, cache_root=cache)
    if entry and "dice/mean_regions" in entry:
        console.print(
            f"epoch {entry['epoch']}: validation Dice WT {entry['dice/WT']:.3f} TC {entry['dice/TC']:.3f} "
            f"ET {entry['dice/ET']:.3f}; run in {out}"
        )


@app.command()
@reports_input_errors
@config_options(preprocess=PreprocessConfig)
def pack(
    data: Annotated[Path, typer.Argument(help="Labelled dataset folder (any layout).")],
    out: Annotated[Path, typer.Option("--out", help="The pack folder to write.")],
    preprocess: PreprocessConfig,
    extra_data: Annotated[
        Path | None, typer.Option(help="Labelled cases added to every fold's training set (phantoms, say).")
    ] = None,
    label_convention: Annotated[
        typing.Literal[LABEL_CONVENTIONS] | None,
        typer.Option(help="Read the labels in this convention (default: what the layout implies)."),
    ] = None,
    cache: Annotated[Path, typer.Option(help="Preprocessed-data cache.")] = CACHE_DIR,
) -> None:
    """Pack a labelled dataset as training reads it (cropped, resampled, z-scored, compressed) into one small
    folder, to train where the NIfTI files are not: glioseg train PACK ... (same case ids, same splits).

    Example: glioseg pack DATA --spacing 2 2 2 --extra-data phantoms --out brats-2mm.pack
    """
    from glioseg.datasets.cases import labelled_cases
    from glioseg.datasets.packs import write_pack

    cases = labelled_cases(data, label_convention=label_convention)
    extra = labelled_cases(extra_data, minimum=1) if extra_data else []
    folder, size = write_pack(cases, extra, data, extra_data, out, preprocess, cache)
    console.print(f"{len(cases)} cases and {len(extra)} extra in {folder}: {size / 2**20:.1f} MiB")


def _split_runs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Run folders (holding config.json) or checkpoint files (.pt) come first; the rest are inputs (paths or DICOMweb
    study URLs)."""
    runs = [Path(p) for p in paths if "://" not in p and ((Path(p) / "config.json").exists() or p.endswith(".pt"))]
    return runs, [p for p in paths if Path(p) not in runs or "://" in p]


def _print_reviews_advised(masks: list[Path], out: Path, threshold: float, measured: dict | None) -> None:
    """One line per case segmented without a sequence (what it lacked, the accuracy measured for that) and per case
    whose review flag is up otherwise (``quality.csv`` lists every case's score)."""
    from glioseg.inference.review import absent_note, read_review

    for mask in masks:
        case_id = mask.name.removesuffix(".nii.gz")
        review = read_review(out, case_id)
        note = absent_note(case_id, review, measured) if review else None
        if note:
            console.print(f"[bold yellow]sequence missing:[/] {note}", highlight=False, soft_wrap=True)
        elif review and review["review_advised"]:
            console.print(f"[bold yellow]review advised:[/] {case_id} (score {review['review_score']:.2f} > "
                          f"{threshold:g}): the model is unsure of its enhancing tumour; check enhancing tumour "
                          "and tumour core", highlight=False, soft_wrap=True)  # fmt: skip


def _dicomweb_root(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{value} is no DICOMweb address (http(s)://HOST/...; Orthanc's: .../dicom-web)")
    return value


@app.command()
@reports_input_errors
@config_options(settings=PredictConfig, postprocess=PostprocessConfig)
def predict(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="[RUN ...] INPUT ...: runs (none: the shipped model), then cases, datasets, DICOM study "
            "folders or DICOMweb study URLs (http(s)://HOST/.../studies/<StudyInstanceUID>)."
        ),
    ],  # fmt: skip
    out: Annotated[Path, typer.Option("--out", help="Folder for the masks, volumes.csv and predict.json.")],
    settings: PredictConfig,
    postprocess: PostprocessConfig,
    device: Device = DEFAULT_DEVICE,
    overwrite: Annotated[bool, typer.Option(help="Replace predictions made with other settings.")] = False,
    engine: Annotated[
        typing.Literal[ENGINES],
        typer.Option(
            help="openvino: OpenVINO on the CPU (pip install openvino; converted once, cached); onnx: ONNX "
            "Runtime, with what glioseg export --onnx wrote."
        ),
    ] = "torch",  # fmt: skip
    store_to: Annotated[
        str | None,
        typer.Option(
            help="A DICOMweb root (Orthanc: http://HOST:8042/dicom-web): each DICOM study's SEG and SR are "
            "stored there (STOW-RS), into its own study.",
            callback=_dicomweb_root,
        ),
    ] = None,  # fmt: skip
    dicomweb_user: Annotated[
        str | None,
        typer.Option(help=f"DICOMweb user (HTTP basic auth); the password is read from ${PASSWORD_VARIABLE}."),
    ] = None,
) -> None:
    """Segment cases with trained runs (several runs ensemble); masks keep the input's grid and header.

    Without RUN the shipped model (trained on real BraTS 2018 cases) is used: glioseg predict CASE --out DIR
    Example: glioseg predict runs/fold0 runs/fold1 ../shared/data/brats2018-sample --out predictions --tta
    From a PACS: glioseg predict http://pacs:8042/dicom-web/studies/1.2.3 --out DIR --store-to http://pacs:8042/dicom-web
    """
    from glioseg.inference.predict import load_model, predict_cohort
    from glioseg.raw.dicomweb import store
    from glioseg.workflows.pacs import local_inputs, results_to_store

    runs, inputs = _split_runs(paths)
    if not inputs:
        raise typer.BadParameter("give at least one case or dataset folder after the runs")
    model = load_model(runs or None, device, engine)
    settings = dataclasses.replace(settings, postprocess=postprocess)
    local = local_inputs(inputs, out, dicomweb_user)
    masks = predict_cohort(model, local, out, settings, overwrite=overwrite)
    console.print(f"{len(masks)} masks in {out}; volumes in {out / 'volumes.csv'}")
    _print_reviews_advised(masks, out, settings.review_threshold, model.measured)
    if store_to:
        results = results_to_store(local, out)
        if results:
            store(store_to, results, dicomweb_user)
        console.print(f"{len(results)} DICOM files (SEG, SR) stored to {store_to}" + ("" if results else
                      " (no input was a DICOM study)"))  # fmt: skip


@app.command()
@reports_input_errors
@config_options(node=NodeConfig, settings=PredictConfig, postprocess=PostprocessConfig)
def listen(
    send_to: Annotated[str, typer.Option(help="Where the SEGs go: AET@HOST:PORT (e.g. ORTHANC@pacs:4242).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for what is received and for the results.")],
    node: NodeConfig,
    settings: PredictConfig,
    postprocess: PostprocessConfig,
    run: Annotated[list[Path] | None, typer.Option(help="Runs to segment with (default: the shipped model).")] = None,
    device: Device = DEFAULT_DEVICE,
) -> None:
    """Be a DICOM node: receive studies (C-STORE), segment each one once complete, send its DICOM SEG back.

    Runs until stopped (Ctrl-C). Results and received studies stay in --out; a restart resumes what was not sent.
    Example: glioseg listen --port 11112 --ae-title GLIOSEG --send-to ORTHANC@127.0.0.1:4242 --out node
    """
    import logging
    import signal

    from glioseg.app.node import Destination, listen
    from glioseg.inference.predict import load_model

    try:
        destination = Destination.parse(send_to)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--send-to") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for chatty in ("pynetdicom", "highdicom"):  # their INFO lines (each association, each copied module) drown ours
        logging.getLogger(chatty).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped by a service manager: shut down cleanly
    model = load_model(run or None, device)
    try:
        listen(model, out, dataclasses.replace(settings, postprocess=postprocess), node, destination)
    except KeyboardInterrupt:
        console.print("stopped")


@app.command()
@reports_input_errors
@config_options(settings=PrepareConfig)
def prepare(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the prepared case folder into.")],
    study: Annotated[Path | None, typer.Argument(help="A DICOM study folder (or give the four NIfTI files).")] = None,
    flair: Annotated[Path | None, typer.Option(help="FLAIR NIfTI file (any orientation and spacing).")] = None,
    t1: Annotated[Path | None, typer.Option(help="T1 NIfTI file.")] = None,
    t1gd: Annotated[Path | None, typer.Option(help="T1Gd (post-contrast T1) NIfTI file: the reference grid.")] = None,
    t2: Annotated[Path | None, typer.Option(help="T2 NIfTI file.")] = None,
    choose: Annotated[list[str] | None, typer.Option("--series", help="DICOM: SEQUENCE=SERIES, e.g. T1Gd=7.")] = None,
    case_id: Annotated[str | None, typer.Option(help="The case's name (default: the study's or the T1Gd's).")] = None,
    *,
    settings: PrepareConfig,
) -> None:
    """Raw scans -> a BraTS-ready case: reoriented, the T1Gd resampled to 1 mm, FLAIR/T1/T2 registered onto it,
    the brain extracted; transforms, prepare.json and a QC picture beside it.

    Example: glioseg prepare ~/studies/patient1 --out prepared   (or --flair F --t1 F --t1gd F --t2 F)
    """
    from glioseg.raw.dicom import parse_choices
    from glioseg.raw.prepare import prepare as run_prepare
    from glioseg.raw.prepared import PreparedFiles

    files = {"FLAIR": flair, "T1": t1, "T1Gd": t1gd, "T2": t2}
    given = {role: path for role, path in files.items() if path is not None}
    if study is not None and given:
        raise typer.BadParameter("give a DICOM study folder or the four NIfTI files, not both")
    if study is None and len(given) != 4:
        missing = ", ".join(f"--{r.lower()}" for r in files if r not in given)
        raise typer.BadParameter(f"give a DICOM study folder, or all four NIfTI files (missing {missing})")
    inputs = study if study is not None else given
    prepared = run_prepare(inputs, out, case_id, parse_choices(choose or []), settings)  # type: ignore[arg-type]
    qc = PreparedFiles(prepared.folder).qc
    console.print(f"prepared case: {prepared.folder}, brain {prepared.brain_ml:.0f} mL; QC picture: {qc}")


@app.command()
@reports_input_errors
def series(
    study: Annotated[Path, typer.Argument(help="The folder of one DICOM study (any depth of subfolders).")],
    choose: Annotated[
        list[str] | None, typer.Option("--series", help="SEQUENCE=SERIES (number or UID), e.g. T1Gd=7; repeatable.")
    ] = None,
) -> None:
    """List a DICOM study's series, what each is, and which FLAIR, T1, T1Gd and T2 glioseg would take.

    Exits 2, listing the series and how to choose, when several series could be a sequence, or the T1Gd or two
    sequences are missing (glioseg segments a study lacking one of FLAIR, T1, T2 without it).
    Example: glioseg series ~/studies/patient1 --series T1Gd=7
    """
    from rich.table import Table

    from glioseg.raw.dicom import choose_series, parse_choices, role_of, scan_study

    found = scan_study(study)
    table = Table("series", "description", "files", "images", "TR", "TE", "TI", "contrast", "what")
    for item in found:
        role, why = role_of(item)
        timing = [f"{v:g}" if v is not None else "" for v in (item.repetition_ms, item.echo_ms, item.inversion_ms)]
        agent = item.contrast_agent if item.has_contrast_agent else ""
        what = f"{role}: {why}" if role else why
        table.add_row(str(item.number), item.description, str(len(item.files)), str(item.frames), *timing, agent, what)
    Console(width=200).print(table)
    chosen = choose_series(study, found, parse_choices(choose or []), complete=False)  # as predict takes it
    uses = [f"{role} = series {chosen[role].number}" if role in chosen else f"{role} = none (segmented without it)"
            for role in MODALITIES]  # fmt: skip
    Console(width=200).print("uses: " + ", ".join(uses))


@app.command("synth-followup")
@reports_input_errors
@config_options(changes=FollowupConfig)
def synth_followup(
    case: Annotated[Path, typer.Argument(help="A labelled case (folder or file, as predict takes).")],
    out: Annotated[Path, typer.Argument(help="Folder for the follow-up case and followup.json.")],
    changes: FollowupConfig,
) -> None:
    """Make a synthetic follow-up of a real case with known changes, to try glioseg compare on.

    Example: glioseg synth-followup ../shared/data/brats2018-sample/Brats18_CBICA_ABM_1 later
    """
    from glioseg.workflows.followup import write_followup

    record = write_followup(case, out, changes)
    console.print(f"follow-up case {out / record['case']}; what was changed: {out / 'followup.json'}")


@app.command()
@reports_input_errors
def compare(
    baseline: Annotated[Path, typer.Argument(help="The earlier scan: a case folder or file, as predict takes.")],
    followup: Annotated[Path, typer.Argument(help="The later scan of the same patient.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for compare.html, compare.json, regions.csv, ...")],
    baseline_mask: Annotated[Path | None, typer.Option(help="The baseline's mask (else it is segmented).")] = None,
    followup_mask: Annotated[Path | None, typer.Option(help="The follow-up's mask (else it is segmented).")] = None,
    mask_labels: Annotated[
        typing.Literal[LABEL_CONVENTIONS] | None,
        typer.Option(help="Convention of the given masks (default: each case's own)."),
    ] = None,
    run: Annotated[list[Path] | None, typer.Option(help="Runs to segment with (default: the shipped model).")] = None,
    device: Device = DEFAULT_DEVICE,
) -> None:
    """How the tumour changed between two scans of one patient: the follow-up registered rigidly onto the baseline,
    lesions matched, volume and RANO sum-of-products changes, new and vanished lesions, research flags.

    Example: glioseg compare scans/2024-01 scans/2024-06 --out change
    """
    from glioseg.workflows.compare import RESEARCH_USE
    from glioseg.workflows.compare import compare as run_comparison

    comparison = run_comparison(baseline, followup, out, (baseline_mask, followup_mask), mask_labels, run, device)
    results = Console(width=160)  # the results on stdout; messages go to stderr
    for region in comparison.regions:
        change = "" if region["change_percent"] is None else f" ({region['change_percent']:+.1f} %)"
        results.print(f"{region['region']}: {region['baseline_ml']:.2f} -> {region['followup_ml']:.2f} mL{change}")
    products = comparison.sum_of_products
    results.print(f"enhancing sum of products: {products['baseline_mm2']:.0f} -> {products['followup_mm2']:.0f} mm2")
    results.print(f"flags: {', '.join(comparison.flags)}. {RESEARCH_USE}")
    console.print(f"report: {out / 'compare.html'}")


@app.command()
@reports_input_errors
@config_options(settings=EvaluateConfig)
def evaluate(
    pred_dir: Annotated[Path, typer.Argument(help="Folder of <case_id>.nii.gz predictions.")],
    gt_dir: Annotated[Path, typer.Argument(help="Dataset folder with the ground-truth labels (any layout).")],
    settings: EvaluateConfig,
    out: Annotated[Path, typer.Option("--out", help="Per-case CSV; the summary goes beside it as .json.")] = Path(
        "metrics.csv"
    ),
    pred_labels: Annotated[
        typing.Literal[LABEL_CONVENTIONS] | None,
        typer.Option(help="Convention of the predictions if not what their predict.json says."),
    ] = None,
) -> None:
    """Dice, HD95, surface Dice, sensitivity, specificity and volumes per case, region and class.

    Example: glioseg evaluate predictions ../shared/data/brats2018-sample --out metrics.csv
    """
    from glioseg.evaluation.evaluate import evaluate as run_evaluation
    from glioseg.evaluation.evaluate import write_results

    csv_path, json_path = write_results(run_evaluation(pred_dir, gt_dir, pred_labels, settings), out)
    _print_summary(json_path)
    console.print(f"per case: {csv_path}; summary: {json_path}")


def _print_summary(summary_path: Path) -> None:
    """The metrics summary (glioseg evaluate's JSON) as a table on the terminal, lesion-wise columns included."""
    import json

    from rich.table import Table

    summary = json.loads(summary_path.read_text())
    wanted = ("dice", "hd95", "nsd", "sensitivity", "specificity", "lesionwise_dice", "lesionwise_hd95", "pq_dsc")
    shown = [m for m in wanted if m in summary["WT"]]
    table = Table(title=f"{summary['WT']['dice']['n']} cases: mean (median)")
    table.add_column("")
    for metric in shown:
        table.add_column(metric.replace("lesionwise_", "lesion-wise "), justify="right")
    for name, metrics in summary.items():
        table.add_row(name, *(f"{metrics[m]['mean']:.3f} ({metrics[m]['median']:.3f})" for m in shown))
    Console(width=180).print(table)


@app.command()
@reports_input_errors
def export(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    out: Annotated[Path, typer.Option("--out", help="The weights file (.pt) to write.")],
    onnx: Annotated[bool, typer.Option(help="Also write the network as ONNX beside it (<out>.onnx).")] = False,
    half: Annotated[bool, typer.Option(help="Store the weights as float16 (half the size).")] = False,
) -> None:
    """Write a run's best weights and settings, without training state (a third of the size), for sharing.

    Example: glioseg export runs/all --out model.pt --onnx   (then: glioseg predict model.pt CASE --out DIR)
    """
    from glioseg.network.runs import export_weights

    if out.suffix != ".pt":
        raise typer.BadParameter("name the weights file *.pt", param_hint="--out")
    for path in export_weights(run, out, onnx, half):
        console.print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")


@app.command()
@reports_input_errors
@config_options(settings=(PredictConfig, ("labels", "save_probabilities")), postprocess=PostprocessConfig)
def crossval(
    runs: Annotated[list[Path], typer.Argument(help="The fold runs (each trained with --fold K on DATA).")],
    data: Annotated[Path, typer.Option("--data", help="The labelled dataset they were trained on.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for predictions and metrics.")],
    settings: PredictConfig,
    postprocess: PostprocessConfig,
    overwrite: Annotated[bool, typer.Option(help="Redo a folder cross-validated with other runs or settings.")] = False,
    partial: Annotated[
        bool, typer.Option(help="The runs of some folds only: score the cases they hold out, not all of DATA.")
    ] = False,
) -> None:
    """Cross-validate: each case predicted by the fold run that held it out, then all evaluated together.

    Example: glioseg crossval runs/fold0 runs/fold1 runs/fold2 runs/fold3 --data DATA --out cv
    """
    from glioseg.workflows.crossval import cross_validate

    settings = dataclasses.replace(settings, postprocess=postprocess)
    csv_path, json_path = cross_validate(runs, data, out, settings, overwrite, partial=partial)
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
    from glioseg.workflows.report import find_report_inputs, write_report

    inputs = find_report_inputs(folder, metrics)
    console.print(f"report: {write_report(out, inputs, title)}")


@app.command()
@reports_input_errors
@config_options(limits=UploadLimits)
def serve(
    runs: Annotated[
        list[Path] | None, typer.Argument(help="Run folder(s) to segment with (default: shipped model).")
    ] = None,
    predictions: Annotated[list[Path] | None, typer.Option(help="Prediction folder(s) to list in the viewer.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it to this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    *,
    limits: UploadLimits,
    device: Device = DEFAULT_DEVICE,
) -> None:
    """The web viewer: upload a case, watch it being segmented, explore it in 3D (NiiVue) and download the mask.

    Example: glioseg serve --predictions predictions   (then open http://127.0.0.1:8000)
    """
    import uvicorn

    from glioseg.app.viewer import create_app
    from glioseg.core.errors import InputError
    from glioseg.inference.predict import load_model

    for folder in predictions or []:
        if not (folder / "cases.json").exists():
            raise InputError(folder, "no cases.json here", "give a folder written by glioseg predict")
    model = load_model(runs or None, device)  # fail now, not at the first upload
    private = host not in ("127.0.0.1", "localhost", "::1")  # others can reach it: keep each browser's jobs apart
    app = create_app(lambda: model, list(predictions or []), limits=limits, private=private)
    console.print(f"viewer on http://{host}:{port} (Ctrl+C stops it)")
    if private:
        console.print("listening beyond this machine: each browser sees only its own jobs; no password, no TLS "
                      "(README, 'The viewer on a network')")  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command()
@reports_input_errors
def demo(
    out: Annotated[Path | None, typer.Option(help="Where the demo writes (default demo-output, or demo-full).")] = None,
    full: Annotated[bool, typer.Option(help="Train 2500 steps on 24 phantoms instead of 600 on 16.")] = False,
    real: Annotated[bool, typer.Option(help="Segment the public BraTS 2018 sample with the shipped model.")] = False,
    sample_dir: Annotated[Path | None, typer.Option(help="A local copy of the sample (with --real).")] = None,
) -> None:
    """The whole pipeline on phantoms, with no data and no network: generate them, segment the held-out ones with
    the shipped model, train a small network for a few minutes, segment them with it too, evaluate both, write the
    report. Rerunning finishes an interrupted demo. With --real: the shipped model on the public BraTS 2018 sample.

    Example: glioseg demo;  glioseg demo --full;  glioseg demo --real --sample-dir ../shared/data/brats2018-sample
    """
    import json

    from glioseg.workflows.demo import FULL_DEMO, DemoSettings, run_demo, run_real_demo

    out = out or Path("demo-full" if full else "demo-output")
    made = run_real_demo(out, sample_dir) if real else run_demo(out, FULL_DEMO if full else DemoSettings())

    def dice(summary: Path) -> str:
        means = json.loads(summary.read_text())
        return ", ".join(f"{name} {means[name]['dice']['mean']:.3f}" for name in ("WT", "TC", "ET"))

    if real:
        console.print(
            f"[green]demo done[/]: Dice on the sample (the shipped model's training cases) {dice(made['summary'])}"
        )
    else:
        console.print(f"[green]demo done[/]: held-out Dice of the shipped model {dice(made['shipped_summary'])}; "
                      f"of the network trained just now {dice(made['summary'])}")  # fmt: skip
    for name, path in made.items():
        console.print(f"  {name:<15} {path}")
    run = f"{made['run']} " if "run" in made else ""
    console.print(f"open {made['report']} in a browser; explore the cases in 3D with:\n"
                  f"  glioseg serve {run}--predictions {made['predictions']}")  # fmt: skip


def main() -> None:
    app()


if __name__ == "__main__":
    main()
