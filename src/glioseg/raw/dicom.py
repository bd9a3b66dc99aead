"""DICOM studies: the files of a folder grouped into series, and FLAIR, T1, T1Gd and T2 found from their tags.

The first step of preparing raw scans (issue 18): what ``glioseg series STUDY`` lists. Headers only are read
(pydicom, ``stop_before_pixels``). A series' role comes from its tags, as a reader would judge them:

- left out: not MR; localisers; diffusion (DWI, ADC, trace, FA); functional, perfusion, field maps, angiography,
  susceptibility and spectroscopy series; derived images (reformats, maps).
- FLAIR: "flair", "dark fluid" or "tirm" in its names, or an inversion time of at least 1500 ms with a repetition
  time of at least 4000 ms.
- T2: "t2" in its names (not T2*), or TE of at least 70 ms with TR of at least 2000 ms.
- T1: "t1", "mprage", "spgr", "bravo", "tfl", "fl3d", "vibe", "ffe" in its names, or TR under 1000 ms with TE under
  30 ms; T1Gd when a contrast agent is recorded (ContrastBolusAgent, 0018,0010) or its names say so ("+c", "post",
  "gd", "gad", "contrast", "ce").

Each role needs exactly one series; a missing or doubled one is an error that lists the series and says how to
choose (``--series T1Gd=7``: a series number or UID).

A series is only taken if its geometry is what its headers say, since a converter that has to guess the geometry
(dcm2niix warns, then writes its guess) would pass a wrong grid on silently: every slice has a position, orientation
and pixel spacing; the slices share one orientation, lie at distinct, evenly spaced positions, and are stacked along
their own normal (a gantry-tilted stack is refused: glioseg does not correct tilt). A folder whose series name
different patients (ID, name or birth date) is refused, and so are chosen series of different frames of reference
(other sessions), unless each was chosen with ``--series``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glioseg.core.config import MAX_ABSENT_SEQUENCES, MODALITIES, REFERENCE
from glioseg.core.errors import InputError
from glioseg.datasets.cases import MAX_VOXELS, SPACING_RANGE_MM

LEFT_OUT = (
    ("localiser", re.compile(r"loc|scout|survey|3.?plane|aahead|calibration", re.IGNORECASE)),
    ("diffusion", re.compile(r"diffusion|dwi|dti|adc|trace|\bfa\b|tensor|\bb\d{3,4}\b", re.IGNORECASE)),
    (
        "functional, perfusion or field map",
        re.compile(
            r"fmri|bold|\bepi\b|perf|dsc|dce|asl|field.?map|b0.?map|"
            r"\bfm\b|resting",
            re.IGNORECASE,
        ),
    ),  # fmt: skip
    (
        "angiography, susceptibility or spectroscopy",
        re.compile(r"\btof\b|mra|angio|swi|swan|t2\*|t2star|mrs|spectro|csi", re.IGNORECASE),
    ),  # fmt: skip
)
"""Series that are none of the four sequences, by a pattern over their names and image type."""
FLAIR_NAMES = re.compile(r"flair|dark.?fluid|tirm", re.IGNORECASE)
T2_NAMES = re.compile(r"t2(?![\*s])|tse.*t2|hASTE", re.IGNORECASE)
T1_NAMES = re.compile(r"t1|mp.?rage|spgr|bravo|tfl|fl3d|vibe|ffe|mpr\b", re.IGNORECASE)
CONTRAST_NAMES = re.compile(r"\+ ?c\b|post|\bgd\b|gad|contrast|\bce\b|t1c|kontrast", re.IGNORECASE)
NO_AGENT = {"", "none", "no", "n/a", "na", "0"}


@dataclass(frozen=True)
class Series:
    """One DICOM series: where its files are and the tags that tell what it is."""

    uid: str
    number: int | None
    description: str
    protocol: str
    modality: str
    patient: str
    study: str
    study_description: str
    files: tuple[Path, ...]
    frames: int
    image_type: tuple[str, ...]
    repetition_ms: float | None
    echo_ms: float | None
    inversion_ms: float | None
    contrast_agent: str
    patient_name: str = ""
    birth_date: str = ""
    frame_of_reference: str = ""
    geometry_problem: str | None = None
    """Why its slices do not make one volume of known geometry (:func:`geometry_problem`), or None."""

    @property
    def names(self) -> str:
        return f"{self.description} {self.protocol}"

    def summary(self) -> str:
        """One line for listings and errors."""
        timing = ", ".join(f"{k} {v:g}" for k, v in (("TR", self.repetition_ms), ("TE", self.echo_ms),
                                                      ("TI", self.inversion_ms)) if v is not None)  # fmt: skip
        agent = f", contrast {self.contrast_agent}" if self.has_contrast_agent else ""
        return (f"series {self.number} '{self.description}' ({len(self.files)} files, {self.frames} images"
                f"{', ' + timing if timing else ''}{agent})")  # fmt: skip

    @property
    def has_contrast_agent(self) -> bool:
        return self.contrast_agent.strip().lower() not in NO_AGENT


def _number(value) -> float | None:
    """A header value as a finite number, or None (absent, empty, or not a number)."""
    try:
        number = float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and np.isfinite(number) else None


DICOMDIR = "1.2.840.10008.1.3.10"
"""The media storage class of a DICOMDIR (an index of the files, not an image), in its file meta information."""
SLICE_TOLERANCE_MM = 0.01
"""Positions closer than this are one position; spacings differing by more (and by 2 %) are uneven."""
MAX_TILT_DEGREES = 0.5
"""A stack whose slices drift sideways by more than this angle is gantry-tilted."""


def is_part10(path: Path) -> bool:
    """Whether a file says it is DICOM ('DICM' after the 128-byte preamble): then it must read whole."""
    with open(path, "rb") as stream:
        return stream.read(132)[128:] == b"DICM"


def scan_study(folder: Path) -> list[Series]:
    """Every DICOM series under ``folder`` (files that are not DICOM are skipped), one patient and one study.

    Raises:
        InputError: no DICOM file; a DICOM file that cannot be read (naming it); several patients or studies.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder", "give the folder of one DICOM study")
    groups: dict[str, list[tuple[Path, object]]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        part10 = is_part10(path)
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            meta = getattr(header, "file_meta", None) or {}
            complete = "SeriesInstanceUID" in header or meta.get("MediaStorageSOPClassUID") == DICOMDIR
        except InvalidDicomError:
            if not part10:
                continue  # not DICOM (a README, a DICOMDIR's companion files)
            complete = False
        except Exception:  # pydicom raises many types for a damaged file
            complete = False
        if part10 and not complete:
            raise InputError(path, "a DICOM file that cannot be read: truncated or damaged",
                             "re-export the series from the scanner or PACS, or remove the file")  # fmt: skip
        if "SeriesInstanceUID" not in header:
            continue  # a DICOMDIR
        groups.setdefault(str(header.SeriesInstanceUID), []).append((path, header))
    if not groups:
        raise InputError(folder, "holds no DICOM image files", "give the folder a DICOM export or CD unpacks to")
    series = [_series(uid, members) for uid, members in groups.items()]
    for field, what in (("patient", "patient IDs"), ("patient_name", "patient names"), ("birth_date", "birth dates")):
        named = sorted({getattr(s, field) for s in series} - {""})
        if len(named) > 1:
            numbers = {value: ", ".join(str(s.number) for s in series if getattr(s, field) == value) for value in named}
            listing = "; ".join(f"{value} (series {numbers[value]})" for value in named)
            raise InputError(folder, f"holds {len(named)} patients, by their {what}: {listing}",
                             "give the folder of one patient's study")  # fmt: skip
    studies = sorted({(s.study, s.study_description) for s in series})
    if len(studies) > 1:
        listed = "; ".join(f"{uid} '{description}'" for uid, description in studies)
        raise InputError(folder, f"holds {len(studies)} studies of one patient: {listed}",
                         "give the folder of one study (one visit)")  # fmt: skip
    return sorted(series, key=lambda s: (s.number is None, s.number or 0, s.uid))


ENHANCED_TIMING = {
    "RepetitionTime": ("MRTimingAndRelatedParametersSequence", "RepetitionTime"),
    "EchoTime": ("MREchoSequence", "EffectiveEchoTime"),
    "InversionTime": ("MRModifierSequence", "InversionTimes"),
}
"""Where an enhanced (multi-frame) MR header keeps each timing: (functional group, attribute)."""


def _timing(header, keyword: str) -> float | None:
    """A timing (ms) of a classic header, or of an enhanced one's shared (else first frame's) functional groups."""
    value = _number(header.get(keyword))
    if value is not None:
        return value
    group, name = ENHANCED_TIMING[keyword]
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if groups in header and group in header[groups][0]:
            found = header[groups][0][group][0].get(name)
            if found is not None and not isinstance(found, (str, int, float)):
                found = found[0] if len(found) else None  # a multi-valued attribute: the first
            return _number(found)
    return None


def frame_geometry(dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]]:
    """Per frame of a DICOM image: (ImagePositionPatient, row direction, column direction, PixelSpacing), LPS mm."""

    def plane(position, orientation, spacing):
        orientation = np.asarray(orientation, float)
        return np.asarray(position, float), orientation[:3], orientation[3:], (float(spacing[0]), float(spacing[1]))

    if "PerFrameFunctionalGroupsSequence" not in dataset:
        return [plane(dataset.ImagePositionPatient, dataset.ImageOrientationPatient, dataset.PixelSpacing)]
    shared = dataset.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in dataset else None
    frames = []
    for group in dataset.PerFrameFunctionalGroupsSequence:

        def item(name, group=group):
            return getattr(group, name, None) or getattr(shared, name, None)

        frames.append(plane(item("PlanePositionSequence")[0].ImagePositionPatient,
                            item("PlaneOrientationSequence")[0].ImageOrientationPatient,
                            item("PixelMeasuresSequence")[0].PixelSpacing))  # fmt: skip
    return frames


