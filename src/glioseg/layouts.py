"""Where a case's files are, in each dataset layout users hold (names only; reading is io.py's job).

| layout    | images                                                   | label                      |
| --------- | -------------------------------------------------------- | -------------------------- |
| msd       | ``imagesTr/BRATS_001.nii.gz``, 4D, channel last          | ``labelsTr/BRATS_001...``  |
| brats2021 | ``<case>/<case>_{flair,t1,t1ce,t2}.nii.gz``              | ``<case>/<case>_seg...``   |
| brats2023 | ``<case>/<case>-{t2f,t1n,t1c,t2w}.nii.gz``               | ``<case>/<case>-seg...``   |
| nnunet    | ``imagesTr/<case>_0000.nii.gz`` ... ``_0003``            | ``labelsTr/<case>.nii.gz`` |

Files whose names start with a dot (macOS ``._BRATS_001.nii.gz`` in the MSD archive) are ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from glioseg.errors import InputError
from glioseg.labels import BRATS2021, BRATS2023, MSD, LabelConvention, LabelValueError, nnunet_convention

MODALITIES = ("FLAIR", "T1", "T1Gd", "T2")
"""Internal channel order of every image array."""

LAYOUTS = ("msd", "brats2021", "brats2023", "nnunet")
NIFTI_ENDINGS = (".nii.gz", ".nii")
BRATS2021_SUFFIXES = {"FLAIR": "flair", "T1": "t1", "T1Gd": "t1ce", "T2": "t2", "label": "seg"}
BRATS2023_SUFFIXES = {"FLAIR": "t2f", "T1": "t1n", "T1Gd": "t1c", "T2": "t2w", "label": "seg"}
IMAGE_FOLDERS = ("imagesTr", "imagesTs")
NNUNET_CHANNEL_NAMES = {  # a dataset.json channel name (lower case) -> internal modality
    "flair": "FLAIR", "t2f": "FLAIR", "t2-flair": "FLAIR", "t2_flair": "FLAIR",
    "t1": "T1", "t1n": "T1", "t1w": "T1", "native t1": "T1",
    "t1ce": "T1Gd", "t1c": "T1Gd", "t1gd": "T1Gd", "t1-gd": "T1Gd", "t1_gd": "T1Gd",
    "t2": "T2", "t2w": "T2",
}  # fmt: skip


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case, before anything is read.

    Attributes:
        case_id: the case's name (folder name, or file stem without channel suffix).
        layout: one of :data:`LAYOUTS`.
        images: one 4D file (msd) or four files in FLAIR, T1, T1Gd, T2 order.
        label: the label file, or None where the dataset has none for this case.
        convention: how the label file numbers the compartments.
    """

    case_id: str
    layout: str
    images: tuple[Path, ...]
    label: Path | None
    convention: LabelConvention


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
        if name.endswith(ending):
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


def _brats_case(folder: Path, suffixes: dict[str, str], layout: str) -> tuple[CaseFiles | None, list[Problem]]:
    """Match a BraTS case folder's files by their modality suffix."""
    separator = "_" if layout == "brats2021" else "-"
    found: dict[str, Path] = {}
    problems = []
    by_suffix = {suffix: key for key, suffix in suffixes.items()}
    for path in _visible_entries(folder):
        stem = strip_nifti(path.name)
        suffix = stem.rsplit(separator, 1)[-1].lower() if stem and separator in stem else None
        if suffix in by_suffix and by_suffix[suffix] not in found:
            found[by_suffix[suffix]] = path
        else:
            problems.append(
                Problem(
                    folder.name,
                    path,
                    f"unexpected file in a {layout} case folder",
                    f"a case folder holds only <case>{separator}"
                    + "/".join(suffixes.values())
                    + ".nii.gz; move this file elsewhere",
                )
            )
    missing = [m for m in MODALITIES if m not in found]
    for modality in missing:
        problems.append(
            Problem(
                folder.name,
                folder / f"{folder.name}{separator}{suffixes[modality]}.nii.gz",
                f"{modality} image missing",
                "add the file, or remove the case from the dataset",
            )
        )
    if missing:
        return None, problems
    convention = BRATS2021 if layout == "brats2021" else BRATS2023
    images = tuple(found[m] for m in MODALITIES)
    return CaseFiles(folder.name, layout, images, found.get("label"), convention), problems


