"""`glioseg serve`: a web viewer (FastAPI + NiiVue) where a user uploads a case, follows the job, and explores the
segmentation over any modality in three planes and 3D; predictions already on disk open the same way.

Jobs run one at a time on a background thread, so the page stays responsive while a case is segmented; uploads are
stored and unpacked off the event loop, so one client's 500 MB upload does not stall the others. Each job owns one
folder under the server's work folder; only the files a job wrote are served, by fixed names, never a path from the
request. The queue is bounded (waiting jobs, disk), old finished jobs are deleted first, and every failure ends a
job as failed with its reason. With ``private`` (a server listening beyond loopback), each browser gets an
unguessable session token (a cookie) and sees only its own jobs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from glioseg.app.uploads import receive_upload
from glioseg.core.config import UploadLimits
from glioseg.core.errors import InputError
from glioseg.core.labels import CLASS_NAMES, STRUCTURE_NAMES, LabelConvention, convention_from_record
from glioseg.datasets.layouts import MODALITIES
from glioseg.inference.predict import read_case_index

STATIC = Path(__file__).parent / "static"
VIEW_FILES = (*MODALITIES, "overlay", "segmentation")  # what a finished job serves, as <name>.nii.gz
LESION_KEYS = ("kind", "lesion", "volume_ml", "longest_diameter_mm", "perpendicular_diameter_mm", "measurable")
"""What the page lists of each lesion (with its centroid, where a click on its row moves the crosshair)."""
SESSION_COOKIE = "glioseg_session"
MAX_SESSIONS = 100_000  # tokens remembered; the oldest are forgotten (their jobs become unreachable, then deleted)


@dataclass
class Job:
    """One uploaded case (or a prediction on disk) on its way to the viewer."""

    id: str
    folder: Path
    title: str
    owner: str = ""  # the session that made it ("" where sessions are not kept apart)
    status: str = "queued"  # queued | running | done | failed
    stage: str = "waiting for earlier jobs"
    error: str | None = None
    case_id: str | None = None
    volumes_ml: dict[str, float] = field(default_factory=dict)
    centre_mm: list[float] | None = None
    lesions: list[dict] = field(default_factory=list)
    review: dict | None = None  # review_score, review_advised (inference.review)
    created: float = field(default_factory=time.time)

    def public(self) -> dict:
        return {
            "id": self.id, "title": self.title, "status": self.status, "stage": self.stage, "error": self.error,
            "case_id": self.case_id, "volumes_ml": self.volumes_ml, "centre_mm": self.centre_mm,
            "lesions": self.lesions, "review": self.review, "files": list(VIEW_FILES) if self.status == "done" else [],
        }  # fmt: skip


class Busy(Exception):
    """The queue is full (waiting jobs or disk); the client should try again later."""


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``, counted while other jobs write and delete theirs: a file removed between
    being listed and measured is not counted (os.walk skips folders that vanish)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
    return total


class JobQueue:
    """Runs job functions one at a time, in submission order, on a daemon thread; bounded in waiting jobs and disk."""

    def __init__(self, work: Path, limits: UploadLimits, max_jobs: int = 50) -> None:
        self.work, self.limits, self.max_jobs = work, limits, max_jobs
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], None]]] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="glioseg-jobs").start()

    def new_job(self, title: str, owner: str = "", incoming_bytes: int = 0) -> Job:
        """A job folder for new work, once there is room: old finished jobs are deleted to make room on disk.

        Raises:
            Busy: ``max_waiting_jobs`` jobs already wait, or the disk budget is taken by unfinished jobs.
        """
        with self._lock:
            waiting = sum(job.status == "queued" for job in self._jobs.values())
            if waiting >= self.limits.max_waiting_jobs:
                raise Busy(f"{waiting} jobs are waiting already")
            budget = int(self.limits.max_stored_mb * 1024**2)
            finished = sorted(
                (j for j in self._jobs.values() if j.status in ("done", "failed")), key=lambda j: j.created
            )
            used = folder_bytes(self.work)
            while finished and (used + incoming_bytes > budget or len(self._jobs) >= self.max_jobs):
                oldest = finished.pop(0)
                used -= folder_bytes(oldest.folder)
                self._forget(oldest)
            if used + incoming_bytes > budget:
                raise Busy("the jobs in progress fill the disk this server may use")
            job_id = uuid.uuid4().hex  # 122 random bits: not guessable
            job = Job(job_id, self.work / job_id, title, owner)
            job.folder.mkdir(parents=True)
            self._jobs[job.id] = job
        return job

    def submit(self, job: Job, work: Callable[[Job], None]) -> None:
        self._queue.put((job, work))

    def fail(self, job: Job, message: str) -> None:
        job.status, job.stage, job.error = "failed", "failed", message
        shutil.rmtree(job.folder / "input", ignore_errors=True)

    def discard(self, job: Job) -> None:
        with self._lock:
            self._forget(job)

    def get(self, job_id: str, owner: str = "") -> Job | None:
        """The job, if it exists and belongs to ``owner``."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def snapshot(self, owner: str = "") -> list[Job]:
        """The jobs of ``owner``, oldest first, read under the lock."""
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: j.created)

    def _forget(self, job: Job) -> None:  # with the lock held
        self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self) -> None:
        while True:
            job, work = self._queue.get()
            job.status, job.stage = "running", "starting"
            try:
                work(job)
                job.status, job.stage = "done", "done"
            except InputError as error:
                self.fail(job, f"{Path(str(error.path)).name}: {error.problem}. Fix: {error.fix}")
            except Exception as error:  # a job's failure must not stop the queue
                self.fail(job, f"{type(error).__name__}: {error}")
            finally:
                shutil.rmtree(job.folder / "input", ignore_errors=True)