def geometry_problem(headers: list) -> str | None:
    """Why a series' images do not make one volume whose geometry its headers give (see the module doc), or None."""
    try:
        planes = [plane for header in headers for plane in frame_geometry(header)]
        positions = np.array([p[0] for p in planes], float).reshape(-1, 3)
        orientations = np.array([np.r_[p[1], p[2]] for p in planes], float).reshape(-1, 6)
        spacings = np.array([p[3] for p in planes], float).reshape(-1, 2)
        claimed = sum(int(h.Rows) * int(h.Columns) * int(h.get("NumberOfFrames", 1) or 1) for h in headers)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return "an image lacks its position, orientation, pixel spacing or size (ImagePositionPatient, " \
               "ImageOrientationPatient, PixelSpacing, Rows, Columns): its geometry would be a guess"  # fmt: skip
    if claimed > MAX_VOXELS:
        return f"its headers claim {claimed:,} voxels, more than glioseg reads ({MAX_VOXELS:,})"
    if not (np.isfinite(positions).all() and np.isfinite(orientations).all() and np.isfinite(spacings).all()):
        return "an image's position, orientation or pixel spacing is not a number"
    low, high = SPACING_RANGE_MM
    if ((spacings < low) | (spacings > high)).any():
        odd = spacings[((spacings < low) | (spacings > high)).any(1)][0].tolist()
        return f"PixelSpacing {odd} mm: not an MRI pixel's (glioseg takes {low} to {high} mm)"
    if np.abs(orientations - orientations[0]).max() > 1e-3:
        turns = len(np.unique(orientations.round(3), axis=0))
        return f"its images lie in {turns} orientations (the stack turns part way): not one volume"
    normal = np.cross(orientations[0][:3], orientations[0][3:])
    if not 0.99 < np.linalg.norm(normal) < 1.01:
        return "its ImageOrientationPatient is not two perpendicular unit vectors"
    along = positions @ normal
    distinct = np.unique(np.round(along / SLICE_TOLERANCE_MM)) * SLICE_TOLERANCE_MM
    if len(planes) > 1 and len(distinct) == 1:
        return f"all {len(planes)} images lie at one position: no volume"
    if len(distinct) > 1:
        steps = np.diff(distinct)
        if steps.min() < low or steps.max() > high:
            return f"its slices are {steps.min():.3g} to {steps.max():.3g} mm apart: not an MRI slice spacing " \
                   f"(glioseg takes {low} to {high} mm)"  # fmt: skip
        if steps.max() - steps.min() > max(0.02 * steps.min(), SLICE_TOLERANCE_MM):
            return f"its slices are {steps.min():.3g} to {steps.max():.3g} mm apart: a slice is missing or the " \
                   "stack is uneven"  # fmt: skip
        sideways = positions - np.outer(along, normal)  # each image's position within its own plane
        first, last = np.argmin(along), np.argmax(along)
        drift = float(np.linalg.norm(sideways[last] - sideways[first]))
        tilt = float(np.degrees(np.arctan2(drift, along[last] - along[first])))
        if tilt > MAX_TILT_DEGREES:
            return f"its slices are stacked at {tilt:.0f} degrees to their own normal (a gantry tilt, which glioseg " \
                   "does not correct)"  # fmt: skip
    return None


