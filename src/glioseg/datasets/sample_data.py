"""`glioseg sample-data`: the public BraTS 2018 cases glioseg is tested and trained on, fetched and verified.

The 12 sample cases, and with ``--all`` 16 more (28 in all, the shipped model's training set), come from their
public sources (``SOURCES``, fixed commits, so they never change) or from a local copy; every file is checked
against the SHA-256 lists shipped in ``glioseg/data``: of the file as its source serves it, and for the 16 extra
cases also of its decompressed content (a local copy may be gzipped anew, as ``unpack-extra-data`` writes it).
Downloads go to ``<file>.part`` first and resume from its length with an HTTP Range request.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from glioseg.core.errors import InputError

SOURCES = {
    "deepbrainseg": "https://github.com/koriavinash1/DeepBrainSeg/raw/0c9efd1c42780be5e569164553e616676527ac4f/"
    "sample_volume/brats",
    "bioexp": "https://github.com/koriavinash1/BioExp/raw/c0a88e70e26d857720a23238a0e875d360974654/sample_vol/brats",
    "brainy": "https://github.com/IAmSuyogJadhav/Brainy/raw/aa52f6e86e598eb9d993b3ebfecd78f4c4ab5454/samples",
}
"""Where each case's ``<case>/<file>`` is published (the 12 sample cases: DeepBrainSeg; the extra 16: BioExp for
the CBICA cases, Brainy for the BraTS 2013 and TCIA05 ones)."""
CHUNK = 1 << 20


class SampleFile(NamedTuple):
    """One published file: where it goes, its SHA-256 as served, its source, its decompressed content's SHA-256."""

    path: str
    digest: str
    source: str
    content_digest: str = ""


def _rows(name: str) -> list[list[str]]:
    text = resources.files("glioseg").joinpath(f"data/{name}").read_text()
    return [line.split() for line in text.splitlines() if line.strip()]


def manifest(extra: bool = False) -> list[SampleFile]:
    """Every file of the 12 sample cases (``extra``: and of the 16 more), e.g. ``Brats18_2013_20_1/..._t1.nii.gz``."""
    files = [SampleFile(path, digest, "deepbrainseg") for digest, path in _rows("brats2018_sample.sha256")]
    if extra:
        files += [SampleFile(path, digest, source, content) for digest, content, source, path in
                  _rows("brats2018_extra.sha256")]  # fmt: skip
    return files


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, entry: SampleFile) -> bool:
    """The file is the published one: the same bytes, or (extra cases) the same content gzipped anew."""
    if sha256(path) == entry.digest:
        return True
    if not entry.content_digest:
        return False
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as stream:
            for block in iter(lambda: stream.read(CHUNK), b""):
                digest.update(block)
    except (OSError, EOFError):
        return False
    return digest.hexdigest() == entry.content_digest


def _download(url: str, part: Path, on_bytes) -> None:
    """Append ``url``'s bytes to ``part``, resuming from its current length."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # nothing left to fetch: the part file is complete
            return
        raise
    with response, open(part, "ab" if response.status == 206 else "wb") as stream:
        if response.status != 206:
            have = 0
        on_bytes(have)
        for block in iter(lambda: response.read(CHUNK), b""):
            stream.write(block)
            on_bytes(len(block))


def fetch_sample(
    out: str | Path,
    source_url: str | None = None,
    from_dir: str | Path | None = None,
    progress: bool = True,
    extra: bool = False,
) -> list[Path]:
    """Put the BraTS 2018 cases into ``out`` (one folder per case); files already verified are kept.

    Args:
        out: destination dataset folder.
        source_url: a mirror serving every ``<case>/<file>`` over HTTP(S) (default: each file's public source).
        from_dir: copy from this local folder instead of downloading.
        extra: the 16 extra cases too (28 in all).

    Raises:
        InputError: a file is missing from ``from_dir``, cannot be fetched, or fails its checksum.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(out)
    files = manifest(extra)
    done = []
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        overall = bar.add_task(f"BraTS 2018 cases ({len(files)} files)", total=len(files))
        for entry in files:
            target = out / entry.path
            if target.exists() and verified(target, entry):
                done.append(target)
                bar.advance(overall)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            if from_dir is not None:
                source = Path(from_dir) / entry.path
                if not source.exists():
                    raise InputError(source, "sample file missing from the local copy",
                                     "give the folder that holds the Brats18_* case folders, or drop --from to "
                                     "download")  # fmt: skip
                shutil.copyfile(source, part)
            else:
                task = bar.add_task(Path(entry.path).name, total=None)
                url = f"{source_url or SOURCES[entry.source]}/{entry.path}"
                try:
                    _download(url, part, lambda n, t=task: bar.advance(t, n))
                except (urllib.error.URLError, OSError) as error:
                    raise InputError(part, f"download failed ({error}); what arrived is kept",
                                     "rerun the same command to resume, or use --from DIR") from None  # fmt: skip
                bar.remove_task(task)
            if not verified(part, entry):
                part.unlink()
                raise InputError(target, "checksum mismatch: the file differs from the published sample",
                                 "rerun to fetch it again; if it persists, the source has changed")  # fmt: skip
            part.replace(target)
            done.append(target)
            bar.advance(overall)
    return done
