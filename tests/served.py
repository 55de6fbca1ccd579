"""The served app the isolation and browser tests share, and the browser that drives it.

One ``xai-panel serve --data DIR`` subprocess per test session, on a free loopback port, over
a small data folder built here (``served_folder``): three labelled photos, one of them
mislabelled, 25 unlabelled ones so the gallery has two pages (one of them, ``LINKED``, a
symlink to a photo in another folder, as ImageNet subsets are made: an image of the
dataset), and a way out of the folder (a symlinked folder holding a private photo and a
secret text file) for the isolation checks. Its store already holds summaries of the first four images
(``xai-panel precompute``, LIME only, so the dashboards still compute their own
explanations), for the sort and show controls. Start-up (the model's ONNX export, the warm-up) is then paid once.

The browser is Debian's Chromium through Playwright, which is a required test dependency:
missing, the tests fail. Chromium missing at ``/usr/bin/chromium`` fails them too when
``CI`` is set (CI installs it), and skips them with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
QUICK_SETTINGS = {
    # A 3x3 grid keeps the Anchor search small; the budgets keep a full explanation to seconds.
    "segmentation": "grid", "grid_size": 3,
    "lime": {"num_samples": 60}, "anchors": {"batch_size": 20, "coverage_samples": 200}, "shap": {"estimator": "pool"},
}
SECRET_MARKER = "XAI-PANEL-SECRET-7f3a9c"
# Sessions of closed pages are discarded within about a second (Bokeh's defaults: 15-32 s),
# so the page-close test sees their cancellation, and no test waits behind an earlier page.
SESSION_ARGS = ["--check-unused-sessions", "500", "--unused-session-lifetime", "500"]

# The folder's labelled photos: id -> the photo it is (its folder is its label).
CAT, COFFEE, ROCKET = "tabby/chelsea.png", "espresso/coffee.png", "goldfish/rocket.jpg"
PADDING = 24  # unlabelled photos: with the three above and cat.png, 28 images, two gallery pages of 24
# An unlabelled photo that the tests which need any explained image click (offline page,
# inspection hover): the labelled ones must stay unexplained with the served settings for
# the tests that expect their explanation to be computed (the page-close test's CAT).
SPARE = "view-01.jpg"
LINKED = "view-01.jpg"  # a symlink to ../tree/view-01.jpg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_folder(base: Path) -> Path:
    """Build the served data folder under ``base`` (returns ``base / "data"``)."""
    from PIL import Image
    from skimage import data

    root, outside, tree = base / "data", base / "outside", base / "tree"
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "astronaut": data.astronaut(), "motorcycle": data.stereo_motorcycle()[0],
              "camera": data.camera()}
    for rel, name in [(CAT, "chelsea"), (COFFEE, "coffee"), (ROCKET, "rocket")]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photos[name]).save(root / rel)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(root / "cat.png")
    # Quadrants of six photos, small: real content for the second page, cheap to predict
    # (named to sort after the labelled photos, which are then all on the first page).
    n = 0
    for name, photo in photos.items():
        image = Image.fromarray(photo).convert("RGB")
        w, h = image.size
        for box in [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]:
            n += 1
            name = f"view-{n:02d}.jpg"
            if name == LINKED:  # kept in another folder, linked from this one
                tree.mkdir()
                image.crop(box).resize((96, 96)).save(tree / name, quality=90)
                os.symlink(tree / name, root / name)
            else:
                image.crop(box).resize((96, 96)).save(root / name, quality=90)
    assert n == PADDING
    outside.mkdir()
    (outside / "secret.png").write_text(f"{SECRET_MARKER} root:x:0:0\n")
    Image.fromarray(photos["astronaut"]).resize((64, 64)).save(outside / "private.png")
    os.symlink(outside, root / "linked_folder")
    return root


STORED = 4  # the first ids in name order: cat.png, espresso/coffee.png, goldfish/rocket.jpg, tabby/chelsea.png


def write_store(base: Path) -> None:
    """Summaries of the first STORED images, by ``xai-panel precompute`` as a user runs it.

    LIME only, on a 2x2 grid: the summaries (prediction, confidence, right or wrong) are
    what the gallery sorts and filters by, and the dashboards' own requests (all methods)
    are not found in the store, so clicks still compute.
    """
    out = subprocess.run(
        [sys.executable, "-m", "xai_panel", "precompute", str(base / "data"), "--limit", str(STORED),
         "--methods", "lime", "--top-k", "2", "--segmentation", "grid", "--set", "segmentation.rows=2",
         "--set", "segmentation.cols=2", "--set", "lime.num_samples=20", "--metrics", "none",
         "--store", str(base / "store.sqlite"),
         "--no-progress"], cwd=base, env=server_env(base), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]


@dataclass
class Server:
    """A running ``panel serve`` / ``xai-panel serve`` subprocess."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    data: Path | None = None
    store: Path | None = None
    model_id: str | None = None  # the served model's id (the store also holds other models', e.g. uploaded ones)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 120) -> re.Match:
        """Wait until the server's log matches ``pattern`` (a regex); returns the match."""
        end = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log())
            if match:
                return match
            if time.monotonic() > end or self.proc.poll() is not None:
                raise AssertionError(f"the server log never matched {pattern!r}:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def our_tracebacks(self) -> list[str]:
        """Tracebacks in the log that pass through xai-panel's code or dashboards (Tornado's
        own about a page closed mid-message are not the app's)."""
        found = []
        for chunk in self.log().split("Traceback (most recent call last):\n")[1:]:
            lines = chunk.splitlines()
            frames = lines[: next((i for i, line in enumerate(lines) if not line.startswith(" ")), len(lines)) + 1]
            if any("/xai_panel/" in f or "/dashboards/" in f for f in frames):
                found.append("\n".join(frames))
        return found

    def stop(self) -> None:
        stop_server(self.proc)


def server_env(base: Path, env_extra: dict | None = None) -> dict:
    inherited = {k: v for k, v in os.environ.items() if k not in ("XAI_PANEL_DATA", "XAI_PANEL_MODEL")}
    env = {**inherited, "XAI_PANEL_CACHE": str(base / "cache"), "XAI_PANEL_SETTINGS": json.dumps(QUICK_SETTINGS),
           "XAI_PANEL_STORE": str(base / "store.sqlite"), "PYTHONPATH": str(REPO), **(env_extra or {})}
    return env


def start(cmd: list[str], base: Path, env: dict, port: int, timeout: float = 300) -> Server:
    """Run ``cmd`` (a server on ``port``) and wait until it serves the gallery."""
    log_path = base / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/gallery", timeout=60) as response:
                if response.status == 200:
                    return Server(proc, url, log_path)
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"the server did not answer in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def xai_panel_serve(base: Path, *args: str, env_extra: dict | None = None) -> Server:
    """``xai-panel serve ARGS --port P -- <session options>``, as a user runs it."""
    port = free_port()
    cmd = [sys.executable, "-m", "xai_panel", "serve", *args, "--port", str(port), "--", *SESSION_ARGS]
    return start(cmd, base, server_env(base, env_extra), port)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def served_app(tmp_path_factory) -> Server:
    """``xai-panel serve --data <served_folder>``, shared by every served-app test."""
    base = tmp_path_factory.mktemp("served")
    root = served_folder(base)
    write_store(base)  # also exports the model to ONNX in the server's (fresh) cache
    # One compute thread on any machine: the page-close test needs a lane that one job fills.
    server = xai_panel_serve(base, "--data", str(root), env_extra={"XAI_PANEL_COMPUTE_THREADS": "1"})
    server.data, server.store = root, base / "store.sqlite"
    from xai_panel.store import ExplanationStore

    server.model_id = ExplanationStore(server.store).summaries()[0].model_id  # only precompute's rows so far
    try:
        yield server
    finally:
        server.stop()
        assert not server.our_tracebacks(), f"the served app logged exceptions: {server.our_tracebacks()}"


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must run the browser tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright  # a required test dependency: an ImportError fails loudly

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
    if request.node.stash.get("failed", False) and not page.is_closed():  # a test may close its page
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot))
        print(f"screenshot of the failing page: {shot}")
        print("browser console (last 40 lines):", *console[-40:], sep="\n  ")
    context.close()
    # FilePond's preview plugin (bundled with Panel's FileDropper, it registers itself when
    # loaded) fails to draw a corrupt image in the browser; the server refuses the file anyway.
    errors = [e for e in errors if "source image could not be decoded" not in e]
    assert not errors, f"JavaScript errors on the page: {errors}"
