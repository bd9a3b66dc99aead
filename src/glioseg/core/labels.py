"""Label conventions and the one internal class map every other module uses.

Datasets in this field number the same three tumour compartments differently (see docs/architecture.md), and a
wrong mapping silently swaps edema and core. glioseg converts every convention to one internal map
when it reads a label, and back to the user's convention only when it writes one.

Internal classes (the MSD Task01 numbering, plus the BraTS 2024 resection cavity):

    0 background, 1 edema, 2 non-enhancing / necrotic core, 3 enhancing tumour, 4 resection cavity

Regions, the way BraTS scores them: WT = edema + core + enhancing, TC = core + enhancing, ET = enhancing.
The resection cavity belongs to no region.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BACKGROUND, EDEMA, CORE, ENHANCING, RESECTION_CAVITY = 0, 1, 2, 3, 4
CLASS_NAMES = {EDEMA: "edema", CORE: "core", ENHANCING: "enhancing"}
"""The three tumour classes reported class-wise (the original project's edema / non-enhancing / enhancing)."""
TUMOUR_CLASSES = tuple(CLASS_NAMES)
"""Edema, core, enhancing: also the channels of a tumour-fractions array (geometry.tumour_fractions)."""

REGION_CLASSES = {"WT": (EDEMA, CORE, ENHANCING), "TC": (CORE, ENHANCING), "ET": (ENHANCING,)}
REGIONS = tuple(REGION_CLASSES)
STRUCTURE_NAMES = (*REGIONS, *CLASS_NAMES.values())
"""Everything measured and reported: WT, TC, ET, edema, core, enhancing."""


class LabelValueError(ValueError):
    """A label map holds values its convention does not define (never guessed: docs/architecture.md)."""


SHOWN_VALUES = 8
"""An error lists at most this many unexpected label values."""


@dataclass(frozen=True)
class LabelConvention:
    """How one dataset family numbers the compartments.

    Attributes:
        name: short name used on the command line (``msd``, ``brats2021``, ``brats2023``, ``nnunet``).
        file_to_internal: every value allowed in a file, mapped to its internal class (0 maps to 0).
    """

    name: str
    file_to_internal: Mapping[int, int]

    def to_internal(self, values: np.ndarray) -> np.ndarray:
        """Convert a label array in this convention to internal classes, ``uint8`` of the same shape.

        Raises:
            LabelValueError: listing every value found that the convention does not define.
        """
        found = present_values(values)
        unknown = sorted(set(found) - set(self.file_to_internal))
        if unknown:
            allowed = sorted(self.file_to_internal)
            if len(unknown) > SHOWN_VALUES:  # hundreds of values: an image, most likely, not a label map
                first = ", ".join(map(str, unknown[:SHOWN_VALUES]))
                raise LabelValueError(f"{len(unknown)} label values ({first}, ...) are not in the {self.name} "
                                      f"convention (allowed {allowed}): an image rather than a label map?")  # fmt: skip
            raise LabelValueError(
                f"label values {unknown} are not in the {self.name} convention (allowed {allowed}; found {found})"
            )
        lookup = np.zeros(max(found + [0]) + 1, dtype=np.uint8)
        for file_value, internal in self.file_to_internal.items():
            if file_value < lookup.size:
                lookup[file_value] = internal
        return lookup[np.asarray(values, dtype=np.int64)]

    def from_internal(self, label: np.ndarray) -> np.ndarray:
        """Convert internal classes to this convention's values, ``uint8`` of the same shape."""
        internal_to_file: dict[int, int] = {}
        for file_value, internal in sorted(self.file_to_internal.items()):
            internal_to_file.setdefault(internal, file_value)
        found = present_values(label)
        missing = sorted(set(found) - set(internal_to_file))
        if missing:
            raise LabelValueError(
                f"internal classes {missing} have no value in the {self.name} convention "
                f"(it defines {sorted(internal_to_file)})"
            )
        lookup = np.zeros(max(found + [0]) + 1, dtype=np.uint8)
        for internal, file_value in internal_to_file.items():
            if internal < lookup.size:
                lookup[internal] = file_value
        return lookup[np.asarray(label, dtype=np.int64)]


def convention_record(convention: LabelConvention) -> dict:
    """A convention as JSON (``cases.json``): its name and its whole mapping, so that a convention read from a
    dataset.json (nnU-Net, or a re-numbered MSD copy) is rebuilt without that file."""
    return {"name": convention.name, "file_to_internal": {str(k): v for k, v in convention.file_to_internal.items()}}


def convention_from_record(record: dict) -> LabelConvention:
    return LabelConvention(record["name"], {int(k): int(v) for k, v in record["file_to_internal"].items()})


MSD = LabelConvention("msd", {0: BACKGROUND, 1: EDEMA, 2: CORE, 3: ENHANCING})
BRATS2021 = LabelConvention("brats2021", {0: BACKGROUND, 1: CORE, 2: EDEMA, 4: ENHANCING})
BRATS2023 = LabelConvention("brats2023", {0: BACKGROUND, 1: CORE, 2: EDEMA, 3: ENHANCING, 4: RESECTION_CAVITY})
CONVENTIONS = {c.name: c for c in (MSD, BRATS2021, BRATS2023)}


def get_convention(name: str) -> LabelConvention:
    """The named convention; ``nnunet`` needs a dataset.json, see :func:`nnunet_convention`."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise LabelValueError(f"unknown label convention {name!r}; choose one of {sorted(CONVENTIONS)}") from None


def present_values(values: np.ndarray) -> list[int]:
    """The distinct integer values in a label array, sorted (fast: bincount, not sort).

    Raises:
        LabelValueError: for negative or non-integer values.
    """
    values = np.asarray(values)
    if values.size == 0:
        return []
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise LabelValueError("label map holds non-integer values (NaN or fractions)")
        values = values.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if low < 0:
        raise LabelValueError(f"label map holds negative values (min {low})")
    if high > 65535:
        raise LabelValueError(f"label map holds values up to {high}; a label map has a few small integers")
    if high < 16:  # the usual label map: a few comparisons beat converting 9 M voxels for bincount
        return [v for v in range(low, high + 1) if v in (low, high) or np.any(values == v)]
    counts = np.bincount(values.ravel().astype(np.int64, copy=False), minlength=high + 1)
    return [int(v) for v in np.flatnonzero(counts)]


def _normalised(name: str) -> str:
    """``"Non-Enhancing Tumor Core (NCR/NET)"`` -> ``"non enhancing tumor core ncr net"``."""
    return " ".join(re.split(r"[^a-z0-9]+", name.lower())).strip()


_CLASS_PHRASES = {  # whole names, normalised: matched first, so a long name is never read by one of its words
    BACKGROUND: ("background", "bg", "normal", "healthy"),
    EDEMA: ("edema", "oedema", "peritumoral edema", "peritumoural oedema", "peritumoral oedema", "whole tumor edema",
            "surrounding non enhancing flair hyperintensity", "non enhancing flair hyperintensity",
            "flair hyperintensity", "snfh", "ed"),
    CORE: ("core", "necrosis", "necrotic", "necrotic core", "necrotic tumor core", "necrotic tumour core",
           "non enhancing tumor", "non enhancing tumour", "non enhancing tumor core", "non enhancing tumour core",
           "non enhancing core", "necrotic and non enhancing tumor core", "necrotic non enhancing tumor core",
           "necrotic and non enhancing tumour core", "ncr net", "ncr", "net", "netc"),
    ENHANCING: ("enhancing", "enhancing tumor", "enhancing tumour", "enhancing tumor core", "gd enhancing tumor",
                "gd enhancing tumour", "enhancing core", "et"),
    RESECTION_CAVITY: ("resection cavity", "cavity", "resection", "rc"),
}  # fmt: skip
_CLASS_ACRONYMS = {"ncr": CORE, "net": CORE, "netc": CORE, "ed": EDEMA, "snfh": EDEMA, "et": ENHANCING,
                   "rc": RESECTION_CAVITY, "bg": BACKGROUND}  # fmt: skip
_REGION_PHRASES = {
    "WT": ("whole tumor", "whole tumour", "wt", "whole"),
    "TC": ("tumor core", "tumour core", "tc", "core"),
    "ET": ("enhancing tumor", "enhancing tumour", "et", "enhancing"),
}
_REGION_ACRONYMS = {"wt": "WT", "tc": "TC", "et": "ET"}


def _lookup(name: str, phrases: Mapping, acronyms: Mapping, what: str) -> object:
    """The class (or region) a dataset.json label name means: its whole name among the known phrases, else the one
    known acronym among its words ("Peritumoral Edema (ED)"). Anything else is refused, never guessed."""
    text = _normalised(name)
    for key, known in phrases.items():
        if text in known:
            return key
    found = {acronyms[word] for word in text.split() if word in acronyms}
    if len(found) == 1:
        return found.pop()
    raise LabelValueError(
        f"label name {name!r} in dataset.json is not one glioseg knows as {what}"
        + (f" (it names several: {sorted(map(str, found))})" if found else "")
    )


def nnunet_convention(labels: Mapping[str, int | Sequence[int]]) -> LabelConvention:
    """The convention an nnU-Net ``dataset.json`` declares in its ``labels`` entry.

    Two forms exist. Class-based: ``{"background": 0, "edema": 1, "non-enhancing": 2, "enhancing": 3}``.
    Region-based (nnU-Net's BraTS datasets): ``{"background": 0, "whole tumor": [1, 2, 3],
    "tumor core": [2, 3], "enhancing tumor": [3]}``; a value's class follows from the regions holding it
    (WT only -> edema, TC but not ET -> core, ET -> enhancing). Names are matched against explicit phrases and
    acronyms (``_CLASS_PHRASES``); a name that matches none, two values of one class, or a tumour class without a
    value are refused, since any of them would silently mislabel a compartment.
    """
    if any(isinstance(v, (list, tuple)) for v in labels.values()):
        return _region_based(labels)
    mapping: dict[int, int] = {}
    named: dict[int, str] = {}  # internal class -> the dataset.json name that gave it
    for name, value in labels.items():
        internal = int(_lookup(name, _CLASS_PHRASES, _CLASS_ACRONYMS, "a tumour compartment"))  # type: ignore[arg-type]
        if internal in named:
            raise LabelValueError(f"labels {named[internal]!r} and {name!r} in dataset.json both mean "
                                  f"{_class_name(internal)}")  # fmt: skip
        named[internal], mapping[int(value)] = name, internal  # type: ignore[arg-type]
    return _checked("nnunet", mapping)


def msd_convention(labels: Mapping[str, str]) -> LabelConvention:
    """The convention an MSD ``dataset.json`` declares (``{"0": "background", "1": "edema", ...}``, value -> name):
    MSD Task01's own numbering (then :data:`MSD` itself), or a re-numbered copy's, read with the same phrases as
    nnU-Net's names."""
    declared = nnunet_convention({name: int(value) for value, name in labels.items()})
    if dict(declared.file_to_internal) == dict(MSD.file_to_internal):
        return MSD
    return LabelConvention("dataset.json", declared.file_to_internal)


def _region_based(labels: Mapping[str, int | Sequence[int]]) -> LabelConvention:
    members: dict[str, set[int]] = {}
    for name, values in labels.items():
        values = [values] if isinstance(values, int) else list(values)
        if values == [0]:
            continue
        region = str(_lookup(name, _REGION_PHRASES, _REGION_ACRONYMS, "a tumour region (whole tumor, core, enhancing)"))
        if region in members:
            raise LabelValueError(f"two labels in dataset.json name the region {region}")
        members[region] = set(values)
    missing = sorted(set(REGIONS) - set(members))
    if missing:
        raise LabelValueError(f"dataset.json declares no value for the region(s) {missing}")
    mapping = {0: BACKGROUND}
    for value in set().union(*members.values()):
        mapping[value] = ENHANCING if value in members["ET"] else CORE if value in members["TC"] else EDEMA
    return _checked("nnunet", mapping)


def _class_name(internal: int) -> str:
    return {BACKGROUND: "background", RESECTION_CAVITY: "resection cavity", **CLASS_NAMES}[internal]


def _checked(name: str, mapping: dict[int, int]) -> LabelConvention:
    """Refuse a mapping that leaves a tumour class without a value or background on a value other than 0."""
    missing = [CLASS_NAMES[c] for c in TUMOUR_CLASSES if c not in mapping.values()]
    if missing:
        raise LabelValueError(f"dataset.json declares no value for {', '.join(missing)}")
    if mapping.get(0, BACKGROUND) != BACKGROUND or any(v == BACKGROUND for k, v in mapping.items() if k != 0):
        raise LabelValueError("dataset.json must give background the value 0, and only 0")
    return LabelConvention(name, {0: BACKGROUND, **mapping})


def describe(convention: LabelConvention) -> str:
    """``"brats2021: 1 core, 2 edema, 4 enhancing"``: how a convention reads file values (``glioseg check``)."""
    pairs = sorted(convention.file_to_internal.items())
    return f"{convention.name}: " + ", ".join(f"{value} {_class_name(c)}" for value, c in pairs if value != 0)


def class_mask(label: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Where ``label`` holds any of ``classes`` (a few comparisons: several times faster than ``np.isin`` here)."""
    mask = label == classes[0]
    for value in classes[1:]:
        mask |= label == value
    return mask


def regions_from_label(label: np.ndarray) -> np.ndarray:
    """Nested BraTS regions of an internal label map.

    Args:
        label: ``(X, Y, Z)`` internal classes.

    Returns:
        ``(3, X, Y, Z)`` bool, channels WT, TC, ET.
    """
    label = np.asarray(label)
    return np.stack([class_mask(label, classes) for classes in REGION_CLASSES.values()])


def label_from_regions(regions: np.ndarray) -> np.ndarray:
    """Internal classes from WT/TC/ET masks: ET wins over TC, TC over WT (so regions stay nested).

    Args:
        regions: ``(3, X, Y, Z)`` bool, channels WT, TC, ET.

    Returns:
        ``(X, Y, Z)`` uint8 internal classes.
    """
    whole, core, enhancing = (np.asarray(r, dtype=bool) for r in regions)
    label = np.zeros(whole.shape, dtype=np.uint8)
    label[whole] = EDEMA
    label[core] = CORE
    label[enhancing] = ENHANCING
    return label
