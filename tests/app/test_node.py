"""``glioseg listen``, the DICOM node, against a real Orthanc: a study Orthanc sends is segmented and its SEG sent
back; a broken study before it is logged and does not stop the node; a restart resumes what was received but not
done, and sends what could not be sent."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from conftest import glioseg_in_process
from dicom_writer import write_phantom_study
from glioseg.app.node import Destination
from orthanc_server import free_port, orthanc_missing, running_orthanc


def start_node(out: Path, port: int, send_to: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "glioseg", "listen", "--port", str(port), "--ae-title", "GLIOSEG",
                             "--send-to", send_to, "--out", str(out), "--study-timeout", "1"],
                            stdout=log.open("a"), stderr=subprocess.STDOUT, env=env)  # fmt: skip


def wait_for(condition, what: str, node: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert node.poll() is None, f"the node stopped: {log.read_text()}"
        assert time.time() < deadline, f"waited {timeout} s for {what}: {log.read_text()}"
        time.sleep(0.5)


def stop(node: subprocess.Popen) -> None:
    node.send_signal(signal.SIGTERM)
    node.wait(timeout=30)


@pytest.mark.skipif(orthanc_missing() is not None, reason=orthanc_missing() or "")
def test_the_node_survives_a_broken_study_sends_the_seg_and_resumes_after_a_restart(tmp_path):
    good = write_phantom_study(tmp_path / "good")
    study = pydicom.dcmread(good["T1Gd"][0], stop_before_pixels=True)
    broken = write_phantom_study(tmp_path / "broken", roles=("FLAIR", "T1", "T2"))  # no T1Gd
    broken_uid = pydicom.dcmread(broken["T1"][0], stop_before_pixels=True).StudyInstanceUID
    out, port, log = tmp_path / "node", free_port(), tmp_path / "node.log"
    incoming = out / "incoming" / broken_uid  # received before a restart, never segmented
    incoming.mkdir(parents=True)
    for path in (p for paths in broken.values() for p in paths):
        shutil.copy(path, incoming / f"{pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID}.dcm")
    with running_orthanc(tmp_path / "orthanc") as orthanc:
        orthanc.upload([path for paths in good.values() for path in paths])
        orthanc.register("glioseg", "GLIOSEG", port)
        down = f"{orthanc.ae_title}@127.0.0.1:{free_port()}"  # first the SEG cannot be sent: nothing listens there
        node = start_node(out, port, down, log)
        try:
            wait_for(lambda: (out / "incoming" / f"{broken_uid}.json").exists(), "the broken study", node, log)
            orthanc.send_study("glioseg", study.StudyInstanceUID)
            record = out / "incoming" / f"{study.StudyInstanceUID}.json"
            wait_for(record.exists, "the good study", node, log)
        finally:
            stop(node)
        text = log.read_text()
        assert f"study {broken_uid}: refused" in text and "T1Gd" in text, text
        assert '"state": "unsent"' in record.read_text(), record.read_text()
        assert (out / f"{study.StudyInstanceUID}.nii.gz").exists()  # the same files as glioseg predict
        assert (out / f"{study.StudyInstanceUID}_qc.png").exists()
        assert (out / "volumes.csv").read_text().count(study.StudyInstanceUID) == 1
        assert orthanc.series_of(study.StudyInstanceUID, "SEG") == orthanc.series_of(study.StudyInstanceUID, "SR") == []

        node = start_node(out, port, f"{orthanc.ae_title}@127.0.0.1:{orthanc.dicom_port}", log)  # the restart
        try:
            # the record is written once the SEG and SR are sent: waiting for the SEG alone raced it (fresh-clone check)
            wait_for(lambda: record.exists() and '"state": "sent"' in record.read_text(), "the study sent", node, log)
        finally:
            stop(node)
        assert orthanc.series_of(study.StudyInstanceUID, "SEG")
        assert '"state": "refused"' in (out / "incoming" / f"{broken_uid}.json").read_text()  # not tried again
        seg_series = orthanc.series_of(study.StudyInstanceUID, "SEG")[0]
        instance = orthanc.rest("GET", f"/series/{seg_series['ID']}").json()["Instances"][0]
        tags = orthanc.rest("GET", f"/instances/{instance}/simplified-tags").json()
        assert tags["StudyInstanceUID"] == study.StudyInstanceUID
        assert tags["ReferencedSeriesSequence"][0]["SeriesInstanceUID"] == study.SeriesInstanceUID
        assert len(orthanc.series_of(study.StudyInstanceUID, "SR")) == 1  # the measurements went with it


@pytest.mark.parametrize("text", ["ORTHANC", "ORTHANC@host", "@host:4242", "ORTHANC@host:0", "A\\B@host:4242",
                                  "WAY_TOO_LONG_AE_TITLE@host:4242"])  # fmt: skip
def test_a_destination_that_is_not_aet_at_host_port_is_refused(text, tmp_path):
    with pytest.raises(ValueError):
        Destination.parse(text)
    result = glioseg_in_process("listen", "--send-to", text, "--out", tmp_path / "node")
    assert result.returncode == 2 and "--send-to" in result.stdout + result.stderr
    assert not (tmp_path / "node").exists()


def test_a_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = glioseg_in_process("listen", "--port", port, "--send-to", "PACS@127.0.0.1:4242", "--out",
                                    tmp_path / "node")  # fmt: skip
    assert result.returncode == 2 and f"port {port}" in result.stdout + result.stderr
    assert "fix" in (result.stdout + result.stderr).lower()
