"""``glioseg predict`` with a PACS: inputs named by DICOMweb study URLs are fetched into the prediction folder
(``<out>/dicomweb/<StudyInstanceUID>/``, then segmented as any local DICOM study), and with ``--store-to`` the DICOM
SEG and SR of every DICOM study are stored back (STOW-RS) into its own study."""

from __future__ import annotations

from pathlib import Path

from glioseg.core.errors import InputError
from glioseg.inference.inputs import holds_dicom
from glioseg.raw.dicomweb import StudyURL, fetch_study

FETCHED_FOLDER = "dicomweb"


def local_inputs(inputs: list[str], out: Path, user: str | None = None) -> list[Path]:
    """Each input as a local path: a DICOMweb study URL fetched into ``out`` (once: a study fetched before is
    reused), anything else as the path it names."""
    paths = []
    for text in inputs:
        url = StudyURL.parse(text)
        if url is None and "://" in text:
            raise InputError(text, "not a DICOMweb study URL",
                             "give one study: <DICOMweb root>/studies/<StudyInstanceUID>, e.g. "
                             "http://pacs:8042/dicom-web/studies/1.2.840.1")  # fmt: skip
        paths.append(fetch_study(url, out / FETCHED_FOLDER / url.study, user) if url else Path(text))
    return paths


DICOM_RESULTS = ("_seg.dcm", "_sr.dcm")
"""What a DICOM study's prediction writes for its PACS: the SEG (absent without tumour) and the SR."""


def results_to_store(inputs: list[Path], out: Path) -> list[Path]:
    """The DICOM SEG and SR written for each DICOM study among ``inputs``."""
    found = [out / f"{path.name}{ending}" for path in inputs if path.is_dir() and holds_dicom(path)
             for ending in DICOM_RESULTS]  # fmt: skip
    return [path for path in found if path.exists()]
