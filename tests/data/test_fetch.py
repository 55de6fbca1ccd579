"""fetch_imagenette against a real HTTP server on loopback, serving archives built here."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from xai_panel.data import DatasetError, FetchError, fetch_imagenette, open_dataset


class _ArchiveServer(ThreadingHTTPServer):
    """Serves ``routes[path] = (body, declared Content-Length)`` and counts requests."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[bytes, int]] = {}
        self.requests: list[str] = []

    def serve(self, path: str, body: bytes, declared_length: int | None = None) -> str:
        self.routes[path] = (body, len(body) if declared_length is None else declared_length)
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _ArchiveServer

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path not in self.server.routes:
            self.send_error(404, "Not Found")
            return
        body, declared_length = self.server.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Content-Length", str(declared_length))
        self.end_headers()
        self.wfile.write(body)  # HTTP/1.0: the connection closes after the body

    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def server():
    server = _ArchiveServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _imagenette_tgz() -> bytes:
    return _tgz(
        [
            _file("imagenette2-160/noisy_imagenette.csv", b"path,noisy_labels_0\n"),
            _file("imagenette2-160/train/n01440764/n01440764_1.JPEG", _jpeg((200, 0, 0))),
            _file("imagenette2-160/train/n03000684/n03000684_2.JPEG", _jpeg((0, 200, 0))),
            _file("imagenette2-160/val/n03000684/ILSVRC2012_val_1.JPEG", _jpeg((0, 0, 200))),
        ]
    )


def test_fetch_extracts_an_openable_dataset_once(server, tmp_path):
    url = server.serve("/imagenette2-160.tgz", _imagenette_tgz())
    dest = tmp_path / "dest"
    root = fetch_imagenette(160, dest=dest, url=url, progress=False)
    assert root == dest / "imagenette2-160"
    assert sorted(p.name for p in dest.iterdir()) == ["imagenette2-160"]  # no archive or temp left
    dataset = open_dataset(root)
    assert dataset.labels() == {"tench": 1, "chain saw": 2}
    assert dataset.get("val/n03000684/ILSVRC2012_val_1.JPEG").load().shape == (8, 8, 3)
    # Idempotent: the second call neither downloads nor re-extracts.
    assert fetch_imagenette(160, dest=dest, url=url + "?unused", progress=True) == root
    assert server.requests == ["/imagenette2-160.tgz"]


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


@pytest.mark.parametrize(
    "evil_member, problem",
    [
        (_file("../evil", b"pwned"), "uses '..' to point outside the destination"),
        (_file("imagenette2-160/../../evil", b"pwned"), "uses '..' to point outside the destination"),
        (_file("/tmp/evil-absolute", b"pwned"), "has an absolute path"),
        (_link("imagenette2-160/evil", "../../evil", tarfile.SYMTYPE), "is a link to '../../evil'"),
        (_link("imagenette2-160/evil", "/etc/passwd", tarfile.SYMTYPE), "is a link to '/etc/passwd'"),
        (_link("imagenette2-160/evil", "../evil", tarfile.LNKTYPE), "is a hard link to '../evil'"),
        (_device("imagenette2-160/null"), "is a device, FIFO or other special file"),
    ],
)
def test_malicious_archive_is_refused_and_nothing_is_written(server, tmp_path, evil_member, problem):
    members = [_file("imagenette2-160/train/n01440764/a.JPEG", _jpeg((1, 2, 3))), evil_member]
    url = server.serve("/imagenette2-160.tgz", _tgz(members))
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match=rf"Refusing the archive: member '.*' {problem}"):
        fetch_imagenette(160, dest=dest, url=url, progress=False)
    assert list(dest.iterdir()) == []  # no archive, no partial file, no extraction
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]
    assert not Path("/tmp/evil-absolute").exists()


def test_truncated_download_is_detected(server, tmp_path):
    body = _imagenette_tgz()
    url = server.serve("/imagenette2-160.tgz", body, declared_length=len(body) + 1000)
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match=rf"incomplete: received {len(body):,} of {len(body) + 1000:,} bytes"):
        fetch_imagenette(160, dest=dest, url=url, progress=False)
    assert list(dest.iterdir()) == []


def test_complete_download_that_is_not_an_archive(server, tmp_path):
    url = server.serve("/imagenette2-320.tgz", b"<html>an error page, not a tarball</html>")
    with pytest.raises(FetchError, match="not a complete tar archive"):
        fetch_imagenette(320, dest=tmp_path, url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_reported(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/missing.tgz"
    with pytest.raises(FetchError, match=r"Could not download .*/missing\.tgz: the server answered 404"):
        fetch_imagenette(160, dest=tmp_path, url=url, progress=False)
    assert isinstance(FetchError("x"), DatasetError)


def test_only_published_sizes():
    with pytest.raises(ValueError, match="sizes 160 and 320, not 224"):
        fetch_imagenette(224)


def _fetch_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xai_panel", "fetch", "imagenette", *map(str, args)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "NO_COLOR": "1"})


def test_cli_fetch_downloads_extracts_and_prints_the_root(server, tmp_path):
    url = server.serve("/mirror/imagenette2-160.tgz", _imagenette_tgz())
    dest = tmp_path / "dest"
    result = _fetch_cli("--size", "160", "--dest", dest, "--url", url)
    assert result.returncode == 0, result.stderr
    root = dest / "imagenette2-160"
    assert result.stdout == f"{root}\n"  # the root alone on stdout, for scripts
    assert sorted(p.name for p in dest.iterdir()) == ["imagenette2-160"]
    dataset = open_dataset(root)
    assert dataset.labels() == {"tench": 1, "chain saw": 2}
    assert dataset.get("train/n01440764/n01440764_1.JPEG").load()[4, 4].tolist() == pytest.approx([200, 0, 0], abs=8)
    # Run again: the extracted folder is returned without a download.
    again = _fetch_cli("--size", "160", "--dest", dest, "--url", url)
    assert (again.returncode, again.stdout) == (0, f"{root}\n")
    assert server.requests == ["/mirror/imagenette2-160.tgz"]


def test_cli_fetch_failure_exits_1_with_the_reason_and_keeps_nothing(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/missing.tgz"
    result = _fetch_cli("--dest", tmp_path / "dest", "--url", url)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: could not fetch Imagenette: Could not download {url}: the server answered 404 Not Found.")
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "dest").iterdir()) == []
