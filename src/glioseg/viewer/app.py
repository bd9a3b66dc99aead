"""`glioseg serve`: a web viewer (FastAPI + NiiVue) where a user uploads a case, follows the job, and explores the
segmentation over any modality in three planes and 3D; predictions already on disk open the same way.

Jobs run one at a time on a background thread, so the page stays responsive while a case is segmented. Each
job owns one folder under the server's work folder; only the files a job wrote are served, by fixed names,
never a path from the request. Old job folders are deleted when the number of jobs passes ``max_jobs`` and
when the server stops.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from glioseg.config import UploadLimits
from glioseg.errors import InputError
from glioseg.labels import CLASS_NAMES, STRUCTURE_NAMES, LabelConvention, convention_from_record
from glioseg.layouts import MODALITIES, locate_case
from glioseg.predict import read_case_index
from glioseg.viewer.uploads import arrange_case, store_upload, unpack_zip

STATIC = Path(__file__).parent / "static"
VIEW_FILES = (*MODALITIES, "overlay", "segmentation")  # what a finished job serves, as <name>.nii.gz


@dataclass
class Job:
    """One uploaded case (or a prediction on disk) on its way to the viewer."""

    id: str
    folder: Path
    title: str
    status: str = "queued"  # queued | running | done | failed
    stage: str = "waiting for earlier jobs"
    error: str | None = None
    case_id: str | None = None
    volumes_ml: dict[str, float] = field(default_factory=dict)
    centre_mm: list[float] | None = None
    created: float = field(default_factory=time.time)

    def public(self) -> dict:
        return {
            "id": self.id, "title": self.title, "status": self.status, "stage": self.stage, "error": self.error,
            "case_id": self.case_id, "volumes_ml": self.volumes_ml, "centre_mm": self.centre_mm,
            "files": list(VIEW_FILES) if self.status == "done" else [],
        }  # fmt: skip


class JobQueue:
    """Runs job functions one at a time, in submission order, on a daemon thread."""

    def __init__(self, work: Path, max_jobs: int = 50) -> None:
        self.work, self.max_jobs = work, max_jobs
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], None]]] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="glioseg-jobs").start()

    def new_job(self, title: str) -> Job:
        job_id = uuid.uuid4().hex
        folder = self.work / job_id
        folder.mkdir(parents=True)
        job = Job(job_id, folder, title)
        with self._lock:
            self.jobs[job_id] = job
        self._forget_old()
        return job

    def submit(self, job: Job, work: Callable[[Job], None]) -> None:
        self._queue.put((job, work))

    def fail(self, job: Job, message: str) -> None:
        job.status, job.stage, job.error = "failed", "failed", message
        shutil.rmtree(job.folder / "input", ignore_errors=True)

    def discard(self, job: Job) -> None:
        with self._lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

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

    def _forget_old(self) -> None:
        with self._lock:
            finished = sorted(
                (j for j in self.jobs.values() if j.status in ("done", "failed")), key=lambda j: j.created
            )
            for job in finished[: max(len(self.jobs) - self.max_jobs, 0)]:
                del self.jobs[job.id]
                shutil.rmtree(job.folder, ignore_errors=True)


def write_view_files(job: Job, case, label: np.ndarray, convention: LabelConvention) -> None:
    """The files the page loads: each modality, the internal-class overlay and the mask in the user's convention."""
    from glioseg.io import atomic_path, nifti_like, write_label
    from glioseg.metrics import volumes_ml

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


def segment_upload(model_loader: Callable[[], object], source: Path) -> Callable[[Job], None]:
    """The job function of an upload arranged at ``source``: read the case, segment it, write the viewer's files."""

    def work(job: Job) -> None:
        from glioseg.io import read_case

        job.stage = "reading the case"
        files = locate_case(source)
        case = read_case(files)
        job.stage = "loading the model"
        model = model_loader()
        job.stage = "segmenting"
        prediction = model.predict(case)  # type: ignore[attr-defined]
        write_view_files(job, case, prediction.label, files.convention)

    return work


def open_prediction(pred_dir: Path, entry: dict) -> Callable[[Job], None]:
    """The job function that shows a prediction already on disk (from its folder's ``cases.json``)."""

    def work(job: Job) -> None:
        from glioseg.io import read_case

        job.stage = "reading the case"
        case = read_case(entry["source"])
        convention = convention_from_record(entry["mask_convention"])
        label = convention.to_internal(np.asarray(nib.load(pred_dir / entry["mask"]).dataobj))
        write_view_files(job, case, label, convention)

    return work


