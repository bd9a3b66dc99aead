"""Every dataset layout users hold, one record each (:data:`LAYOUTS`), and where a case's files are in them (names
only; reading the voxels is :mod:`glioseg.datasets.cases`'s job). A new layout is a new record here: reading, ``glioseg
check``, phantoms written in it (``glioseg synth --layout``) and the help text all read the registry.

| layout    | images                                                   | label                      |
| --------- | -------------------------------------------------------- | -------------------------- |
| msd       | ``imagesTr/BRATS_001.nii.gz``, 4D, channel last          | ``labelsTr/BRATS_001...``  |
| brats2021 | ``<case>/<case>_{flair,t1,t1ce,t2}.nii.gz``              | ``<case>/<case>_seg...``   |
| brats2023 | ``<case>/<case>-{t2f,t1n,t1c,t2w}.nii.gz``               | ``<case>/<case>-seg...``   |
| nnunet    | ``imagesTr/<case>_0000.nii.gz`` ... ``_0003``            | ``labelsTr/<case>.nii.gz`` |

A dataset folder is read as the official downloads unpack: case folders may sit in subfolders (BraTS 2018/2019
``HGG/`` and ``LGG/``, BraTS 2024 ``training_data1_v2/``) below the top folder, beside spreadsheets and notes
(``name_mapping.csv``, ``survival_info.csv``), and files may be ``.nii`` (BraTS 2020). Files whose names start
with a dot (macOS ``._BRATS_001.nii.gz`` in the MSD archive) are ignored. MSD's channel order and both MSD's and
nnU-Net's label numbering come from ``dataset.json`` when it is there.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from glioseg.core.config import MAX_ABSENT_SEQUENCES, MODALITIES
from glioseg.core.errors import InputError
from glioseg.core.labels import (
    BRATS2021,
    BRATS2023,
    MSD,
    LabelConvention,
    LabelValueError,
    get_convention,
    msd_convention,
    nnunet_convention,
)

NIFTI_ENDINGS = (".nii.gz", ".nii")
MISNAMED_LABEL = re.compile(r".*_segm$", re.IGNORECASE)
"""A label file named otherwise: BraTS 2020's ``BraTS20_Training_355/W39_1998.09.19_Segm.nii``, as released."""
IMAGE_FOLDERS = ("imagesTr", "imagesTs")
METADATA_ENDINGS = (".csv", ".tsv", ".json", ".md", ".txt", ".pdf", ".xlsx", ".xls", ".html", ".yaml", ".yml",
                    ".zip", ".tar", ".gz", ".tgz", ".xz", ".sha256")  # fmt: skip
