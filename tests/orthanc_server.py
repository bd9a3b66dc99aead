"""A real Orthanc for the PACS tests (Debian's ``orthanc`` and ``orthanc-dicomweb``): started on free loopback ports
with a temporary storage folder and a password, stopped afterwards; tests skip, saying how to install it, where it
is missing."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "glioseg", "s3cret-for-tests"


def orthanc_missing() -> str | None:
    """Why no Orthanc can be started here (None: it can)."""
    if not (shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists()):
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; make system-tools)"
    if not DICOMWEB_PLUGIN.exists():
        return f"Orthanc's DICOMweb plugin is missing ({DICOMWEB_PLUGIN}; apt-get install orthanc-dicomweb)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Orthanc:
    http: str
    dicom_port: int
    ae_title: str = "ORTHANC"

    @property
    def dicomweb(self) -> str:
        return f"{self.http}/dicom-web"

    def study_url(self, study_uid: str) -> str:
        return f"{self.dicomweb}/studies/{study_uid}"

    def rest(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = requests.request(method, f"{self.http}{path}", auth=(USER, PASSWORD), timeout=60, **kwargs)
        answer.raise_for_status()
        return answer

    def upload(self, paths: list[Path]) -> None:
        for path in paths:
            self.rest("POST", "/instances", data=path.read_bytes())

    def study_id(self, study_uid: str) -> str:
        """Orthanc's own identifier of a study."""
        found = self.rest("POST", "/tools/lookup", data=study_uid).json()
        return next(item["ID"] for item in found if item["Type"] == "Study")

    def series_of(self, study_uid: str, modality: str | None = None) -> list[dict]:
        """The study's series (their main tags), of ``modality`` if given."""
        series = self.rest("GET", f"/studies/{self.study_id(study_uid)}/series").json()
        return [s for s in series if modality is None or s["MainDicomTags"].get("Modality") == modality]

    def register(self, name: str, ae_title: str, port: int) -> None:
        """Make a DICOM node known to Orthanc (what 'DicomModalities' in its configuration does)."""
        self.rest("PUT", f"/modalities/{name}", json={"AET": ae_title, "Host": "127.0.0.1", "Port": port})

    def send_study(self, name: str, study_uid: str) -> None:
        """C-STORE a study to a registered node (Orthanc Explorer's 'Send to DICOM modality')."""
        self.rest("POST", f"/modalities/{name}/store", json={"Resources": [self.study_id(study_uid)]})


@contextlib.contextmanager
def running_orthanc(folder: Path):
    """Orthanc on free ports, its storage in ``folder``; yields an :class:`Orthanc`."""
    http_port, dicom_port = free_port(), free_port()
    config = {"Name": "glioseg-test", "StorageDirectory": str(folder / "storage"),
              "IndexDirectory": str(folder / "index"), "HttpPort": http_port, "DicomPort": dicom_port,
              "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
              "RegisteredUsers": {USER: PASSWORD}, "Plugins": [str(DICOMWEB_PLUGIN)],
              "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "HttpTimeout": 60}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    log = open(folder / "orthanc.log", "w")
    process = subprocess.Popen([binary, str(folder / "config.json")], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(f"http://127.0.0.1:{http_port}", dicom_port)
    try:
        deadline = time.time() + 30
        while True:
            try:
                server.rest("GET", "/system")
                break
            except requests.RequestException:
                if process.poll() is not None or time.time() > deadline:
                    log_text = (folder / "orthanc.log").read_text()[-2000:]
                    raise RuntimeError(f"Orthanc did not start: {log_text}") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
