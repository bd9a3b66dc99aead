"""Writing files safely: each file appears whole or not at all, a folder's work never mixes settings, and
what a killed writer left behind is cleaned up before work resumes."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from glioseg.core.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the file's endings (``.nii.gz``) so writers pick the right format.
    """
    path = Path(path)
    make_folder(path.parent)
    temporary = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def claim_folder(record: Path, wanted: dict, overwrite: bool, what: str) -> None:
    """Write ``wanted`` (the settings of work done in ``record``'s folder) to ``record``; refuse a folder whose record
    says other settings made its files, unless ``overwrite`` (then the caller redoes them): work never mixes settings.

    Raises:
        InputError: naming ``--overwrite``; or the folder cannot be written.
    """
    folder = record.parent
    try:
        if record.exists() and not overwrite:
            if json.loads(record.read_text()) != json.loads(json.dumps(wanted)):
                raise InputError(folder, f"holds {what} made with another model or settings",
                                 "use --overwrite to replace them, or choose another --out")  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(record) as temporary:
            temporary.write_text(json.dumps(wanted, indent=2))
    except OSError as error:
        raise InputError(folder, f"cannot write here ({error.strerror})", "choose a folder you can write to") from None


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries left by a writer that was killed (``atomic_path`` could not clean up); call only
    where no other writer is active. Returns how many were removed."""
    stale = list(Path(folder).glob(".tmp-*")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def make_folder(folder: Path) -> Path:
    """``folder``, made with its parents where missing.

    Raises:
        InputError: it is a file, or cannot be made here.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(folder, "is a file, not a folder", "choose a folder for the output") from None
    except OSError as error:
        raise InputError(folder, f"cannot be made ({error.strerror})", "choose a folder you can write to") from None
    return folder
