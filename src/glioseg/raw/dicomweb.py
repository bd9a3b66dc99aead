"""DICOMweb in and out (dicomweb-client, the field's client for the standard's RESTful services): a study fetched by
WADO-RS into a local DICOM study folder, a result (DICOM SEG) stored back by STOW-RS.

A study is named by its URL, ``http(s)://HOST/.../studies/<StudyInstanceUID>``: the part before ``/studies/`` is the
service root (Orthanc's ``http://HOST:8042/dicom-web``). HTTP basic authentication takes the user from the command line
and the password from the environment (:data:`PASSWORD_VARIABLE`): never on a command line, never logged.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from glioseg.core.errors import InputError
from glioseg.core.files import make_folder

PASSWORD_VARIABLE = "GLIOSEG_DICOMWEB_PASSWORD"
STUDY_URL = re.compile(r"^(https?://[^\s]+?)/studies/([0-9.]+)/?$")
NO_STUDY_FIX = "check the StudyInstanceUID (the server's QIDO-RS, <root>/studies, lists them)"
TIMEOUT_S = 60
"""How long a request may wait for the server's answer."""


@dataclass(frozen=True)
class StudyURL:
    """A study on a DICOMweb server: the service root and the StudyInstanceUID."""

    root: str
    study: str

    @classmethod
    def parse(cls, text: str) -> StudyURL | None:
        """The study a URL names, or None for anything that is not a DICOMweb study URL."""
        found = STUDY_URL.match(str(text))
        return cls(found.group(1), found.group(2)) if found else None

    def __str__(self) -> str:
        return f"{self.root}/studies/{self.study}"


def connect(root: str, user: str | None):
    """A DICOMweb client of ``root``, with basic authentication when ``user`` is given.

    Raises:
        InputError: a user without the password in the environment.
    """
    import requests
    from dicomweb_client import DICOMwebClient

    session = requests.Session()
    if user:
        password = os.environ.get(PASSWORD_VARIABLE)
        if password is None:
            raise InputError(PASSWORD_VARIABLE, f"not set, and --dicomweb-user {user} needs a password",
                             f"export {PASSWORD_VARIABLE}=... (the password is never given on the command "
                             "line)")  # fmt: skip
        session.auth = (user, password)
    client = DICOMwebClient(url=root, session=session, timeout=TIMEOUT_S)
    client.set_http_retry_params(retry=False)  # a server that is down is said at once, not after minutes
    return client


def server_error(error: Exception, url: str, user: str | None) -> InputError:
    """What a failed request means for the user, naming the URL (never the password)."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        if status in (401, 403):
            who = f"user {user}" if user else "a request without a user"
            return InputError(url, f"the server refused {who} (HTTP {status})",
                              f"check --dicomweb-user and the password in {PASSWORD_VARIABLE}")  # fmt: skip
        if status == 404:
            return InputError(url, "the server has no such study (HTTP 404)", NO_STUDY_FIX)
        return InputError(url, f"the server answered HTTP {status}", "check the URL, or the server's log")
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return InputError(url, f"cannot reach the server ({type(error).__name__})",
                          "check the address and port, and that the server runs")  # fmt: skip
    return InputError(url, f"the DICOMweb request failed ({type(error).__name__}: {str(error)[:200]})",
                      "check the URL and the server")  # fmt: skip


def fetch_study(url: StudyURL, folder: Path, user: str | None = None) -> Path:
    """Every instance of the study (WADO-RS) written into ``folder``, one Part 10 file each; the folder appears whole
    or not at all, and one fetched before is kept as it is. Returns ``folder``.

    Raises:
        InputError: the server refuses, is down, or holds no such study.
    """
    import pydicom
    import requests

    if folder.is_dir():
        return folder
    client = connect(url.root, user)
    created = [parent for parent in reversed(folder.parents) if not parent.exists()]
    make_folder(folder.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        count = 0
        for dataset in client.iter_study(url.study):
            pydicom.dcmwrite(staging / f"{dataset.SOPInstanceUID}.dcm", dataset, enforce_file_format=True)
            count += 1
        if not count:
            raise InputError(str(url), "the server has no such study (no instance returned)", NO_STUDY_FIX)
        staging.rename(folder)
    except (requests.RequestException, OSError) as error:
        raise server_error(error, str(url), user) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not folder.exists():  # nothing fetched: the folders made for it go too
            for parent in reversed(created):
                with contextlib.suppress(OSError):
                    parent.rmdir()
    return folder


def store(root: str, paths: list[Path], user: str | None = None) -> None:
    """STOW-RS: the Part 10 files ``paths`` stored on the server (into their own study, as their headers say).

    Raises:
        InputError: the server refuses, is down, or does not take them.
    """
    import pydicom
    import requests

    client = connect(root, user)
    try:
        client.store_instances([pydicom.dcmread(path) for path in paths])
    except (requests.RequestException, OSError) as error:
        raise server_error(error, root, user) from None