def _brats_layout_of(folder: Path) -> str | None:
    stems = [strip_nifti(p.name) or "" for p in _visible_entries(folder)]
    if any(s.lower().endswith(("-t2f", "-t1n", "-t1c", "-t2w")) for s in stems):
        return "brats2023"
    if any(s.lower().endswith(("_flair", "_t1", "_t1ce", "_t2")) for s in stems):
        return "brats2021"
    return None


def _read_dataset_json(root: Path) -> dict | None:
    path = root / "dataset.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, f"not valid JSON ({error})", "repair or regenerate dataset.json") from None


def _nnunet_channels(root: Path, meta: dict | None) -> list[str]:
    """Internal modality of each nnU-Net channel index, from dataset.json's ``channel_names``."""
    names = (meta or {}).get("channel_names") or (meta or {}).get("modality")
    if not names:
        raise InputError(
            root / "dataset.json",
            "nnU-Net dataset.json missing or without channel_names, so the channel order is unknown",
            'add dataset.json with "channel_names": {"0": "FLAIR", "1": "T1", "2": "T1Gd", "3": "T2"} '
            "(in your files' order) and its labels",
        )
    order = []
    for index in range(len(names)):
        name = str(names.get(str(index), "")).strip().lower()
        if name not in NNUNET_CHANNEL_NAMES:
            raise InputError(
                root / "dataset.json",
                f"channel {index} is named {name!r}, which is not FLAIR, T1, T1Gd/T1ce or T2",
                "name the four channels FLAIR, T1, T1Gd, T2 in channel_names",
            )
        order.append(NNUNET_CHANNEL_NAMES[name])
    if sorted(order) != sorted(MODALITIES):
        raise InputError(
            root / "dataset.json",
            f"channel_names give {order}; glioseg needs FLAIR, T1, T1Gd and T2 once each",
            "list the four modalities in channel_names",
        )
    return order


def _image_folder_cases(root: Path) -> tuple[list[CaseFiles], list[Problem]]:
    """MSD or nnU-Net raw: ``imagesTr``/``imagesTs`` beside ``labelsTr`` and ``dataset.json``."""
    cases, problems = [], []
    meta = _read_dataset_json(root)
    for images_name in IMAGE_FOLDERS:
        images_dir = root / images_name
        if not _is_dir(images_dir):
            continue
        labels_dir = root / images_name.replace("images", "labels")
        stems = [s for s in (strip_nifti(p.name) for p in _visible_entries(images_dir)) if s]
        channel_files = [s for s in stems if len(s) > 5 and s[-5] == "_" and s[-4:].isdigit()]
        if channel_files and len(channel_files) == len(stems):
            found, found_problems = _nnunet_cases(root, images_dir, labels_dir, meta)
        else:
            found, found_problems = _msd_cases(images_dir, labels_dir)
        cases += found
        problems += found_problems
    return cases, problems


def _msd_cases(images_dir: Path, labels_dir: Path) -> tuple[list[CaseFiles], list[Problem]]:
    cases, problems = [], []
    for path in _visible_entries(images_dir):
        stem = strip_nifti(path.name)
        if stem is None:
            problems.append(Problem("-", path, "not a NIfTI file", "remove it from " + images_dir.name))
            continue
        cases.append(CaseFiles(stem, "msd", (path,), _label_file(labels_dir, stem), MSD))
    return cases, problems


def _nnunet_cases(
    root: Path, images_dir: Path, labels_dir: Path, meta: dict | None
) -> tuple[list[CaseFiles], list[Problem]]:
    order = _nnunet_channels(root, meta)
    try:
        convention = nnunet_convention((meta or {}).get("labels") or {})
    except LabelValueError as error:
        raise InputError(root / "dataset.json", str(error), "name labels as in glioseg's README") from None
    by_case: dict[str, dict[int, Path]] = {}
    for path in _visible_entries(images_dir):
        stem = strip_nifti(path.name) or ""
        by_case.setdefault(stem[:-5], {})[int(stem[-4:])] = path
    cases, problems = [], []
    for case_id, channels in sorted(by_case.items()):
        missing = [i for i in range(4) if i not in channels]
        if missing:
            for index in missing:
                problems.append(
                    Problem(
                        case_id,
                        images_dir / f"{case_id}_{index:04d}.nii.gz",
                        f"channel {index} ({order[index]}) missing",
                        "add the file, or remove the case's other channels",
                    )
                )
            continue
        images = tuple(channels[order.index(m)] for m in MODALITIES)
        cases.append(CaseFiles(case_id, "nnunet", images, _label_file(labels_dir, case_id), convention))
    return cases, problems


