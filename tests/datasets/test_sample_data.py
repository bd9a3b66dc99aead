"""`glioseg sample-data` against a local HTTP server that serves ../shared/data like the public source."""

import gzip
import http.server
import lzma
import subprocess
import sys
import threading

import pytest

from conftest import real_data
from glioseg.core.errors import InputError
from glioseg.datasets.sample_data import fetch_sample, manifest, sha256


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


def test_manifest_lists_the_12_cases_and_with_all_28():
    files = manifest()
    assert len(files) == 60 and len({f.path.split("/")[0] for f in files}) == 12
    every = manifest(extra=True)
    assert len(every) == 140 and len({f.path.split("/")[0] for f in every}) == 28
    assert {f.source for f in every[60:]} == {"bioexp", "brainy"} and all(f.content_digest for f in every[60:])


def test_download_verifies_and_resumes(server, tmp_path):
    out = tmp_path / "sample"
    first, digest = manifest()[0][:2]
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
    assert all(sha256(out / f.path) == f.digest for f in manifest())


def test_corrupt_download_is_refused_and_removed(server, tmp_path, monkeypatch):
    out = tmp_path / "sample"
    entry = manifest()[0]
    monkeypatch.setattr("glioseg.datasets.sample_data.manifest", lambda extra: [entry._replace(digest="0" * 64)])
    with pytest.raises(InputError, match="checksum mismatch"):
        fetch_sample(out, source_url=server, progress=False)
    assert not (out / entry.path).exists() and not (out / (entry.path + ".part")).exists()


def test_copy_from_local_folder(brats2018_sample, tmp_path):
    out = tmp_path / "copy"
    files = fetch_sample(out, from_dir=brats2018_sample, progress=False)
    assert len(files) == 60
    assert all(sha256(out / f.path) == f.digest for f in manifest())


def test_extra_cases_from_a_copy_gzipped_anew(tmp_path, monkeypatch):
    """An extra case as `unpack-extra-data` writes it (the same NIfTI, other gzip bytes) is accepted by its content;
    a changed voxel is not."""
    extra = real_data("brats2018-extra")
    case = "Brats18_TCIA05_396_1"
    local = tmp_path / "local" / case
    local.mkdir(parents=True)
    for packed in sorted((extra / case).glob("*.nii.xz")):
        (local / packed.name.replace(".nii.xz", ".nii.gz")).write_bytes(
            gzip.compress(lzma.decompress(packed.read_bytes()))
        )
    entries = [f for f in manifest(extra=True) if f.path.startswith(case)]
    assert len(entries) == 5 and all(sha256(local.parent / f.path) != f.digest for f in entries)  # other bytes
    monkeypatch.setattr("glioseg.datasets.sample_data.manifest", lambda extra: entries)
    files = fetch_sample(tmp_path / "out", from_dir=local.parent, progress=False, extra=True)
    assert len(files) == 5
    seg = local / f"{case}_seg.nii.gz"
    data = bytearray(gzip.decompress(seg.read_bytes()))
    data[-1] ^= 1
    seg.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(InputError, match="checksum mismatch"):
        fetch_sample(tmp_path / "out2", from_dir=local.parent, progress=False, extra=True)


def test_unreachable_source_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "glioseg", "sample-data", str(tmp_path / "s"), "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "download failed" in result.stderr and "rerun the same command to resume" in result.stderr
