"""``glioseg listen``: glioseg as a DICOM node, as AI nodes in a hospital network work (MONAI Deploy, commercial
ones): a C-STORE SCP (pynetdicom) receives studies, segments each one once it is complete, and sends its DICOM SEG
and measurements (DICOM SR) (C-STORE) to another node, usually the PACS the study came from.

Received instances go to ``<out>/incoming/<StudyInstanceUID>/<SOPInstanceUID>.dcm``. A study that has received
nothing for ``study_timeout_s`` is complete: it is segmented as a local DICOM study by the same code as ``glioseg
predict`` (the same files under ``<out>``: native mask, volumes, lesions, QC, SEG), one study at a time, while the
receiving goes on. ``<out>/incoming/<StudyInstanceUID>.json`` records each study's outcome:

- ``sent``: the SEG and the SR (:mod:`glioseg.raw.dicom_sr`) went to the destination (without tumour: the SR, which
  says so, alone);
- ``refused``: the study cannot be segmented (its reason is logged and recorded); it is tried again if more of its
  instances arrive (say the T1Gd sent afterwards);
- ``unsent``: segmented, but the destination did not take the SEG; sent again at the node's next start.

A study with no record is due: after a restart, what was received but not done is done first.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from glioseg.core.config import NodeConfig, PredictConfig, parse_ae_title
from glioseg.core.errors import InputError
from glioseg.core.files import atomic_path, make_folder

INCOMING_FOLDER = "incoming"
POLL_S = 0.5
"""How often the node looks for complete studies."""
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
SUCCESS, CANNOT_UNDERSTAND, OUT_OF_RESOURCES = 0x0000, 0xC000, 0xA700  # C-STORE statuses (PS3.4 B.2.3)

log = logging.getLogger("glioseg.node")


@dataclass(frozen=True)
class Destination:
    """The node that receives the SEGs: ``AET@HOST:PORT``."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """Raises ValueError for text that is not ``AET@HOST:PORT``."""
        found = re.fullmatch(r"([^@]+)@([^:@\s]+):(\d{1,5})", text.strip())
        if not found or not 1 <= int(found.group(3)) <= 65535:
            raise ValueError(f"{text!r} is not AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242)")
        return cls(parse_ae_title(found.group(1)), found.group(2), int(found.group(3)))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


class Inbox:
    """The studies received, on disk, and their outcomes."""

    def __init__(self, out: Path):
        self.folder = make_folder(out / INCOMING_FOLDER)

    def receive(self, event) -> int:
        """pynetdicom's C-STORE handler: the instance written whole (Part 10, as it came) into its study's folder."""
        try:
            dataset = event.dataset
            study, instance = str(dataset.StudyInstanceUID), str(dataset.SOPInstanceUID)
        except Exception as error:  # a dataset pydicom cannot decode: refused, the node goes on
            log.warning("refused an instance that cannot be read (%s)", error)
            return CANNOT_UNDERSTAND
        if not (UID.match(study) and UID.match(instance)):  # UIDs name files: nothing else may
            log.warning("refused an instance whose UIDs are not DICOM UIDs: study %r, instance %r", study, instance)
            return CANNOT_UNDERSTAND
        try:
            with atomic_path(self.folder / study / f"{instance}.dcm") as temporary:
                temporary.write_bytes(event.encoded_dataset())
        except (OSError, InputError) as error:
            log.error("cannot store an instance of study %s (%s)", study, error)
            return OUT_OF_RESOURCES
        return SUCCESS

    @staticmethod
    def record_path(study: Path) -> Path:
        return study.parent / f"{study.name}.json"  # not with_suffix: a UID's last part would go

    def record(self, study: Path, state: str, detail: str = "") -> None:
        with atomic_path(self.record_path(study)) as temporary:
            temporary.write_text(json.dumps({"state": state, "detail": detail, "time": time.time()}))

    def outcome(self, study: Path) -> dict | None:
        path = self.record_path(study)
        return json.loads(path.read_text()) if path.exists() else None

    def forget_unsent(self) -> None:
        """At start: studies whose SEG the destination did not take become due again."""
        for study in self.studies():
            if (self.outcome(study) or {}).get("state") == "unsent":
                self.record_path(study).unlink()

    def studies(self) -> list[Path]:
        return sorted(path for path in self.folder.iterdir() if path.is_dir() and UID.match(path.name))

    def due(self, timeout_s: float) -> list[Path]:
        """Complete studies not done yet, the longest complete first."""
        waiting = []
        for study in self.studies():
            newest = max((path.stat().st_mtime for path in study.iterdir()), default=None)
            outcome = self.outcome(study)
            again = outcome is None or (outcome["state"] == "refused" and newest and newest > outcome["time"])
            if again and newest is not None and time.time() - newest >= timeout_s:
                waiting.append((newest, study))
        return [study for _, study in sorted(waiting)]


def send(paths: list[Path], destination: Destination, calling_ae_title: str) -> None:
    """C-STORE of the Part 10 files ``paths`` to ``destination``.

    Raises:
        ConnectionError: the destination cannot be reached or does not take an instance.
    """
    import pydicom
    from pynetdicom import AE

    datasets = [pydicom.dcmread(path) for path in paths]
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.network_timeout = 30
    for dataset in datasets:
        ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    association = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not association.is_established:
        raise ConnectionError(f"{destination} did not accept an association from {calling_ae_title} (is it running, "
                              f"and does it know this AE title?)")  # fmt: skip
    try:
        for path, dataset in zip(paths, datasets):
            status = association.send_c_store(dataset)
            if not status or status.Status != SUCCESS:
                code = f"status 0x{status.Status:04X}" if status else "no answer"
                raise ConnectionError(f"{destination} did not store {path.name} ({code})")
    finally:
        association.release()


def segment_study(model, study: Path, out: Path, settings: PredictConfig, destination: Destination,
                  ae_title: str) -> tuple[str, str]:  # fmt: skip
    """Segment one received study into ``out`` and send its SEG and SR: its outcome (state, detail)."""
    from glioseg.inference.predict import predict_cohort
    from glioseg.workflows.pacs import results_to_store

    count = sum(1 for path in study.iterdir() if path.suffix == ".dcm")
    log.info("study %s: %d instances received, segmenting", study.name, count)
    try:
        predict_cohort(model, [study], out, settings, progress=False)
    except InputError as error:
        return "refused", f"{error.path}: {error.problem}. Fix: {error.fix}"
    from glioseg.inference.review import read_review

    review = read_review(out, study.name) or {}
    flag = "; review advised" if review.get("review_advised") else ""
    results = results_to_store([study], out)
    try:
        send(results, destination, ae_title)
    except ConnectionError as error:
        return "unsent", str(error) + flag
    return "sent", f"{', '.join(path.name for path in results)} sent to {destination}{flag}"


def listen(model, out: Path, settings: PredictConfig, node: NodeConfig, destination: Destination) -> None:
    """Receive, segment and send until interrupted (Ctrl-C, SIGTERM).

    Raises:
        InputError: the port cannot be listened on, or ``out`` holds predictions made with other settings.
    """
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    from glioseg.inference.predict import predict_cohort

    ae = AE(ae_title=node.ae_title)
    for context in AllStoragePresentationContexts:  # compressed studies too: dcm2niix decodes them
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)  # C-ECHO, a PACS's "test the connection"
    inboxes: list[Inbox] = []  # empty until ``out`` is claimed: nothing is taken before

    def receive(event) -> int:
        return inboxes[0].receive(event) if inboxes else OUT_OF_RESOURCES

    try:
        server = ae.start_server(("", node.port), block=False, evt_handlers=[(evt.EVT_C_STORE, receive)])
    except OSError as error:  # first, so that a port in use leaves no folder behind
        raise InputError(f"port {node.port}", f"cannot listen there ({error.strerror})",
                         "choose another --port (one no other program uses)") from None  # fmt: skip
    try:
        predict_cohort(model, [], out, settings, progress=False)  # claims ``out``: a folder of other settings fails now
        inboxes.append(Inbox(out))
        inboxes[0].forget_unsent()
        log.info("listening as %s on port %d; SEGs go to %s; results in %s", node.ae_title, node.port, destination,
                 out)  # fmt: skip
        while True:
            for study in inboxes[0].due(node.study_timeout_s):
                _segment_and_record(inboxes[0], study, model, out, settings, node, destination)
            time.sleep(POLL_S)
    finally:
        server.shutdown()


def _segment_and_record(inbox: Inbox, study: Path, model, out: Path, settings: PredictConfig, node: NodeConfig,
                        destination: Destination) -> None:  # fmt: skip
    try:
        state, detail = segment_study(model, study, out, settings, destination, node.ae_title)
    except Exception:  # a defect, not bad input: recorded, logged in full, and the node goes on
        log.exception("study %s failed", study.name)
        state, detail = "refused", "an unexpected error (see the node's log)"
    inbox.record(study, state, detail)
    report = log.info if state == "sent" else log.warning
    report("study %s: %s: %s", study.name, state, detail)
