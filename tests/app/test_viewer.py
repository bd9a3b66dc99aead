"""The viewer's server: uploads become jobs that segment; bad or hostile uploads are refused with nothing kept."""

import gzip
import io
import threading
import time
import zipfile

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import PHANTOM_RUN_SHAPE, glioseg_cli, serving
from glioseg.app.uploads import safe_name, sniff
from glioseg.app.viewer import create_app
from glioseg.core.config import UploadLimits
from glioseg.datasets.cases import find_cases
from glioseg.inference.predict import load_model


@pytest.fixture(scope="module")
def model(tiny_runs):
    return load_model(tiny_runs(0), "cpu")


@pytest.fixture(scope="module")
def case_files(cohort_factory):
    return find_cases(cohort_factory("brats2021", cases=2, seed=7, shape=PHANTOM_RUN_SHAPE))


def make_client(model, tmp_path, **kwargs):
    return TestClient(create_app(lambda: model, work=tmp_path / "work", **kwargs))


def upload(client, named_bytes):
    return client.post("/api/jobs", files=[("files", (name, data)) for name, data in named_bytes])


def case_upload(files):
    return [(path.name, path.read_bytes()) for path in files.images]


def wait(client, job_id, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {seconds} s")


def job_folders(tmp_path):
    return sorted(p.name for p in (tmp_path / "work").iterdir()) if (tmp_path / "work").exists() else []


def test_an_uploaded_case_is_segmented_like_predict_does(model, case_files, tmp_path):
    client = make_client(model, tmp_path)
    files = case_files[0]
    response = upload(client, case_upload(files))
    assert response.status_code == 202, response.text
    job = wait(client, response.json()["id"])
    assert job["status"] == "done", job
    expected = model.predict(glioseg_read(files))
    assert job["volumes_ml"] == {k: round(v, 2) for k, v in expected.volumes_ml.items()}
    assert job["review"] == expected.review.row()  # the page's banner shows it when the flag is up
    mask = client.get(f"/api/jobs/{job['id']}/files/segmentation")
    assert mask.status_code == 200
    written = nib.Nifti1Image.from_bytes(gzip.decompress(mask.content))
    truth = nib.load(files.images[0])
    np.testing.assert_array_equal(written.affine, truth.affine)
    assert set(np.unique(np.asarray(written.dataobj)).tolist()) <= {0, 1, 2, 4}  # the upload's BraTS convention
    np.testing.assert_array_equal(files.convention.to_internal(np.asarray(written.dataobj)), expected.label)
    for name in ("FLAIR", "overlay"):
        assert client.get(f"/api/jobs/{job['id']}/files/{name}").status_code == 200
    assert client.get(f"/api/jobs/{job['id']}/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get(f"/api/jobs/{job['id']}/files/config").status_code == 404
    assert not (tmp_path / "work" / job["id"] / "input").exists()  # uploads are deleted once read


def glioseg_read(files):
    from glioseg.datasets.cases import read_case

    return read_case(files)


def test_an_upload_lacking_a_sequence_is_segmented_without_it_and_flagged(model, case_files, tmp_path):
    client = make_client(model, tmp_path)
    files = case_files[0]
    lacking = [path for path in files.images if not path.name.endswith("_t2.nii.gz")]
    job = wait(client, upload(client, [(path.name, path.read_bytes()) for path in lacking]).json()["id"])
    assert job["status"] == "done", job
    expected = model.predict(glioseg_read(files), without=("T2",))
    assert job["volumes_ml"] == {k: round(v, 2) for k, v in expected.volumes_ml.items()}
    assert job["review"]["absent"] == "T2" and job["review"]["review_advised"]  # the page's banner says so
    two_lacking = [path for path in lacking if not path.name.endswith("_t1.nii.gz")]
    refused = upload(client, [(path.name, path.read_bytes()) for path in two_lacking])
    assert refused.status_code == 400 and "images missing" in refused.text


def test_a_zipped_case_folder_and_an_msd_4d_file_are_accepted(model, case_files, cohort_factory, tmp_path):
    client = make_client(model, tmp_path)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in case_files[1].images:
            zipped.write(path, f"{case_files[1].case_id}/{path.name}")
        zipped.writestr("__MACOSX/._junk", b"x")
    first = upload(client, [("case.zip", archive.getvalue())])
    msd = find_cases(cohort_factory("msd", cases=1, seed=7, shape=PHANTOM_RUN_SHAPE))[0]
    second = upload(client, [(msd.images[0].name, msd.images[0].read_bytes())])
    for response, case_id in ((first, case_files[1].case_id), (second, msd.case_id)):
        assert response.status_code == 202, response.text
        job = wait(client, response.json()["id"])
        assert job["status"] == "done" and job["case_id"] == case_id, job


def zip_of(entries):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries:
            zipped.writestr(name, data)
    return archive.getvalue()


def nifti_bytes(shape=(4, 4, 4)):
    return gzip.compress(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)).to_bytes())


