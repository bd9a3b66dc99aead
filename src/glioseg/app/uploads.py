"""Turning files a browser uploaded into one case folder (or one DICOM study), safely: names cannot leave the job
folder, types are judged by content (not by name), sizes and counts are bounded, and zip archives are unpacked
entry by entry with their real (not declared) sizes counted, so a zip bomb or a zip-slip entry is refused.
"""

from __future__ import annotations

import re
import shutil
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from glioseg.core.config import UploadLimits
from glioseg.core.errors import InputError
from glioseg.datasets.layouts import strip_nifti

CHUNK = 1 << 20


def safe_name(name: str) -> str:
    """The base name of an uploaded file with only ``[A-Za-z0-9._-]`` kept; never a path, never hidden."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    if not cleaned or strip_nifti(cleaned) is None and not cleaned.lower().endswith(".zip"):
        raise InputError(name, "not a .nii, .nii.gz or .zip file name", "upload NIfTI images or a zip of a case folder")
    return cleaned


def sniff(head: bytes) -> str:
    """``nifti``, ``nifti-gz``, ``zip`` or ``unknown`` from a file's first bytes (at least 352)."""
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "nifti-gz" if _gunzip_head_is_nifti(head) else "unknown"
    return "nifti" if _is_nifti_header(head) else "unknown"


def _gunzip_head_is_nifti(head: bytes) -> bool:
    try:
        inflated = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 352)
    except zlib.error:
        return False
    return _is_nifti_header(inflated)


def _is_nifti_header(header: bytes) -> bool:
    """NIfTI-1 (348-byte header, magic ``n+1``/``ni1``) or NIfTI-2 (540 bytes, ``n+2``), either byte order."""
    if len(header) >= 348 and struct.unpack("<i", header[:4])[0] in (348, 0x5C010000):
        return header[344:347] in (b"n+1", b"ni1")
    if len(header) >= 8 and struct.unpack("<i", header[:4])[0] in (540, 0x1C020000):
        return header[4:7] in (b"n+2", b"ni2")
    return False


def store_upload(stream: BinaryIO, name: str, folder: Path, budget: list[int]) -> Path:
    """Copy one uploaded file into ``folder`` under its safe name, checking its content matches the name.

    Args:
        budget: ``[bytes left]`` shared by all files of the upload; reduced here, refused at zero.
    """
    target = folder / safe_name(name)
    if target.exists():
        raise InputError(name, "two uploaded files have the same name", "upload each file once")
    head = stream.read(4096)
    kind = sniff(head)
    expected = "zip" if target.name.lower().endswith(".zip") else "nifti-gz" if target.name.endswith(".gz") else "nifti"
    if kind != expected:
        raise InputError(name, f"the content is not {expected.replace('-gz', ' (gzip)')} ({kind})",
                         "upload NIfTI images (.nii or .nii.gz) or a .zip of a case folder")  # fmt: skip
    _copy_bounded(head, stream, target, budget, name)
    return target


def _copy_bounded(head: bytes, stream: BinaryIO, target: Path, budget: list[int], name: str) -> None:
    with open(target, "wb") as out:
        chunk = head
        while chunk:
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise InputError(name, "the upload is larger than this server accepts",
                                 "upload one case at a time, gzip-compressed")  # fmt: skip
            out.write(chunk)
            chunk = stream.read(CHUNK)


