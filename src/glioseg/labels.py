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


_CLASS_KEYWORDS = (  # order matters: "non-enhancing" must match core before "enhancing" matches ET
    (RESECTION_CAVITY, ("resection", "cavity", "rc")),
    (CORE, ("non", "necrotic", "necrosis", "ncr", "net", "netc", "core")),
    (ENHANCING, ("enhancing", "enhancement", "et")),
    (EDEMA, ("edema", "oedema", "ed", "snfh")),
    (BACKGROUND, ("background", "bg")),
)
_REGION_KEYWORDS = (("WT", ("whole", "wt")), ("TC", ("core", "tc")), ("ET", ("enhancing", "et")))


def _tokens(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def _match(name: str, table: Sequence[tuple[object, Sequence[str]]]) -> object:
    tokens = _tokens(name)
    for key, words in table:
        if tokens & set(words) or any(w in name.lower() for w in words if len(w) > 3):
            return key
    raise LabelValueError(f"label name {name!r} in dataset.json names no known tumour compartment")


def nnunet_convention(labels: Mapping[str, int | Sequence[int]]) -> LabelConvention:
    """The convention an nnU-Net ``dataset.json`` declares in its ``labels`` entry.

    Two forms exist. Class-based: ``{"background": 0, "edema": 1, "non-enhancing": 2, "enhancing": 3}``.
    Region-based (nnU-Net's BraTS datasets): ``{"background": 0, "whole tumor": [1, 2, 3],
    "tumor core": [2, 3], "enhancing tumor": [3]}``; a value's class follows from the regions holding it
    (WT only -> edema, TC but not ET -> core, ET -> enhancing).
    """
    mapping: dict[int, int] = {0: BACKGROUND}
    if any(isinstance(v, (list, tuple)) for v in labels.values()):
        members: dict[str, set[int]] = {}
        for name, values in labels.items():
            values = [values] if isinstance(values, int) else list(values)
            if values == [0]:
                continue
            members[str(_match(name, _REGION_KEYWORDS))] = set(values)
        for value in set().union(*members.values()):
            if value in members.get("ET", set()):
                mapping[value] = ENHANCING
            elif value in members.get("TC", set()):
                mapping[value] = CORE
            else:
                mapping[value] = EDEMA
    else:
        for name, value in labels.items():
            mapping[int(value)] = int(_match(name, _CLASS_KEYWORDS))  # type: ignore[arg-type]
    return LabelConvention("nnunet", mapping)


def regions_from_label(label: np.ndarray) -> np.ndarray:
    """Nested BraTS regions of an internal label map.

    Args:
        label: ``(X, Y, Z)`` internal classes.

    Returns:
        ``(3, X, Y, Z)`` bool, channels WT, TC, ET.
    """
    label = np.asarray(label)
    return np.stack([np.isin(label, classes) for classes in REGION_CLASSES.values()])


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