HOSTILE = {
    "not NIfTI content under a NIfTI name": [("case_flair.nii.gz", b"#!/bin/sh\nrm -rf /\n" * 30)],
    "a script": [("run.sh", b"echo hi")],
    "a NIfTI under a zip name": [("case.zip", nifti_bytes())],
    "zip-slip": [("case.zip", zip_of([("../../evil_flair.nii.gz", nifti_bytes())]))],
    "absolute zip entry": [("case.zip", zip_of([("/tmp/evil_flair.nii.gz", nifti_bytes())]))],
    "zip bomb": [("case.zip", zip_of([("bomb_flair.nii.gz", b"\0" * (3 * 1024**2))]))],
    "zip with a non-NIfTI file": [("case.zip", zip_of([("notes.txt", b"hello")]))],
    "four modalities without BraTS names": [(f"scan{i}.nii.gz", nifti_bytes()) for i in range(4)],
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_or_wrong_uploads_are_refused_and_leave_nothing(model, tmp_path, name):
    limits = UploadLimits(max_unpacked_bytes=2 * 1024**2)
    client = make_client(model, tmp_path, limits=limits)
    response = upload(client, HOSTILE[name])
    assert response.status_code == 400 and "Fix:" in response.json()["detail"], response.text
    assert job_folders(tmp_path) == []
    assert not list(tmp_path.rglob("evil*"))


def test_size_and_count_limits(model, tmp_path):
    client = make_client(model, tmp_path, limits=UploadLimits(max_upload_mb=100_000 / 1024**2, max_files=3))
    big = upload(client, [("big_flair.nii.gz", b"\x1f\x8b" + b"\0" * 200_000)])
    assert big.status_code == 413
    many = upload(client, [(f"c_{i}.nii.gz", nifti_bytes()) for i in range(5)])
    assert many.status_code == 400
    assert job_folders(tmp_path) == []


def test_uploaded_names_cannot_leave_the_job_folder():
    assert safe_name("../../etc/x_flair.nii.gz") == "x_flair.nii.gz"
    assert safe_name("C:\\Users\\me\\scan t1.nii") == "scan_t1.nii"
    assert safe_name("..hidden_t2.nii.gz") == "hidden_t2.nii.gz"
    with pytest.raises(Exception, match="file name"):
        safe_name("/etc/passwd")
    assert sniff(nifti_bytes()[:4096]) == "nifti-gz" and sniff(b"PK\x03\x04rest") == "zip"
    assert sniff(gzip.compress(b"<html>" * 100)) == "unknown"


def test_old_jobs_are_cleaned_up(model, case_files, tmp_path):
    client = make_client(model, tmp_path, max_jobs=2)
    ids = []
    for _ in range(4):
        response = upload(client, case_upload(case_files[0]))
        ids.append(response.json()["id"])
        wait(client, ids[-1])
    assert len(job_folders(tmp_path)) <= 3  # the newest 2 plus the one just made
    assert client.get(f"/api/jobs/{ids[0]}").status_code == 404
    assert client.get(f"/api/jobs/{ids[-1]}").json()["status"] == "done"


def test_predictions_on_disk_are_listed_and_opened(tiny_runs, case_files, tmp_path):
    predictions = tmp_path / "predictions"
    source = case_files[0].images[0].parent.parent
    assert glioseg_cli("predict", tiny_runs(0), source, "--out", predictions).returncode == 0
    client = TestClient(create_app(None, [predictions], work=tmp_path / "work"))
    listed = client.get("/api/predictions").json()
    assert [e["case_id"] for e in listed] == [f.case_id for f in case_files]
    refused = upload(client, case_upload(case_files[0]))
    assert refused.status_code == 409  # a viewing-only server does not segment
    opened = client.post(f"/api/predictions/0/{listed[1]['case']}")
    job = wait(client, opened.json()["id"])
    assert job["status"] == "done" and job["case_id"] == case_files[1].case_id
    assert client.post("/api/predictions/0/99").status_code == 404
    assert client.post("/api/predictions/5/0").status_code == 404


def test_twenty_concurrent_uploads_all_finish_while_the_page_stays_responsive(model, case_files, tmp_path):
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    payload = case_upload(case_files[0])
    limits = UploadLimits(max_waiting_jobs=20)
    with serving(create_app(lambda: model, work=tmp_path / "work", limits=limits)) as url:
        latencies: list[float] = []
        stop = threading.Event()

        def watch_page():
            with httpx.Client(base_url=url) as client:
                while not stop.is_set():
                    start = time.perf_counter()
                    assert client.get("/").status_code == 200 and client.get("/api/jobs").status_code == 200
                    latencies.append(time.perf_counter() - start)
                    time.sleep(0.05)

        def send(_):
            files = [("files", (name, data)) for name, data in payload]
            return httpx.post(f"{url}/api/jobs", files=files, timeout=60).json()["id"]

        watcher = threading.Thread(target=watch_page)
        watcher.start()
        with ThreadPoolExecutor(20) as pool:
            ids = list(pool.map(send, range(20)))
        with httpx.Client(base_url=url) as client:
            deadline = time.time() + 240
            while time.time() < deadline:
                states = [client.get(f"/api/jobs/{i}").json()["status"] for i in ids]
                if all(state == "done" for state in states):
                    break
                time.sleep(0.2)
        stop.set()
        watcher.join()
    assert states == ["done"] * 20
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"20 uploads, {len(latencies)} page loads during them, p95 {p95 * 1000:.0f} ms")
    assert p95 < 2.0, p95