def _series(uid: str, members: list[tuple[Path, object]]) -> Series:
    first = members[0][1]
    get = first.get  # type: ignore[attr-defined]
    frames = sum(int(_number(h.get("NumberOfFrames", 1)) or 1) for _, h in members)  # type: ignore[attr-defined]
    number = get("SeriesNumber")
    return Series(
        uid=uid, number=int(_number(number)) if _number(number) is not None else None,
        description=str(get("SeriesDescription", "") or ""), protocol=str(get("ProtocolName", "") or ""),
        modality=str(get("Modality", "") or ""), patient=str(get("PatientID", "") or ""),
        study=str(get("StudyInstanceUID", "") or ""), study_description=str(get("StudyDescription", "") or ""),
        files=tuple(path for path, _ in members), frames=frames,
        image_type=tuple(str(v) for v in (get("ImageType") or ())),
        repetition_ms=_timing(first, "RepetitionTime"), echo_ms=_timing(first, "EchoTime"),
        inversion_ms=_timing(first, "InversionTime"), contrast_agent=str(get("ContrastBolusAgent", "") or ""),
        patient_name=str(get("PatientName", "") or "").rstrip("^ ").upper(),  # DOE^JOHN^^ is DOE^JOHN
        birth_date=str(get("PatientBirthDate", "") or ""),
        frame_of_reference=str(get("FrameOfReferenceUID", "") or ""),
        geometry_problem=geometry_problem([header for _, header in members]),
    )  # fmt: skip