def unpack_zip(archive: Path, folder: Path, limits: UploadLimits) -> list[Path]:
    """Extract the NIfTI files of a zip flat into ``folder`` (folders inside are ignored, ``__MACOSX`` skipped), or,
    for a zipped DICOM study, its DICOM files into ``folder/dicom`` (numbered: glioseg reads series from the tags,
    not the names; files that are not DICOM, such as a CD's viewer program, are left out).

    Refuses: entries naming absolute paths or ``..`` (zip-slip), symbolic links, more than
    ``limits.max_zip_entries`` NIfTI files or ``limits.max_dicom_files`` entries, NIfTI and DICOM together, and more
    than ``limits.max_unpacked_bytes`` once inflated (counted while inflating, so a bomb lying about its sizes is
    stopped too).
    """
    try:
        zipped = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise InputError(archive.name, "not a readable zip archive", "zip the case folder again") from None
    extracted: list[Path] = []
    dicom, dicom_files = folder / "dicom", 0
    budget = [limits.max_unpacked_bytes]
    with zipped:
        entries = zipped.infolist()
        if len(entries) > limits.max_dicom_files:
            raise InputError(archive.name, f"{len(entries)} entries in the zip", "zip one case or one study only")
        for entry in entries:
            path = PurePosixPath(entry.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", entry.filename):
                raise InputError(entry.filename, "a zip entry points outside its folder",
                                 "zip the case folder with relative names")  # fmt: skip
            if (entry.external_attr >> 16) & 0o170000 == 0o120000:
                raise InputError(entry.filename, "a zip entry is a symbolic link", "zip the files themselves")
            if entry.is_dir() or "__MACOSX" in path.parts or path.name.startswith("."):
                continue
            if entry.flag_bits & 0x1:
                raise InputError(entry.filename, "a zip entry is encrypted", "zip the case without a password")
            try:
                with zipped.open(entry) as source:
                    if strip_nifti(path.name) is not None:
                        extracted.append(store_upload(source, path.name, folder, budget))
                        continue
                    head = source.read(132)
                    if head[128:132] != b"DICM":
                        continue  # neither NIfTI nor DICOM: a README, a DICOMDIR's companions, a viewer program
                    dicom.mkdir(exist_ok=True)
                    _copy_bounded(head, source, dicom / f"{dicom_files:05d}.dcm", budget, entry.filename)
                    dicom_files += 1
            except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error, RuntimeError) as error:
                raise InputError(entry.filename, f"cannot unpack this zip entry ({error})",
                                 "zip the case folder again (plain deflate, no password)") from None  # fmt: skip
    archive.unlink()
    if len(extracted) > limits.max_zip_entries:
        raise InputError(archive.name, f"{len(extracted)} NIfTI files in the zip", "zip one case folder only")
    if extracted and dicom.exists():
        raise InputError(archive.name, "the zip holds NIfTI and DICOM files", "zip one case folder or one study")
    if not extracted and not dicom.exists():
        raise InputError(archive.name, "no NIfTI image and no DICOM file in the zip",
                         "zip the case's .nii.gz files, or the DICOM study's folder")  # fmt: skip
    return extracted


def receive_upload(uploads: list[tuple[BinaryIO, str]], job_folder: Path, limits: UploadLimits) -> Path:
    """Store one upload's files (``(stream, file name)``) in ``job_folder/input``, unpack its zips and arrange the
    case (or the DICOM study); returns where glioseg reads it, having checked that it does (for a study: that its
    four sequences are found). Blocking: the server runs it off its event loop."""
    from glioseg.datasets.layouts import locate_case

    inbox = job_folder / "input" / "upload"
    inbox.mkdir(parents=True)
    budget = [limits.max_unpacked_bytes]
    stored = [store_upload(stream, name, inbox, budget) for stream, name in uploads]
    niftis = [p for p in stored if not p.name.lower().endswith(".zip")]
    for archive in (p for p in stored if p.name.lower().endswith(".zip")):
        niftis += unpack_zip(archive, inbox, limits)
    if (inbox / "dicom").exists():
        if niftis:
            raise InputError("upload", "NIfTI images and a DICOM study together", "upload one case or one study")
        from glioseg.raw.dicom import choose_series, scan_study

        study = job_folder / "input" / "study"
        (inbox / "dicom").rename(study)
        choose_series(study, scan_study(study), {}, complete=False)  # the sequences found: refuse now, not in the job
        return study
    source = arrange_case(niftis, job_folder / "input" / "case")
    locate_case(source, complete=False)  # names right, one sequence missing at most: refuse now, not in the job
    return source


def arrange_case(files: list[Path], job_folder: Path) -> Path:
    """Place uploaded NIfTI files where :func:`glioseg.datasets.layouts.locate_case` reads them; returns that path.

    One file: an MSD-style 4D image (``imagesTs/<name>``). Several: a BraTS case folder named after the files'
    common stem (``<case>_flair.nii.gz ...`` or ``<case>-t2f.nii.gz ...``).
    """
    if not files:
        raise InputError("upload", "no NIfTI file in the upload", "upload four modalities, one 4D file or a zip")
    if len(files) == 1:
        target = job_folder / "imagesTs" / files[0].name
    else:
        stems = [strip_nifti(f.name) or f.name for f in files]
        case_id = re.split(r"[-_](?=[^-_]+$)", sorted(stems)[0])[0] or "case"
        target = job_folder / case_id
    target.parent.mkdir(parents=True, exist_ok=True)
    if len(files) == 1:
        shutil.move(files[0], target)
        return target
    target.mkdir(exist_ok=True)
    for path in files:
        shutil.move(path, target / path.name)
    return target