def write_view_files(job: Job, case, label: np.ndarray, convention: LabelConvention) -> None:
    """The files the page loads: each modality, the internal-class overlay and the mask in the user's convention."""
    from glioseg.core.files import atomic_path
    from glioseg.datasets.cases import nifti_like, write_label
    from glioseg.evaluation.measurements import SMALLEST_SHOWN_ML, measure_lesions
    from glioseg.evaluation.metrics import volumes_ml

    job.stage = "writing the viewer's files"
    out = job.folder / "view"
    out.mkdir(exist_ok=True)
    for channel, modality in enumerate(MODALITIES):
        with atomic_path(out / f"{modality}.nii.gz") as temporary:
            nib.save(nifti_like(case.image[channel], case.header, np.float32), temporary)
    with atomic_path(out / "overlay.nii.gz") as temporary:
        nib.save(nifti_like(label, case.header, np.uint8), temporary)
    write_label(out / "segmentation.nii.gz", label, case, convention)
    job.case_id = case.case_id
    job.volumes_ml = {name: round(value, 2) for name, value in volumes_ml(label, case.spacing).items()}
    voxel = np.argwhere(label > 0).mean(0) if label.any() else (np.array(label.shape) - 1) / 2
    job.centre_mm = [round(float(v), 2) for v in nib.affines.apply_affine(case.affine, voxel)]
    job.lesions = [
        {key: row[key] for key in LESION_KEYS} | {"centre_mm": [row[f"centroid_{a}_mm"] for a in "xyz"]}
        for row in measure_lesions(label, case.affine)
        if row["volume_ml"] >= SMALLEST_SHOWN_ML
    ]


def segment_upload(model_loader: Callable[[], object], source: Path, max_voxels: int) -> Callable[[Job], None]:
    """The job function of an upload arranged at ``source``: read the case (volumes of at most ``max_voxels``),
    segment it, write the viewer's files."""

    def work(job: Job) -> None:
        from glioseg.inference.inputs import RawInput, inputs_of, read_or_raw

        job.stage = "reading the case"
        [found] = inputs_of([source], "auto", datasets=False)
        case = found if isinstance(found, RawInput) else read_or_raw(found, "auto", max_voxels)
        job.stage = "loading the model"
        model = model_loader()
        if isinstance(case, RawInput):
            segment_raw(job, model, case)
            return
        job.stage = "segmenting"
        prediction = model.predict(case)  # type: ignore[attr-defined]
        write_view_files(job, case, prediction.label, case.convention)
        job.review = prediction.review.row()

    return work


def segment_raw(job: Job, model, raw) -> None:
    """Raw scans, the way ``glioseg predict`` takes them (:func:`glioseg.inference.native.predict_raw`): shown on the
    prepared grid, the mask to download on the native T1Gd grid, with its volumes."""
    from glioseg.core.config import PredictConfig
    from glioseg.core.labels import BRATS2021
    from glioseg.inference.native import predict_raw

    job.stage = "preparing the raw scans (registration: about a minute), then segmenting"
    result = job.folder / "result"
    made = predict_raw(model, raw, result, PredictConfig(), BRATS2021)
    write_view_files(job, made.case, made.label, BRATS2021)
    shutil.copy(made.native_mask, job.folder / "view" / "segmentation.nii.gz")  # the download: on the native grid
    job.volumes_ml = {name: round(value, 2) for name, value in made.volumes_ml.items()}
    job.review = made.review.row()
    shutil.rmtree(result)