METADATA_NAMES = ("readme", "license", "licence", "notice", "sha256sums", "md5sums")
"""Files that downloads keep beside the cases (spreadsheets, notes, checksums, the archives they came in)."""
MAX_DEPTH = 3
"""How many folder levels below the given one are searched for case folders."""
NNUNET_CHANNEL_NAMES = {  # a dataset.json channel name (lower case) -> internal modality
    "flair": "FLAIR", "t2f": "FLAIR", "t2-flair": "FLAIR", "t2_flair": "FLAIR",
    "t1": "T1", "t1n": "T1", "t1w": "T1", "native t1": "T1",
    "t1ce": "T1Gd", "t1c": "T1Gd", "t1gd": "T1Gd", "t1-gd": "T1Gd", "t1_gd": "T1Gd",
    "t2": "T2", "t2w": "T2",
}  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """One dataset layout: where a case's files are, how its labels are numbered, how its datasets name cases.

    Attributes:
        name: what ``CaseFiles.layout`` and ``glioseg synth --layout`` call it.
        title: whose datasets these are, for help texts.
        convention: how its label files number the compartments, unless dataset.json or ``--label-convention``
            says otherwise.
        case_id_format: a case name as the layout's own datasets spell it (phantoms are named so), from a number.
        suffixes: case-folder layouts: each modality's (and the label's) file-name suffix; None for image folders.
        separator: between the case name and the suffix.
        channel_files: an image folder with one file per channel (``<case>_0000``) rather than one 4D file.
    """

    name: str
    title: str
    convention: LabelConvention
    case_id_format: str
    suffixes: dict[str, str] | None = None
    separator: str = ""
    channel_files: bool = False

    @property
    def case_folders(self) -> bool:
        """One folder per case (BraTS), rather than ``imagesTr``/``labelsTr`` (MSD, nnU-Net)."""
        return self.suffixes is not None

    @property
    def four_d(self) -> bool:
        """The four modalities in one 4D file, channels last (MSD)."""
        return not self.case_folders and not self.channel_files

    def file_name(self, case_id: str, key: str, ending: str = ".nii.gz") -> str:
        """A case-folder file's name: ``file_name("X", "T1Gd")`` -> ``"X_t1ce.nii.gz"`` in BraTS 2021."""
        return f"{case_id}{self.separator}{self.suffixes[key]}{ending}"  # type: ignore[index]

    def image_paths(self, root: Path, case_id: str) -> tuple[Path, ...]:
        """Where a training case's images are written in dataset folder ``root``: FLAIR, T1, T1Gd, T2 (one 4D file
        for MSD)."""
        if self.case_folders:
            return tuple(root / case_id / self.file_name(case_id, m) for m in MODALITIES)
        if self.channel_files:
            return tuple(root / IMAGE_FOLDERS[0] / f"{case_id}_{c:04d}.nii.gz" for c in range(len(MODALITIES)))
        return (root / IMAGE_FOLDERS[0] / f"{case_id}.nii.gz",)

    def label_path(self, root: Path, case_id: str) -> Path:
        if self.case_folders:
            return root / case_id / self.file_name(case_id, "label")
        return root / IMAGE_FOLDERS[0].replace("images", "labels") / f"{case_id}.nii.gz"

    def dataset_json(self, cases: int, name: str) -> dict | None:
        """The ``dataset.json`` an image-folder dataset carries: channel order and label names (None: case folders)."""
        if self.case_folders:
            return None
        labels = {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3}  # as MSD numbers them
        if self.channel_files:  # nnU-Net v2
            return {"name": name, "channel_names": dict(enumerate(MODALITIES)), "labels": labels,
                    "numTraining": cases, "file_ending": ".nii.gz"}  # fmt: skip
        return {"name": name, "tensorImageSize": "4D", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
                "labels": {str(value): label for label, value in labels.items()}, "numTraining": cases}  # fmt: skip


LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("msd", "MSD Task01", MSD, "BRATS_{:03d}"),
        Layout("brats2021", "BraTS 2018-2021", BRATS2021,
               "BraTS2021_{:05d}", {"FLAIR": "flair", "T1": "t1", "T1Gd": "t1ce", "T2": "t2", "label": "seg"}, "_"),
        Layout("brats2023", "BraTS 2023+", BRATS2023,
               "BraTS-GLI-{:05d}-000", {"FLAIR": "t2f", "T1": "t1n", "T1Gd": "t1c", "T2": "t2w", "label": "seg"}, "-"),
        Layout("nnunet", "nnU-Net raw", MSD, "BraTS_{:05d}", channel_files=True),
    )
}  # fmt: skip
"""The registry: every layout glioseg reads and writes."""


