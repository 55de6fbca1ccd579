"""Isolation: ids from a browser never reach a file outside the dataset.

tests/data pins ``Dataset.resolve`` for ``../``, absolute, Windows and non-canonical ids and
for symlinked files leading out. Added here: percent-encoded and NUL ids at the API (ids are
never URL-decoded a second time, so ``%2e%2e`` is just an unknown name), a symlinked
*folder* leading out, and the same ids sent in the served gallery's URL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from xai_panel.data import open_dataset

REPO = Path(__file__).resolve().parents[2]
MARKER = "XAI-PANEL-SECRET-7f3a9c"


@pytest.fixture
def tree(tmp_path):
    """A dataset folder, a secret file beside it, and symlinks (a file and a folder) to it."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(root / "cat.png")
    secret = outside / "secret.png"
    secret.write_text(f"{MARKER} root:x:0:0\n")
    Image.new("RGB", (32, 32), (30, 30, 200)).save(outside / "private.png")
    os.symlink(outside / "private.png", root / "link.png")
    os.symlink(outside, root / "linked_folder")
    return root, secret


@pytest.mark.parametrize("evil_id", [
    "%2e%2e/outside/secret.png",
    "%2e%2e%2foutside%2fsecret.png",
    "..%2Foutside%2Fsecret.png",
    "cat.png\0../outside/secret.png",
    "linked_folder/private.png",
    "link.png",
    "file:///etc/passwd",
    "~/.ssh/id_rsa",
])
def test_resolve_never_returns_a_path_outside(tree, evil_id):
    root, _ = tree
    dataset = open_dataset(root)
    assert [r.id for r in dataset] == ["cat.png"]  # the symlinks out were not scanned
    with pytest.raises((KeyError, ValueError)):
        dataset.resolve(evil_id)


# --- the served gallery ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 120) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode("utf-8", "replace")


@pytest.fixture
def gallery_server(tree, tmp_path):
    root, _ = tree
    dashboard = REPO / "dashboards" / "gallery.py"
    if not dashboard.is_file():
        pytest.skip("dashboards/gallery.py is not there")
    port = _free_port()
    log = open(tmp_path / "server.log", "w+")
    env = {**os.environ, "XAI_PANEL_DATA": str(root), "XAI_PANEL_STORE": str(tmp_path / "store.sqlite")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(dashboard), "--port", str(port), "--address", "127.0.0.1",
         f"--allow-websocket-origin=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"panel serve did not start:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        yield base, proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


_PULL_DOCUMENT = """
import json, sys
import panel.models  # registers the model types the document holds
import xai_panel.components  # and this project's own models
from bokeh.client import pull_session
with pull_session(url=sys.argv[1], arguments={"image": sys.argv[2]}) as session:
    sys.stdout.write(json.dumps(session.document.to_json(deferred=False), default=str))
"""


def _document_text(base: str, image_id: str) -> str:
    """The whole server-side document a browser receives over the websocket, as JSON text
    (the HTML page alone holds no content: panel sends the models after connecting).
    Pulled in a subprocess: bokeh's client needs an event loop of its own, and earlier tests
    in the same pytest process (Playwright) may have one running."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PULL_DOCUMENT, f"{base}/gallery", image_id],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_gallery_url_with_traversal_ids_loads_without_leaking(gallery_server, tree):
    base, proc, log = gallery_server
    _, secret = tree
    assert "cat.png" in _document_text(base, "cat.png")  # the document does show a legitimate id

    # Each session runs the dashboard script afresh (~20-30 s on 2 shared cores): a few ids only.
    evil = ["../../etc/passwd", f"{secret}", "%2e%2e%2foutside%2fsecret.png", "linked_folder/private.png"]
    for image_id in evil:
        status, html = _get(f"{base}/gallery?" + urllib.parse.urlencode({"image": image_id}))
        assert status == 200 and MARKER not in html and "root:x:0:0" not in html, image_id
        text = _document_text(base, image_id)
        assert MARKER not in text and "root:x:0:0" not in text, image_id
    status, html = _get(f"{base}/gallery?image=%2e%2e%2f%2e%2e%2fetc%2fpasswd")  # decoded exactly once
    assert status == 200 and "root:x:0:0" not in html
    assert proc.poll() is None
    log.flush()
    log.seek(0)
    text = log.read()
    assert "Traceback" not in text, text[-3000:]
