"""A wheel install serves the apps: built here, installed with --no-deps into a fresh venv
that sees this environment's dependencies, served from a folder outside the checkout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_installed_wheel_serves_the_gallery_and_the_explorer(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(REPO)], check=True, timeout=600, capture_output=True)
    wheel = next(wheels.glob("xai_panel-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from this environment's site-packages, as a path entry: its .pth
    # files (the editable install of the checkout among them) are not run.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["XAI_PANEL_CACHE"] = str(tmp_path / "cache")
    where = subprocess.run([str(python), "-c", "import xai_panel; print(xai_panel.__file__)"], cwd=outside, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the wheel's package, not the checkout's

    port = _free_port()
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([str(venv / "bin" / "xai-panel"), "serve", "--port", str(port)], cwd=outside, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        pages = {}
        deadline = time.monotonic() + 240
        for app in ("gallery", "explorer"):
            while time.monotonic() < deadline and app not in pages:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{app}", timeout=60) as response:
                        pages[app] = (response.status, response.read().decode())
                except OSError:
                    time.sleep(1)
        for app in ("gallery", "explorer"):
            status, html = pages[app]
            assert status == 200 and f"xai-panel · {app}" in html
        assert "dashboard scripts not found" not in (tmp_path / "serve.log").read_text()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()
