"""`glioseg sample-data` against a local HTTP server that serves ../shared/data like the public source."""

import http.server
import subprocess
import sys
import threading

import pytest

from glioseg.errors import InputError
from glioseg.sample_data import fetch_sample, manifest, sha256


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support (``bytes=N-``), as the public host has."""

    ranges: list[str] = []

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        header = self.headers.get("Range")
        if not header:
            return super().send_head()
        type(self).ranges.append(header)
        start = int(header.removeprefix("bytes=").rstrip("-"))
        data = open(path, "rb").read()
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        import io

        return io.BytesIO(data[start:])


@pytest.fixture
def server(brats2018_sample):
    RangeHandler.ranges = []

    def handler(*args, **kwargs):
        return RangeHandler(*args, directory=str(brats2018_sample), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_manifest_lists_the_12_cases():
    files = manifest()
    assert len(files) == 60 and len({path.split("/")[0] for path, _ in files}) == 12


def test_download_verifies_and_resumes(server, tmp_path):
    out = tmp_path / "sample"
    first, digest = manifest()[0]
    part = out / (first + ".part")
    result = subprocess.run(
        [sys.executable, "-m", "glioseg", "sample-data", str(out), "--url", server],
        capture_output=True,
        text=True,
        timeout=300,
        input="",
    )
    assert result.returncode == 0, result.stderr
    assert RangeHandler.ranges == []  # nothing to resume on a fresh download
    target = out / first
    data = target.read_bytes()
    assert sha256(target) == digest
    # interrupt: keep a third of the first file as .part, delete the final file, run again
    target.unlink()
    part.write_bytes(data[: len(data) // 3])
    fetch_sample(out, source_url=server, progress=False)
    assert RangeHandler.ranges == [f"bytes={len(data) // 3}-"]
    assert sha256(target) == digest and not part.exists()
    assert all(sha256(out / path) == expected for path, expected in manifest())


def test_corrupt_download_is_refused_and_removed(server, tmp_path, monkeypatch):
    out = tmp_path / "sample"
    first, _ = manifest()[0]
    monkeypatch.setattr("glioseg.sample_data.manifest", lambda: [(first, "0" * 64)])
    with pytest.raises(InputError, match="checksum mismatch"):
        fetch_sample(out, source_url=server, progress=False)
    assert not (out / first).exists() and not (out / (first + ".part")).exists()


def test_copy_from_local_folder(brats2018_sample, tmp_path):
    out = tmp_path / "copy"
    files = fetch_sample(out, from_dir=brats2018_sample, progress=False)
    assert len(files) == 60
    assert all(sha256(out / path) == expected for path, expected in manifest())


def test_unreachable_source_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "glioseg", "sample-data", str(tmp_path / "s"), "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "download failed" in result.stderr and "rerun the same command to resume" in result.stderr
