"""`glioseg sample-data`: the 12 public BraTS 2018 cases glioseg is tested on, fetched and verified.

The files come from their public source (``SOURCE_URL``, a fixed commit, so they never change) or from
a local copy; every file is checked against the SHA-256 list shipped in ``glioseg/data``. Downloads go
to ``<file>.part`` first and resume from its length with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from glioseg.errors import InputError

SOURCE_URL = (
    "https://github.com/koriavinash1/DeepBrainSeg/raw/0c9efd1c42780be5e569164553e616676527ac4f/sample_volume/brats"
)
CHUNK = 1 << 20


def manifest() -> list[tuple[str, str]]:
    """``(relative path, sha256)`` of every sample file, e.g. ``("Brats18_2013_20_1/..._t1.nii.gz", "04bc...")``."""
    text = resources.files("glioseg").joinpath("data/brats2018_sample.sha256").read_text()
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [(path, digest) for digest, path in rows]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


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
    out: str | Path, source_url: str = SOURCE_URL, from_dir: str | Path | None = None, progress: bool = True
) -> list[Path]:
    """Put the BraTS 2018 sample into ``out`` (one folder per case); files already verified are kept.

    Args:
        out: destination dataset folder.
        source_url: where ``<case>/<file>`` can be fetched over HTTP(S).
        from_dir: copy from this local folder instead of downloading.

    Raises:
        InputError: a file is missing from ``from_dir``, cannot be fetched, or fails its checksum.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(out)
    files = manifest()
    done = []
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        overall = bar.add_task(f"sample ({len(files)} files)", total=len(files))
        for relative, digest in files:
            target = out / relative
            if target.exists() and sha256(target) == digest:
                done.append(target)
                bar.advance(overall)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            if from_dir is not None:
                source = Path(from_dir) / relative
                if not source.exists():
                    raise InputError(
                        source,
                        "sample file missing from the local copy",
                        "give the folder that holds the 12 Brats18_* case folders, or drop --from to download",
                    )
                shutil.copyfile(source, part)
            else:
                task = bar.add_task(Path(relative).name, total=None)
                try:
                    _download(f"{source_url}/{relative}", part, lambda n, t=task: bar.advance(t, n))
                except (urllib.error.URLError, OSError) as error:
                    raise InputError(
                        part,
                        f"download failed ({error}); what arrived is kept",
                        "rerun the same command to resume, or use --from DIR",
                    ) from None
                bar.remove_task(task)
            if sha256(part) != digest:
                part.unlink()
                raise InputError(
                    target,
                    "checksum mismatch: the file differs from the published sample",
                    "rerun to fetch it again; if it persists, the source has changed",
                )
            part.replace(target)
            done.append(target)
            bar.advance(overall)
    return done