def role_of(series: Series) -> tuple[str | None, str]:
    """``(role, why)``: the sequence a series is (``FLAIR``, ``T1``, ``T1Gd``, ``T2``) or None, and the reason."""
    if series.modality != "MR":
        return None, f"not MR ({series.modality or 'no modality'})"
    text = f"{series.names} {' '.join(series.image_type)}"
    if "LOCALIZER" in series.image_type:
        return None, "localiser"
    for reason, pattern in LEFT_OUT:
        if pattern.search(text):
            return None, reason
    if "DERIVED" in series.image_type:
        return None, "derived images (a reformat or a map)"
    tr, te, ti = series.repetition_ms, series.echo_ms, series.inversion_ms
    if FLAIR_NAMES.search(series.names) or (ti is not None and ti >= 1500 and tr is not None and tr >= 4000):
        return "FLAIR", "FLAIR by name" if FLAIR_NAMES.search(series.names) else f"inversion time {ti:g} ms"
    if T2_NAMES.search(series.names):
        return "T2", "T2 by name"
    if T1_NAMES.search(series.names) or (tr is not None and te is not None and tr < 1000 and te < 30):
        why = "T1 by name" if T1_NAMES.search(series.names) else f"T1 timing (TR {tr:g}, TE {te:g} ms)"
        if series.has_contrast_agent:
            return "T1Gd", f"{why}, contrast agent {series.contrast_agent}"
        if CONTRAST_NAMES.search(series.names):
            return "T1Gd", f"{why}, post-contrast by name"
        return "T1", why
    if te is not None and tr is not None and te >= 70 and tr >= 2000:
        return "T2", f"T2 timing (TR {tr:g}, TE {te:g} ms)"
    return None, "not recognised as FLAIR, T1, T1Gd or T2"