def open_prediction(pred_dir: Path, entry: dict) -> Callable[[Job], None]:
    """The job function that shows a prediction already on disk (from its folder's ``cases.json``)."""

    def work(job: Job) -> None:
        from glioseg.datasets.cases import read_case

        job.stage = "reading the case"
        case = read_case(entry["source"], complete=False)
        convention = convention_from_record(entry["mask_convention"])
        label = convention.to_internal(np.asarray(nib.load(pred_dir / entry["mask"]).dataobj))
        write_view_files(job, case, label, convention)
        if "review_score" in entry:
            job.review = {key: entry[key] for key in ("review_score", "review_advised")}
            job.review.update({key: " ".join(entry.get(key, [])) for key in ("absent", "unreliable")})

    return work


class Sessions:
    """Which browser a request comes from, where sessions are kept apart (``private``): an unguessable token in a
    cookie. Without ``private`` every request is the one owner ""."""

    def __init__(self, private: bool) -> None:
        self.private = private
        self._tokens: OrderedDict[str, None] = OrderedDict()  # the tokens handed out, newest last

    def owner(self, request: Request, response: Response, start: bool = False) -> str:
        """The session this request belongs to. An unknown or forged token owns nothing; ``start`` (the page, an
        upload) hands such a browser a new token in a cookie set on ``response``."""
        if not self.private:
            return ""
        token = request.cookies.get(SESSION_COOKIE, "")
        if token in self._tokens:
            return token
        if not start:
            return "-"  # matches no job
        token = secrets.token_urlsafe(32)
        self._tokens[token] = None
        while len(self._tokens) > MAX_SESSIONS:
            self._tokens.popitem(last=False)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict")
        return token

    @staticmethod
    def with_cookie(result: Response, carrier: Response) -> Response:
        """``result`` carrying any cookie set on ``carrier`` (for responses built here rather than by FastAPI)."""
        for key, value in carrier.headers.items():
            if key == "set-cookie":
                result.headers.append(key, value)
        return result


def load_once(model_loader: Callable[[], object]) -> Callable[[], object]:
    """``model_loader`` called at the first use only (the first upload), whichever thread comes first."""
    loaded: list = []
    lock = threading.Lock()

    def load():
        with lock:
            if not loaded:
                loaded.append(model_loader())
            return loaded[0]

    return load