def test_no_endpoint_serves_a_path_from_the_request(model, tmp_path):
    client = make_client(model, tmp_path)
    assert client.get("/static/niivue.umd.js").status_code == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2F..%2F..%2Fpyproject.toml",
                 "/api/jobs/..%2F..%2Fetc/files/passwd", "/api/predictions/0/..%2F..%2Fetc%2Fpasswd"):  # fmt: skip
        response = client.get(path)
        assert response.status_code in (404, 405, 422), (path, response.status_code)
        assert "create_app" not in response.text and "root:" not in response.text


def corrupted_zip(case_files) -> bytes:
    """A zip of a case whose first entry's compressed bytes were damaged near its end (past the part glioseg sniffs):
    its CRC check fails while unpacking."""
    data = bytearray(zip_of([(p.name, p.read_bytes()) for p in case_files[0].images]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zipped:
        entry = zipped.infolist()[0]
    end = entry.header_offset + 30 + len(entry.filename) + len(entry.extra) + entry.compress_size
    for offset in range(end - 300, end - 100):
        data[offset] ^= 0x55
    return bytes(data)


def encrypted_zip(case_files) -> bytes:
    """A zip whose entries are marked encrypted (the flag a password-protected zip sets in every entry's headers)."""
    data = bytearray(zip_of([(p.name, p.read_bytes()) for p in case_files[0].images]))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        start = data.find(signature)
        while start != -1:
            data[start + flag_offset] |= 0x1
            start = data.find(signature, start + 4)
    return bytes(data)


@pytest.mark.parametrize(("make", "message"), [(corrupted_zip, "cannot unpack"), (encrypted_zip, "encrypted")])
def test_a_damaged_or_encrypted_zip_is_refused_and_no_job_stays_queued(model, case_files, tmp_path, make, message):
    client = make_client(model, tmp_path)
    response = upload(client, [("case.zip", make(case_files))])
    assert response.status_code == 400 and message in response.json()["detail"], response.text
    assert client.get("/api/jobs").json() == [] and job_folders(tmp_path) == []


def test_a_full_disk_ends_the_job_as_failed_with_the_reason(model, case_files, tmp_path, monkeypatch):
    import errno

    import glioseg.app.viewer as viewer_app

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(viewer_app, "receive_upload", disk_full)
    client = make_client(model, tmp_path)
    response = upload(client, case_upload(case_files[0]))
    assert response.status_code == 500 and "No space left" in response.json()["detail"]
    [job] = client.get("/api/jobs").json()
    assert job["status"] == "failed" and "No space left" in job["error"]  # never "queued" for ever


def test_the_queue_is_bounded_in_waiting_jobs_and_disk(case_files, tmp_path):
    """While a job runs, at most max_waiting_jobs wait; more are refused with 503, nothing stored for them. A disk
    budget too small for the upload refuses it too; finished jobs are deleted first to make room."""
    release = threading.Event()

    class Slow:
        def predict(self, case):
            release.wait(60)
            raise RuntimeError("stopped")

    client = make_client(Slow(), tmp_path, limits=UploadLimits(max_waiting_jobs=2))
    accepted = [upload(client, case_upload(case_files[0])) for _ in range(3)]  # one runs, two wait
    assert [r.status_code for r in accepted] == [202] * 3
    deadline = time.time() + 30
    while client.get(f"/api/jobs/{accepted[0].json()['id']}").json()["status"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    refused = upload(client, case_upload(case_files[0]))
    assert refused.status_code == 503 and "busy" in refused.json()["detail"]
    assert len(job_folders(tmp_path)) == 3
    release.set()
    for response in accepted:
        assert wait(client, response.json()["id"])["status"] == "failed"
    tiny = make_client(Slow(), tmp_path / "tiny", limits=UploadLimits(max_stored_mb=0.01))
    assert upload(tiny, case_upload(case_files[0])).status_code == 503


def test_beyond_loopback_each_browser_sees_only_its_own_jobs(model, case_files, tmp_path):
    app = create_app(lambda: model, work=tmp_path / "work", private=True)
    alice, bob, mallory = TestClient(app), TestClient(app), TestClient(app)
    assert alice.get("/").status_code == 200 and "glioseg_session" in alice.cookies
    job = upload(alice, case_upload(case_files[0])).json()
    assert wait(alice, job["id"])["status"] == "done"
    bob.get("/")
    assert bob.cookies["glioseg_session"] != alice.cookies["glioseg_session"]
    assert bob.get("/api/jobs").json() == [] and bob.get(f"/api/jobs/{job['id']}").status_code == 404
    assert bob.get(f"/api/jobs/{job['id']}/files/segmentation").status_code == 404
    mallory.cookies.set("glioseg_session", "guessed-token")
    assert mallory.get("/api/jobs").json() == [] and mallory.get(f"/api/jobs/{job['id']}").status_code == 404
    assert [j["id"] for j in alice.get("/api/jobs").json()] == [job["id"]]
    assert alice.get(f"/api/jobs/{job['id']}/files/segmentation").status_code == 200


def test_a_client_dripping_an_upload_does_not_stall_the_others(model, tmp_path):
    """A hostile client that sends headers promising 100 MB and then a trickle: other clients are served at once,
    and no job exists for the unfinished upload."""
    import socket
    from urllib.parse import urlparse

    import httpx

    with serving(create_app(lambda: model, work=tmp_path / "work")) as url:
        address = urlparse(url)
        drip = socket.create_connection((address.hostname, address.port))
        drip.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                     b"Content-Length: 100000000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"files\"; "
                     b"filename=\"a_flair.nii.gz\"\r\n\r\n" + b"\x1f\x8b" + b"\0" * 1000)  # fmt: skip
        try:
            with httpx.Client(base_url=url, timeout=5) as client:
                for _ in range(5):
                    assert client.get("/api/info").status_code == 200
                    drip.sendall(b"\0" * 100)
                assert client.get("/api/jobs").json() == []
        finally:
            drip.close()


def test_the_job_list_is_read_whole_while_jobs_come_and_go(tmp_path):
    """Listing jobs while others are created and deleted never sees a half-changed list (it is read under a lock)."""
    from glioseg.app.viewer import JobQueue

    jobs = JobQueue(tmp_path, UploadLimits(max_waiting_jobs=10_000), max_jobs=10_000)
    errors, stop = [], threading.Event()

    def churn():
        while not stop.is_set():
            jobs.discard(jobs.new_job("x"))

    def read():
        try:
            while not stop.is_set():
                jobs.snapshot()
        except Exception as error:  # RuntimeError: dictionary changed size during iteration
            errors.append(error)

    threads = [threading.Thread(target=churn) for _ in range(3)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []


def test_the_viewer_reads_smaller_volumes_than_the_command_line(model, case_files, tmp_path):
    client = make_client(model, tmp_path, limits=UploadLimits(max_voxels=1000))
    job = wait(client, upload(client, case_upload(case_files[0])).json()["id"])
    assert job["status"] == "failed" and "voxels per volume" in job["error"]


def test_disk_use_counts_past_files_that_other_jobs_remove_meanwhile(tmp_path, monkeypatch):
    """The viewer sums its jobs' folders while other jobs unpack and delete (twenty uploads at once failed so)."""
    import os

    from glioseg.app.viewer import folder_bytes

    (tmp_path / "job" / "upload").mkdir(parents=True)
    (tmp_path / "job" / "kept.nii.gz").write_bytes(b"x" * 100)
    (tmp_path / "job" / "upload" / "gone.nii.gz").write_bytes(b"x" * 50)
    real_stat = os.stat

    def stat_then_removed(path, *args, **kwargs):  # another job deletes the file just after glioseg looked at it
        found = real_stat(path, *args, **kwargs)
        if str(path).endswith("gone.nii.gz"):
            os.unlink(path)
        return found

    monkeypatch.setattr(os, "stat", stat_then_removed)
    assert folder_bytes(tmp_path) == 150  # each file as it was when measured; no error for the one gone since
    assert folder_bytes(tmp_path) == 100
    assert folder_bytes(tmp_path / "missing") == 0
