"""A gallery of thousands (issue #16): the first page, the prediction index, the server's memory.

    .venv/bin/python benchmarks/bench_gallery.py [--images 4000] [--predict-timeout 900]

Builds a folder of ``--images`` photos from the shared ImageNet sample (``../shared/data``),
as hard links under new names (``n01440764_tench-0003.JPEG``: each a file of its own, labelled
by its wnid prefix; a copy where hard links are not possible; each is decoded and predicted
as a file of its own), starts ``xai-panel serve
--data`` on it with an empty cache, as a user does, and in headless Chromium:

- cold page: the first visit of the gallery, from navigation to the page's 24 thumbnails
  all decoded in the browser (the server makes them while the page waits);
- warm page: the same on a new page once the server has started (its thumbnails made),
  while the prediction index is built, and again once it is complete;
- the prediction index: how many images are predicted over time, read from the page's own
  progress note ("Predicting: X of N images done…"), until it is gone or the timeout;
- the server's resident memory (``VmRSS`` of its process) at each of those moments, and its peak.

Machines are shared and noisy: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine  # noqa: E402

SAMPLE = (ROOT / ".." / "shared" / "data" / "imagenet-sample").resolve()
CHROMIUM = "/usr/bin/chromium"
PAGE_THUMBS = 24
DECODED = """(count) => { const imgs = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
    if (e.classList && e.classList.contains('xp-thumb')) e.querySelectorAll('img').forEach(i => imgs.push(i));
    if (e.shadowRoot) walk(e.shadowRoot); }); })(document);
    return imgs.length >= count && imgs.every(i => i.complete && i.naturalWidth > 0) ? performance.now() : false; }"""
PROGRESS = """() => { let text = null; (function walk(root) { root.querySelectorAll('*').forEach(e => {
    const m = e.childElementCount === 0 && /(\\d+) of (\\d+) images done/.exec(e.textContent || "");
    if (m) text = [Number(m[1]), Number(m[2])];
    if (e.shadowRoot) walk(e.shadowRoot); }); })(document); return text; }"""


def build_folder(dest: Path, n: int) -> Path:
    photos = sorted(SAMPLE.glob("*.JPEG"))
    if not photos:
        sys.exit(f"the shared ImageNet sample is missing at {SAMPLE}")
    dest.mkdir(parents=True)
    for k in range(n):
        src = photos[k % len(photos)]
        target = dest / f"{src.stem}-{k // len(photos):04d}{src.suffix}"
        try:
            os.link(src, target)
        except OSError:
            shutil.copyfile(src, target)
    return dest


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4000, help="images in the gallery's folder")
    parser.add_argument("--predict-timeout", type=float, default=900, help="seconds to follow the prediction index")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="xai-bench-gallery-"))
    try:
        t0 = time.perf_counter()
        folder = build_folder(work / "data", args.images)
        print(f"folder: {args.images} images ({time.perf_counter() - t0:.1f} s to build)")
        port = free_port()
        env = {**os.environ, "XAI_PANEL_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
        log = open(work / "server.log", "wb")
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "xai_panel", "serve", "--data", str(folder), "--port", str(port)],
                                cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/gallery"
        rows = []
        peak = [0.0]

        def sample(what: str, value: str) -> None:
            mb = rss_mb(proc.pid)
            peak[0] = max(peak[0], mb)
            rows.append((what, value, f"{mb:.0f}"))
            print(f"  {what:<34} {value:>14}   RSS {mb:6.0f} MB", flush=True)

        try:
            while "Bokeh app running at" not in (work / "server.log").read_text(errors="replace"):
                if proc.poll() is not None or time.perf_counter() - started > 600:
                    sys.exit("the server did not start:\n" + (work / "server.log").read_text()[-3000:])
                time.sleep(0.2)
            sample("server serving", f"{time.perf_counter() - started:.1f} s")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                for name in ("cold page (first visit)", "warm page (server started)"):
                    page = browser.new_page(viewport={"width": 1600, "height": 1400})
                    page.goto(url)
                    ms = page.wait_for_function(DECODED, arg=PAGE_THUMBS, polling="raf", timeout=600_000).json_value()
                    sample(name, f"{ms / 1000:.2f} s")
                    if name.startswith("warm"):
                        break
                    page.close()
                t_start, last = time.perf_counter(), None
                while time.perf_counter() - t_start < args.predict_timeout:
                    progress = page.evaluate(PROGRESS)
                    if progress is None:  # the note is gone: every image is predicted
                        sample("prediction index complete", f"{time.perf_counter() - t_start:.0f} s")
                        break
                    if progress != last and (last is None or progress[0] - last[0] >= max(200, args.images // 10)):
                        sample(f"predicted {progress[0]} of {progress[1]}", f"{time.perf_counter() - t_start:.0f} s")
                        last = progress
                    time.sleep(2)
                else:
                    sample(f"predicted {last[0] if last else '?'} (timeout)", f"{args.predict_timeout:.0f} s")
                page = browser.new_page(viewport={"width": 1600, "height": 1400})
                page.goto(url)
                ms = page.wait_for_function(DECODED, arg=PAGE_THUMBS, polling="raf", timeout=600_000).json_value()
                sample("warm page (index complete)", f"{ms / 1000:.2f} s")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        print(f"\npeak RSS seen: {peak[0]:.0f} MB; server exit status {proc.returncode}")
        print(f"\n| {'moment':<34} | {'time':>14} | RSS MB |\n|{'-' * 36}|{'-' * 16}|--------|")
        for what, value, mb in rows:
            print(f"| {what:<34} | {value:>14} | {mb:>6} |")
        skipped = re.findall(r"skipped .*", (work / "server.log").read_text(errors="replace"))
        if skipped:
            print("log:", skipped[:3])
        print(f"machine after: {machine()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