def _label_file(labels_dir: Path, stem: str) -> Path | None:
    for ending in NIFTI_ENDINGS:
        if (labels_dir / f"{stem}{ending}").exists():
            return labels_dir / f"{stem}{ending}"
    return None


def scan_dataset(folder: str | Path) -> tuple[list[CaseFiles], list[Problem]]:
    """All cases of a dataset folder in any layout, and the problems found on the way.

    A folder is MSD / nnU-Net raw if it holds ``imagesTr`` or ``imagesTs``, otherwise a folder of BraTS
    case folders (2018-2021 or 2023+ naming, told apart per case).
    """
    root = Path(folder)
    if not _is_dir(root):
        raise InputError(root, "no such dataset folder", "give the folder that holds the cases")
    if any(_is_dir(root / name) for name in IMAGE_FOLDERS):
        cases, problems = _image_folder_cases(root)
    else:
        cases, problems = [], []
        for entry in _visible_entries(root):
            if not _is_dir(entry):
                if entry.name not in ("README.md", "README", "SHA256SUMS", "dataset.json"):
                    problems.append(Problem("-", entry, "unexpected file among case folders", "move it elsewhere"))
                continue
            layout = _brats_layout_of(entry)
            if layout is None:
                problems.append(
                    Problem(
                        entry.name,
                        entry,
                        "no BraTS-named NIfTI files in this folder",
                        "name files <case>_flair/_t1/_t1ce/_t2.nii.gz or <case>-t2f/-t1n/-t1c/-t2w.nii.gz",
                    )
                )
                continue
            suffixes = BRATS2021_SUFFIXES if layout == "brats2021" else BRATS2023_SUFFIXES
            case, case_problems = _brats_case(entry, suffixes, layout)
            problems += case_problems
            if case:
                cases.append(case)
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


def find_cases(folder: str | Path) -> list[CaseFiles]:
    """The cases of a dataset folder, images paired with labels.

    Raises:
        InputError: naming the first problem (all are listed by ``glioseg check``).
    """
    cases, problems = scan_dataset(folder)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems: run `glioseg check {folder}`)" if len(problems) > 1 else ""
        raise InputError(first.path, first.problem + more, first.fix)
    return cases


def locate_case(path: str | Path) -> CaseFiles:
    """The files of one case given as a BraTS case folder, an MSD 4D image or one nnU-Net channel file."""
    path = Path(path)
    if _is_dir(path):
        layout = _brats_layout_of(path)
        if layout is None:
            raise InputError(
                path,
                "this folder holds no BraTS-named NIfTI files",
                "give a case folder (<case>_flair.nii.gz ... or <case>-t2f.nii.gz ...), "
                "an MSD 4D image or an nnU-Net <case>_0000.nii.gz",
            )
        suffixes = BRATS2021_SUFFIXES if layout == "brats2021" else BRATS2023_SUFFIXES
        case, problems = _brats_case(path, suffixes, layout)
        missing = [p for p in problems if "missing" in p.problem]
        if case is None or missing:
            first = missing[0] if missing else problems[0]
            raise InputError(first.path, first.problem, first.fix)
        return case
    stem = strip_nifti(path.name)
    if stem is None or not path.exists():
        raise InputError(path, "not a case folder or NIfTI file", "give an existing case folder or .nii.gz file")
    root, images_dir = path.parent.parent, path.parent
    labels_dir = root / images_dir.name.replace("images", "labels")
    is_channel = len(stem) > 5 and stem[-5] == "_" and stem[-4:].isdigit()
    if is_channel and (images_dir / f"{stem[:-5]}_0001{path.name[len(stem) :]}").exists():
        cases, problems = _nnunet_cases(root, images_dir, labels_dir, _read_dataset_json(root))
        for case in cases:
            if case.case_id == stem[:-5]:
                return case
        first = next(p for p in problems if p.case_id == stem[:-5])
        raise InputError(first.path, first.problem, first.fix)
    return CaseFiles(stem, "msd", (path,), _label_file(labels_dir, stem), MSD)
