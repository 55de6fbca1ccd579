"""Serve the real dashboards with ``panel serve`` and drive Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
QUICK_SETTINGS = {
    # A 3x3 grid keeps the Anchor search small; the budgets keep a full explanation to seconds.
    "segmentation": "grid", "grid_size": 3,
    "lime": {"num_samples": 60}, "anchors": {"batch_size": 20, "coverage_samples": 200}, "shap": {"estimator": "pool"},
}
BOKEH_LABELS = """() => {
  // The labels of every picture on the page: captions of the panes' tiles and strips (held,
  // HTML-escaped, in the text of their HTML models), and titles and axis tick labels of the
  // Bokeh plots: text the DOM of the page does not hold until it is drawn.
  const labels = [];
  const unescape = (s) => new DOMParser().parseFromString(s, "text/html").documentElement.textContent;
  const CAPTION = /&lt;(figcaption|div class=&quot;xp-strip-title&quot;)&gt;(.*?)&lt;\\/(figcaption|div)&gt;/g;
  for (const doc of Bokeh.documents)
    for (const m of doc._all_models.values()) {
      if (typeof m.text === "string" && m.text.includes("xp-tile"))
        for (const match of m.text.matchAll(CAPTION)) {
          const text = unescape(unescape(match[2])).trim();
          if (text) labels.push(text);
        }
      if (m.title && typeof m.title === "object" && "text" in m.title && m.renderers) labels.push(m.title.text);
      const o = m.major_label_overrides;
      if (o instanceof Map) o.forEach(v => labels.push(String(v)));
      else if (o && typeof o === "object") Object.values(o).forEach(v => labels.push(String(v)));
    }
  return labels;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path: Path, env_extra: dict | None = None, timeout: float = 240) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "XAI_PANEL_CACHE": str(tmp_path / "cache"), "XAI_PANEL_SETTINGS": json.dumps(QUICK_SETTINGS),
           **(env_extra or {})}
    cmd = [sys.executable, "-m", "panel", "serve", str(REPO / "dashboards" / "gallery.py"),
           str(REPO / "dashboards" / "explorer.py"), "--port", str(port), "--address", "127.0.0.1",
           f"--allow-websocket-origin=127.0.0.1:{port}",
           "--setup", str(REPO / "xai_panel" / "components" / "warmup.py")]
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited early:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/gallery", timeout=60) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("panel serve did not answer in time")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = start_server(tmp_path_factory.mktemp("server"))
    yield url
    stop_server(proc)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash.setdefault("failed", report.failed)
    return report


@pytest.fixture
def page(browser, request, tmp_path):
    context = browser.new_context(viewport={"width": 1600, "height": 2400})
    page = context.new_page()
    page.set_default_timeout(120_000)
    errors = []
    console = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text[:300]}"))
    yield page
    if request.node.stash.get("failed", False):
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot))
        print(f"screenshot of the failing page: {shot}")
        print("browser console (last 40 lines):", *console[-40:], sep="\n  ")
    context.close()
    # FilePond's preview plugin (bundled with Panel's FileDropper, it registers itself when
    # loaded) fails to draw a corrupt image in the browser; the server refuses the file anyway.
    errors = [e for e in errors if "source image could not be decoded" not in e]
    assert not errors, f"JavaScript errors on the page: {errors}"