def create_app(
    model_loader: Callable[[], object] | None,
    prediction_dirs: Sequence[Path] = (),
    work: Path | None = None,
    limits: UploadLimits = UploadLimits(),
    max_jobs: int = 50,
    private: bool = False,
):
    """The FastAPI application. ``model_loader`` is called once, at the first upload (None: viewing only); with
    ``private``, each browser sees only its own jobs (see the module doc)."""
    owned = work is None
    work = Path(tempfile.mkdtemp(prefix="glioseg-serve-")) if work is None else Path(work)
    jobs = JobQueue(work, limits, max_jobs)
    sessions = Sessions(private)

    def cleanup():
        if owned:
            shutil.rmtree(work, ignore_errors=True)

    app = FastAPI(title="glioseg viewer", on_shutdown=[cleanup], docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.jobs = jobs
    add_page_routes(app, sessions, model_loader is not None, limits)
    add_upload_route(app, jobs, sessions, load_once(model_loader) if model_loader else None, limits)
    add_job_routes(app, jobs, sessions)
    add_prediction_routes(app, jobs, sessions, list(prediction_dirs))
    return app


def add_page_routes(app: FastAPI, sessions: Sessions, can_segment: bool, limits: UploadLimits) -> None:
    """The page (which starts a session) and what it asks first."""

    @app.get("/")
    def page(request: Request, response: Response):
        sessions.owner(request, response, start=True)
        return sessions.with_cookie(FileResponse(STATIC / "viewer.html", media_type="text/html"), response)

    @app.get("/favicon.ico", status_code=204)
    def favicon():
        return None

    @app.get("/api/info")
    def info():
        return {"can_segment": can_segment, "modalities": MODALITIES, "classes": CLASS_NAMES,
                "structures": STRUCTURE_NAMES, "max_upload_mb": limits.max_upload_mb}  # fmt: skip


def add_upload_route(app: FastAPI, jobs: JobQueue, sessions: Sessions, model: Callable[[], object] | None,
                     limits: UploadLimits) -> None:  # fmt: skip
    """``POST /api/jobs``: an upload, bounded before it is read, stored off the event loop, queued as a job."""

    @app.post("/api/jobs", status_code=202)
    async def upload(request: Request, response: Response):
        if model is None:
            raise HTTPException(409, "this server was started without a model; it only shows predictions")
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise HTTPException(411, "send the upload with a Content-Length")
        if int(length) > limits.max_bytes:
            raise HTTPException(413, f"the upload is over {limits.max_upload_mb:g} MB; upload one case")
        session = sessions.owner(request, response, start=True)
        form = await request.form(max_files=limits.max_files, max_fields=limits.max_files)
        try:
            uploads = [value for value in form.getlist("files") if hasattr(value, "filename")]
            if not uploads:
                raise HTTPException(400, "no files: upload four NIfTI modalities, one 4D NIfTI or a zip of a case")
            title = ", ".join(str(u.filename) for u in uploads)[:200]
            try:
                job = jobs.new_job(title, session, incoming_bytes=2 * int(length))  # stored, then unpacked
            except Busy as busy:
                raise HTTPException(503, f"the server is busy ({busy}); try again in a few minutes") from None
            streams = [(u.file, str(u.filename)) for u in uploads]
            try:
                source = await run_in_threadpool(receive_upload, streams, job.folder, limits)
            except InputError as error:
                jobs.discard(job)  # nothing of a refused upload stays on disk
                return JSONResponse({"detail": f"{error.path}: {error.problem}. Fix: {error.fix}"}, status_code=400)
            except Exception as error:  # disk full, and anything else: the job ends failed, with the reason
                jobs.fail(job, f"the upload could not be stored ({type(error).__name__}: {error})")
                return JSONResponse({"detail": job.error, "job": job.public()}, status_code=500)
        finally:
            await form.close()
        jobs.submit(job, segment_upload(model, source, limits.max_voxels))
        return job.public()


def add_job_routes(app: FastAPI, jobs: JobQueue, sessions: Sessions) -> None:
    """A session's jobs, each job's state, and a finished job's files (by fixed names only)."""

    @app.get("/api/jobs")
    def list_jobs(request: Request, response: Response):
        return [job.public() for job in jobs.snapshot(sessions.owner(request, response))]

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str, request: Request, response: Response):
        job = jobs.get(job_id, sessions.owner(request, response))
        if job is None:
            raise HTTPException(404, "no such job")
        return job.public()

    @app.get("/api/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str, request: Request, response: Response):
        job = jobs.get(job_id, sessions.owner(request, response))
        if job is None or job.status != "done" or name not in VIEW_FILES:
            raise HTTPException(404, "no such file")
        filename = f"{job.case_id}_segmentation.nii.gz" if name == "segmentation" else f"{name}.nii.gz"
        return FileResponse(job.folder / "view" / f"{name}.nii.gz", media_type="application/gzip",
                            filename=filename)  # fmt: skip


def add_prediction_routes(app: FastAPI, jobs: JobQueue, sessions: Sessions, prediction_dirs: list[Path]) -> None:
    """Predictions on disk (``--predictions``): listed by index, opened as jobs (never a path from the request)."""

    @app.get("/api/predictions")
    def predictions():
        return [
            {"folder": index, "name": folder.name, "case": number, "case_id": entry["case_id"]}
            for index, folder in enumerate(prediction_dirs)
            for number, entry in enumerate(read_case_index(folder))
        ]

    @app.post("/api/predictions/{folder}/{case}", status_code=202)
    def open_saved(folder: int, case: int, request: Request, response: Response):
        if not 0 <= folder < len(prediction_dirs):
            raise HTTPException(404, "no such prediction folder")
        entries = read_case_index(prediction_dirs[folder])
        if not 0 <= case < len(entries):
            raise HTTPException(404, "no such case")
        try:
            title = f"{prediction_dirs[folder].name}/{entries[case]['case_id']}"
            job = jobs.new_job(title, sessions.owner(request, response, start=True))
        except Busy as busy:
            raise HTTPException(503, f"the server is busy ({busy}); try again in a few minutes") from None
        jobs.submit(job, open_prediction(prediction_dirs[folder], entries[case]))
        return job.public()