def create_app(
    model_loader: Callable[[], object] | None,
    prediction_dirs: Sequence[Path] = (),
    work: Path | None = None,
    limits: UploadLimits = UploadLimits(),
    max_jobs: int = 50,
):
    """The FastAPI application. ``model_loader`` is called once, at the first upload (None: viewing only)."""

    owned = work is None
    work = Path(tempfile.mkdtemp(prefix="glioseg-serve-")) if work is None else Path(work)
    jobs = JobQueue(work, max_jobs)
    loaded: list = []
    load_lock = threading.Lock()

    def load_once():
        with load_lock:
            if not loaded:
                loaded.append(model_loader())  # type: ignore[misc]
            return loaded[0]

    def cleanup():
        if owned:
            shutil.rmtree(work, ignore_errors=True)

    app = FastAPI(title="glioseg viewer", on_shutdown=[cleanup], docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.jobs = jobs

    @app.get("/")
    def page():
        return FileResponse(STATIC / "viewer.html", media_type="text/html")

    @app.get("/favicon.ico", status_code=204)
    def favicon():
        return None

    @app.get("/api/info")
    def info():
        return {"can_segment": model_loader is not None, "modalities": MODALITIES, "classes": CLASS_NAMES,
                "structures": STRUCTURE_NAMES, "max_upload_mb": limits.max_bytes // 1024**2}  # fmt: skip

    @app.post("/api/jobs", status_code=202)
    async def upload(request: Request):
        if model_loader is None:
            raise HTTPException(409, "this server was started without a model; it only shows predictions")
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise HTTPException(411, "send the upload with a Content-Length")
        if int(length) > limits.max_bytes:
            raise HTTPException(413, f"the upload is over {limits.max_bytes // 1024**2} MB; upload one case")
        form = await request.form(max_files=limits.max_files, max_fields=limits.max_files)
        uploads = [value for value in form.getlist("files") if hasattr(value, "filename")]
        if not uploads:
            raise HTTPException(400, "no files: upload four NIfTI modalities, one 4D NIfTI or a zip of a case")
        job = jobs.new_job(title=", ".join(str(u.filename) for u in uploads)[:200])
        inbox = job.folder / "input" / "upload"
        inbox.mkdir(parents=True)
        try:
            budget = [limits.max_unpacked_bytes]
            stored = [store_upload(u.file, str(u.filename), inbox, budget) for u in uploads]
            niftis = [p for p in stored if not p.name.lower().endswith(".zip")]
            for archive in (p for p in stored if p.name.lower().endswith(".zip")):
                niftis += unpack_zip(archive, inbox, limits)
            source = arrange_case(niftis, job.folder / "input" / "case")
            locate_case(source)  # names and modalities complete: refuse now rather than fail the job later
        except InputError as error:
            jobs.discard(job)  # nothing of a refused upload stays on disk
            return JSONResponse({"detail": f"{error.path}: {error.problem}. Fix: {error.fix}"}, status_code=400)
        finally:
            await form.close()
        jobs.submit(job, segment_upload(load_once, source))
        return job.public()

    @app.get("/api/jobs")
    def list_jobs():
        return [job.public() for job in sorted(jobs.jobs.values(), key=lambda j: j.created)]

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return job.public()

    @app.get("/api/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str):
        job = jobs.get(job_id)
        if job is None or job.status != "done" or name not in VIEW_FILES:
            raise HTTPException(404, "no such file")
        filename = f"{job.case_id}_segmentation.nii.gz" if name == "segmentation" else f"{name}.nii.gz"
        return FileResponse(job.folder / "view" / f"{name}.nii.gz", media_type="application/gzip",
                            filename=filename)  # fmt: skip

    @app.get("/api/predictions")
    def predictions():
        return [
            {"folder": index, "name": folder.name, "case": number, "case_id": entry["case_id"]}
            for index, folder in enumerate(prediction_dirs)
            for number, entry in enumerate(read_case_index(folder))
        ]

    @app.post("/api/predictions/{folder}/{case}", status_code=202)
    def open_saved(folder: int, case: int):
        if not 0 <= folder < len(prediction_dirs):
            raise HTTPException(404, "no such prediction folder")
        entries = read_case_index(prediction_dirs[folder])
        if not 0 <= case < len(entries):
            raise HTTPException(404, "no such case")
        job = jobs.new_job(title=f"{prediction_dirs[folder].name}/{entries[case]['case_id']}")
        jobs.submit(job, open_prediction(prediction_dirs[folder], entries[case]))
        return job.public()

    return app