def parse_choices(choices: list[str]) -> dict[str, str]:
    """``["T1Gd=7", ...]`` -> ``{"T1Gd": "7"}``; refuses an unknown sequence name."""
    out = {}
    for choice in choices:
        role, _, value = choice.partition("=")
        if role not in MODALITIES or not value:
            raise InputError(Path(choice), f"not a choice of series: '{choice}'",
                             f"write SEQUENCE=SERIES with SEQUENCE one of {', '.join(MODALITIES)}")  # fmt: skip
        out[role] = value
    return out


def choose_series(folder: Path, series: list[Series], choices: dict[str, str],
                  complete: bool = True) -> dict[str, Series]:  # fmt: skip
    """The series of each of the four sequences: ``choices`` (series number or UID) first, then the tags. Unless
    ``complete``, a study may lack one sequence other than the T1Gd (the grid everything is prepared on): it is then
    left out of what this returns.

    Raises:
        InputError: a sequence with no series or several, listing the series and how to choose.
    """
    roles = {s.uid: role_of(s) for s in series}
    found = {role for role, _ in roles.values()} | set(choices)
    absent = [role for role in MODALITIES if role not in found]
    may_lack = not complete and len(absent) <= MAX_ABSENT_SEQUENCES and REFERENCE not in absent
    chosen: dict[str, Series] = {}
    problems, fixes = [], []
    for role in MODALITIES:
        if role in absent and may_lack:
            continue
        if role in choices:
            wanted = choices[role]
            matches = [s for s in series if s.uid == wanted or str(s.number) == wanted]
            if len(matches) == 1:
                chosen[role] = matches[0]
            else:
                problems.append(f"--series {role}={wanted} names {len(matches)} series")
                fixes.append(f"give --series {role} a series number or UID from the list")
            continue
        candidates = [s for s in series if roles[s.uid][0] == role]
        if len(candidates) == 1:
            chosen[role] = candidates[0]
        elif not candidates:
            problems.append(f"no {role} series found")
            fixes.append(f"add the {role} series to the folder, or name one with --series {role}=NUMBER")
        else:
            problems.append(
                f"{len(candidates)} series could be the {role} ({', '.join(str(c.number) for c in candidates)})"
            )
            fixes.append(f"choose one with --series {role}=NUMBER")
    if problems:
        listing = "; ".join(f"{s.summary()}: {roles[s.uid][0] or roles[s.uid][1]}" for s in series)
        raise InputError(folder, f"{'; '.join(problems)}. The study has: {listing}", "; ".join(fixes))
    check_chosen(folder, chosen, choices)
    return chosen


def check_chosen(folder: Path, chosen: dict[str, Series], choices: dict[str, str]) -> None:
    """Refuse a chosen series whose geometry would be a guess, and chosen series of several frames of reference
    (other sessions, or another patient) unless the user chose every one of them."""
    for role, series in chosen.items():
        if series.geometry_problem:
            raise InputError(Path(series.files[0]).parent, f"the {role}, {series.summary()}: {series.geometry_problem}",
                             f"export the series again from the scanner or PACS, or choose another with --series "
                             f"{role}=NUMBER")  # fmt: skip
    frames = {series.frame_of_reference for series in chosen.values()} - {""}
    if len(frames) > 1 and not set(chosen) <= set(choices):
        listing = "; ".join(f"{role} series {s.number}: {s.frame_of_reference}" for role, s in chosen.items())
        raise InputError(folder, f"the chosen series do not share one frame of reference ({listing}): other sessions, "
                         "or another patient", "check they are one patient's, then name all four with --series "
                         "SEQUENCE=NUMBER (glioseg registers them onto the T1Gd)")  # fmt: skip