def describe_layouts() -> str:
    """``msd (MSD Task01), brats2021 (BraTS 2018-2021), ...``: for help texts."""
    return ", ".join(f"{name} ({layout.title})" for name, layout in LAYOUTS.items())


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case, before anything is read.

    Attributes:
        case_id: the case's name (folder name, or file stem without channel suffix).
        layout: one of :data:`LAYOUTS`.
        images: one 4D file (msd) or four files in FLAIR, T1, T1Gd, T2 order, None for a sequence the case lacks
            (read only where a caller allows it: ``complete=False``, what prediction does).
        label: the label file, or None where the dataset has none for this case.
        convention: how the label file numbers the compartments.
        channels: for a 4D file, the channel holding FLAIR, T1, T1Gd and T2 (from dataset.json's ``modality``).
    """

    case_id: str
    layout: str
    images: tuple[Path | None, ...]
    label: Path | None
    convention: LabelConvention
    channels: tuple[int, int, int, int] = (0, 1, 2, 3)

    @property
    def absent(self) -> tuple[str, ...]:
        """The sequences this case lacks (none for a 4D file)."""
        return tuple(m for m, path in zip(MODALITIES, self.images) if path is None) if len(self.images) > 1 else ()

    @property
    def first_image(self) -> Path:
        """The first image file the case has: what names it in messages and whose header its masks keep."""
        return next(path for path in self.images if path is not None)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, as `glioseg check` lists it."""

    case_id: str
    path: Path
    problem: str
    fix: str

    @classmethod
    def from_error(cls, case_id: str, error: InputError) -> Problem:
        return cls(case_id, error.path, error.problem, error.fix)


def strip_nifti(name: str) -> str | None:
    """``"a_t1.nii.gz"`` -> ``"a_t1"``; None for a name that is not NIfTI."""
    for ending in NIFTI_ENDINGS:
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return None


def _visible_entries(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as error:
        raise InputError(folder, f"cannot list this folder ({error.strerror})", "check the path") from None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a symlink loop and the like: not a folder we can use
        return False


PREPARE_RECORD = "prepare"
"""The folder ``glioseg prepare`` leaves in a case folder it made (brain mask, transforms, QC picture)."""


def _is_metadata(path: Path) -> bool:
    """A readable file that downloads keep beside cases (never a NIfTI, a link loop or a broken link)."""
    name = path.name.lower()
    known = name.endswith(METADATA_ENDINGS) or name in METADATA_NAMES
    return known and strip_nifti(name) is None and path.is_file()


def case_folder_names() -> str:
    """How case-folder layouts name files: ``<case>_flair/_t1/_t1ce/_t2.nii.gz or <case>-t2f/...``."""
    return " or ".join(
        "<case>" + "/".join(layout.separator + layout.suffixes[m] for m in MODALITIES) + ".nii.gz"
        for layout in LAYOUTS.values()
        if layout.suffixes
    )


def _split(stem: str, layout: Layout) -> tuple[str, str] | None:
    """``"Brats18_2013_2_1_t1ce"`` -> ``("Brats18_2013_2_1", "t1ce")`` (prefix, suffix), in a case-folder layout."""
    if layout.separator not in stem:
        return None
    prefix, suffix = stem.rsplit(layout.separator, 1)
    return prefix, suffix.lower()


def _absent_problems(case_id: str, paths: list[Path], absent: list[str], complete: bool) -> list[Problem]:
    """Problems of sequences a case lacks: each one where ``complete`` (training, ``--require-all``), else only when
    more are missing than a case may lack (:data:`MAX_ABSENT_SEQUENCES`)."""
    if complete:
        return [
            Problem(
                case_id, path, f"{modality} image missing", "add the file, or remove the case from the dataset"
            )  # fmt: skip
            for modality, path in zip(absent, paths)
        ]
    if len(absent) > MAX_ABSENT_SEQUENCES:
        return [Problem(case_id, paths[0], f"{' and '.join(absent)} images missing: glioseg segments a case that "
                        f"lacks {MAX_ABSENT_SEQUENCES} of the four sequences at most", "add the files")]  # fmt: skip
    return []


def _brats_case(folder: Path, layout: Layout, complete: bool = True) -> tuple[CaseFiles | None, list[Problem]]:
    """Match a case folder's files by their modality suffix; one prefix, one file per modality (a sequence may be
    absent unless ``complete``: :func:`_absent_problems`)."""
    suffixes = layout.suffixes or {}
    by_suffix = {suffix: key for key, suffix in suffixes.items()}
    found: dict[str, list[Path]] = {}
    prefixes: dict[str, set[str]] = {}
    problems = []

    def problem(path: Path, what: str, fix: str) -> None:
        problems.append(Problem(folder.name, path, what, fix))

    expected = f"a case folder holds <case>{layout.separator}" + "/".join(suffixes.values()) + ".nii.gz only"
    for path in _visible_entries(folder):
        if path.name == PREPARE_RECORD and _is_dir(path):
            continue  # what glioseg prepare did to make this case
        stem = strip_nifti(path.name)
        parts = _split(stem, layout) if stem is not None else None
        key = by_suffix.get(parts[1]) if parts else None
        if key is None and stem is not None and MISNAMED_LABEL.match(stem):
            key, parts = "label", None  # the release's own misnaming: a label, whatever its prefix
        if key is None:
            if stem is not None or not _is_metadata(path):
                problem(
                    path, f"unexpected file in a {layout.name} case folder", f"{expected}; move this file elsewhere"
                )
            continue
        found.setdefault(key, []).append(path)
        if parts:
            prefixes.setdefault(parts[0], set()).add(key)
    for key, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            problem(paths[1], f"{len(paths)} files for the {key} of one case ({names})",
                    "keep one file per modality in a case folder")  # fmt: skip
    if len(prefixes) > 1:
        named = "; ".join(f"{prefix}: {', '.join(sorted(keys))}" for prefix, keys in sorted(prefixes.items()))
        problem(folder, f"files of more than one case in one folder ({named})",
                f"give each case its own folder, its files named <case>{layout.separator}...")  # fmt: skip
    absent = [m for m in MODALITIES if m not in found]
    problems += _absent_problems(folder.name, [folder / layout.file_name(folder.name, m) for m in absent], absent,
                               complete)  # fmt: skip
    if problems:
        return None, problems
    images = tuple(found[m][0] if m in found else None for m in MODALITIES)
    label = found["label"][0] if "label" in found else None
    return CaseFiles(folder.name, layout.name, images, label, layout.convention), []


def case_layout(folder: Path) -> Layout | None:
    """The case-folder layout whose modality suffixes most of the folder's file names end with, if any."""
    stems = [(strip_nifti(p.name) or "").lower() for p in _visible_entries(folder) if not _is_dir(p)]
    named = {
        name: sum(s.endswith(tuple(layout.separator + layout.suffixes[m] for m in MODALITIES)) for s in stems)
        for name, layout in LAYOUTS.items()
        if layout.suffixes
    }
    best = max(named, key=named.__getitem__)
    return LAYOUTS[best] if named[best] else None


def _read_dataset_json(root: Path) -> dict | None:
    path = root / "dataset.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, f"not valid JSON ({error})", "repair or regenerate dataset.json") from None


def _channel_order(root: Path, names: dict | None, what: str) -> list[str]:
    """Internal modality of each channel index, from dataset.json's ``channel_names`` (nnU-Net) or ``modality``
    (MSD)."""
    order = []
    for index in range(len(names or {})):
        given = str(names.get(str(index), "")).strip()  # type: ignore[union-attr]
        name = given.lower()
        if name not in NNUNET_CHANNEL_NAMES:
            raise InputError(root / "dataset.json", f"{what} {index} is named {given!r}, which is not FLAIR, T1, "
                             "T1Gd/T1ce or T2", f"name the four channels FLAIR, T1, T1Gd, T2 in {what}")  # fmt: skip
        order.append(NNUNET_CHANNEL_NAMES[name])
    if sorted(order) != sorted(MODALITIES):
        raise InputError(root / "dataset.json", f"{what} gives {order}; glioseg needs FLAIR, T1, T1Gd and T2 once each",
                         f"list the four modalities in {what}")  # fmt: skip
    return order


def _image_folder_cases(root: Path, override: LabelConvention | None,
                        complete: bool = True) -> tuple[list[CaseFiles], list[Problem]]:  # fmt: skip
    """MSD or nnU-Net raw: ``imagesTr``/``imagesTs`` beside ``labelsTr`` and ``dataset.json``; with ``override``,
    the labels are read in it and dataset.json's label names are not needed."""
    cases, problems = [], []
    meta = _read_dataset_json(root)
    for images_name in IMAGE_FOLDERS:
        images_dir = root / images_name
        if not _is_dir(images_dir):
            continue
        labels_dir = root / images_name.replace("images", "labels")
        stems = [s for s in (strip_nifti(p.name) for p in _visible_entries(images_dir)) if s]
        channel_files = [s for s in stems if _is_channel_file(s)]
        if channel_files and len(channel_files) == len(stems):
            found, found_problems = _nnunet_cases(root, images_dir, labels_dir, meta, override, complete)
        else:
            found, found_problems = _msd_cases(root, images_dir, labels_dir, meta, override)
        cases += found
        problems += found_problems
    return cases, problems


def _is_channel_file(stem: str) -> bool:
    return len(stem) > 5 and stem[-5] == "_" and stem[-4:].isdigit()


def _msd_convention_and_channels(
    root: Path, meta: dict | None, override: LabelConvention | None
) -> tuple[LabelConvention, tuple[int, ...]]:
    """MSD Task01's numbering and channel order, or the ones its dataset.json declares (not assumed)."""
    if not meta:
        return override or MSD, (0, 1, 2, 3)
    try:
        convention = override or (msd_convention(meta["labels"]) if meta.get("labels") else MSD)
    except LabelValueError as error:
        raise InputError(root / "dataset.json", str(error), "name the labels as MSD Task01 does") from None
    if not meta.get("modality"):
        return convention, (0, 1, 2, 3)
    order = _channel_order(root, meta["modality"], "modality")
    return convention, tuple(order.index(m) for m in MODALITIES)


def _msd_cases(
    root: Path, images_dir: Path, labels_dir: Path, meta: dict | None, override: LabelConvention | None
) -> tuple[list, list[Problem]]:
    convention, channels = _msd_convention_and_channels(root, meta, override)
    cases, problems = [], []
    for path in _visible_entries(images_dir):
        stem = strip_nifti(path.name)
        if stem is None:
            if not _is_metadata(path):
                problems.append(Problem("-", path, "not a NIfTI file", "remove it from " + images_dir.name))
            continue
        label = _label_file(labels_dir, stem)
        cases.append(CaseFiles(stem, "msd", (path,), label, convention, channels))  # type: ignore[arg-type]
    return cases, problems


def _nnunet_cases(
    root: Path, images_dir: Path, labels_dir: Path, meta: dict | None, override: LabelConvention | None,
    complete: bool = True,
) -> tuple[list[CaseFiles], list[Problem]]:  # fmt: skip
    names = (meta or {}).get("channel_names") or (meta or {}).get("modality")
    if not names:
        raise InputError(
            root / "dataset.json",
            "nnU-Net dataset.json missing or without channel_names, so the channel order is unknown",
            'add dataset.json with "channel_names": {"0": "FLAIR", "1": "T1", "2": "T1Gd", "3": "T2"} '
            "(in your files' order) and its labels",
        )
    order = _channel_order(root, names, "channel_names")
    try:
        convention = override or nnunet_convention((meta or {}).get("labels") or {})
    except LabelValueError as error:
        raise InputError(root / "dataset.json", str(error),
                         'name labels as BraTS does, e.g. {"background": 0, "edema": 1, "non-enhancing tumor": 2, '
                         '"enhancing tumor": 3}, or pass --label-convention') from None  # fmt: skip
    by_case: dict[str, dict[int, Path]] = {}
    for path in _visible_entries(images_dir):
        stem = strip_nifti(path.name) or ""
        by_case.setdefault(stem[:-5], {})[int(stem[-4:])] = path
    cases, problems = [], []
    for case_id, channels in sorted(by_case.items()):
        missing = [i for i in range(len(MODALITIES)) if i not in channels]
        absent = _absent_problems(case_id, [images_dir / f"{case_id}_{i:04d}.nii.gz" for i in missing],
                                [f"channel {i} ({order[i]})" for i in missing], complete)  # fmt: skip
        if absent:
            problems += absent
            continue
        images = tuple(channels.get(order.index(m)) for m in MODALITIES)
        cases.append(CaseFiles(case_id, "nnunet", images, _label_file(labels_dir, case_id), convention))
    return cases, problems


def _label_file(labels_dir: Path, stem: str) -> Path | None:
    for ending in NIFTI_ENDINGS:
        if (labels_dir / f"{stem}{ending}").exists():
            return labels_dir / f"{stem}{ending}"
    return None


def _holds_cases(folder: Path, depth: int) -> bool:
    """Whether ``folder`` or a folder below it (down to ``depth`` levels) is a case folder or an MSD/nnU-Net root."""
    if case_layout(folder) or any(_is_dir(folder / name) for name in IMAGE_FOLDERS):
        return True
    return depth > 0 and any(_holds_cases(p, depth - 1) for p in _visible_entries(folder) if _is_dir(p))


def _scan(root: Path, depth: int, override: LabelConvention | None,
          complete: bool = True) -> tuple[list[CaseFiles], list[Problem]]:  # fmt: skip
    """The cases at and below ``root``: an MSD/nnU-Net root, or folders of case folders, possibly nested."""
    if any(_is_dir(root / name) for name in IMAGE_FOLDERS):
        return _image_folder_cases(root, override, complete)
    cases, problems = [], []
    for entry in _visible_entries(root):
        if not _is_dir(entry):
            if not _is_metadata(entry):
                problems.append(Problem("-", entry, "unexpected file among case folders", "move it elsewhere"))
            continue
        layout = case_layout(entry)
        if layout is not None:
            case, case_problems = _brats_case(entry, layout, complete)
            problems += case_problems
            cases += [case if override is None else replace(case, convention=override)] if case else []
        elif depth > 0 and _holds_cases(entry, depth - 1):
            found, found_problems = _scan(entry, depth - 1, override, complete)
            cases += found
            problems += found_problems
        else:
            problems.append(Problem(entry.name, entry, "no BraTS-named NIfTI files in this folder",
                                    f"name files {case_folder_names()}"))  # fmt: skip
    return cases, problems


def scan_dataset(folder: str | Path, label_convention: str | None = None,
                 complete: bool = True) -> tuple[list[CaseFiles], list[Problem]]:  # fmt: skip
    """All cases of a dataset folder in any layout, and the problems found on the way.

    Args:
        label_convention: read every label in this named convention (``--label-convention``) instead of the one
            its layout implies.
        complete: a case lacking a sequence is a problem (training, ``glioseg check``); else it is read with that
            sequence absent (prediction: :attr:`CaseFiles.absent`).
    """
    root = Path(folder)
    if not _is_dir(root):
        raise InputError(root, "no such dataset folder", "give the folder that holds the cases")
    override = None if label_convention is None else get_convention(label_convention)
    cases, problems = _scan(root, MAX_DEPTH, override, complete)
    counts = Counter(c.case_id for c in cases)
    for case_id, count in counts.items():
        if count > 1:
            paths = [c.images[0] for c in cases if c.case_id == case_id]
            problems.append(
                Problem(
                    case_id,
                    paths[1],
                    f"case id {case_id!r} appears {count} times ({', '.join(map(str, paths))})",
                    "rename or remove the duplicate so each patient appears once",
                )
            )
    if not cases and not problems:
        problems.append(Problem("-", root, "no cases found", "point to a folder in one of the layouts in the README"))
    return cases, problems


def locate_case(path: str | Path, label_convention: str | None = None, complete: bool = True) -> CaseFiles:
    """The files of one case given as a BraTS case folder, a 4D image (MSD style, in any folder) or one nnU-Net
    channel file; ``complete`` as :func:`scan_dataset`'s."""
    path = Path(path)
    if _is_dir(path):
        layout = case_layout(path)
        if layout is None:
            raise InputError(path, "this folder holds no BraTS-named NIfTI files",
                             f"give a case folder ({case_folder_names()}), a 4D image or an nnU-Net "
                             "<case>_0000.nii.gz")  # fmt: skip
        case, problems = _brats_case(path, layout, complete)
        if case is None:
            first = next((p for p in problems if "missing" in p.problem), problems[0])
            raise InputError(first.path, first.problem, first.fix)
        return case if label_convention is None else replace(case, convention=get_convention(label_convention))
    return _file_case(path, None if label_convention is None else get_convention(label_convention), complete)


def _file_case(path: Path, override: LabelConvention | None, complete: bool = True) -> CaseFiles:
    """A case named by one file: an nnU-Net channel file (its siblings complete it) or a 4D image. A label is looked
    for only where a dataset keeps one (``labelsTr`` beside ``imagesTr``), never beside a file in any folder."""
    stem = strip_nifti(path.name)
    if stem is None or not path.is_file():
        raise InputError(path, "not a case folder or NIfTI file", "give an existing case folder or .nii.gz file")
    images_dir = path.parent
    in_dataset = images_dir.name in IMAGE_FOLDERS
    root = images_dir.parent if in_dataset else images_dir
    labels_dir = root / images_dir.name.replace("images", "labels")
    meta = _read_dataset_json(root) if in_dataset else None
    ending = path.name[len(stem) :]
    siblings = [c for c in range(len(MODALITIES)) if (images_dir / f"{stem[:-5]}_{c:04d}{ending}").exists()]
    if _is_channel_file(stem) and len(siblings) > 1:  # a channel of several, not an MSD file named like one
        cases, problems = _nnunet_cases(root, images_dir, labels_dir, meta, override, complete)
        for case in cases:
            if case.case_id == stem[:-5]:
                return case
        first = next(p for p in problems if p.case_id == stem[:-5])
        raise InputError(first.path, first.problem, first.fix)
    convention, channels = _msd_convention_and_channels(root, meta, override)
    label = _label_file(labels_dir, stem) if in_dataset else None
    return CaseFiles(stem, "msd", (path,), label, convention, channels)  # type: ignore[arg-type]
