"""A gallery of thousands (issue #16), as bench_dashboard measures it: the folder, the first page in
the browser, the prediction index's progress, the server's memory."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from _common import SAMPLE

__all__ = ["build_folder", "rss_mb", "peak_rss_mb", "first_page", "index_progress", "follow_index", "PAGE_SIZE"]

PAGE_SIZE = 24  # the gallery's thumbnails per page (Gallery.page_size)

# Performance.now() once ``count`` thumbnails are on the page and every one is decoded, else false.
DECODED = """(count) => { const imgs = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
    if (e.classList && e.classList.contains('xp-thumb')) e.querySelectorAll('img').forEach(i => imgs.push(i));
    if (e.shadowRoot) walk(e.shadowRoot); }); })(document);
    return imgs.length >= count && imgs.every(i => i.complete && i.naturalWidth > 0) ? performance.now() : false; }"""
# [done, total] from the gallery's progress note ("Predicting: X of N images done…"); null once it is gone.
PROGRESS = """() => { let text = null; (function walk(root) { root.querySelectorAll('*').forEach(e => {
    const m = e.childElementCount === 0 && /(\\d+) of (\\d+) images done/.exec(e.textContent || "");
    if (m) text = [Number(m[1]), Number(m[2])];
    if (e.shadowRoot) walk(e.shadowRoot); }); })(document); return text; }"""


def build_folder(dest: Path, n: int) -> Path:
    """``n`` photos of the shared ImageNet sample under new names (``n01440764_tench-0003.JPEG``: each
    labelled by its wnid prefix), as hard links (a copy where hard links are not possible): each is a
    file of its own, decoded, thumbnailed and predicted as such."""
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


def _status(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_mb(pid: int) -> float:
    """The process's resident memory now (``VmRSS``), MB."""
    return _status(pid, "VmRSS")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (``VmHWM``), MB."""
    return _status(pid, "VmHWM")


def first_page(browser, url: str, count: int, timeout: float = 600, init_script: str | None = None,
               on_error=None) -> tuple[object, float]:
    """A new visitor (a browser context of its own: nothing cached) opens the gallery; returns the page
    and the seconds from navigation to ``count`` thumbnails decoded in the browser."""
    context = browser.new_context(viewport={"width": 1600, "height": 2400})
    page = context.new_page()
    page.set_default_timeout(timeout * 1000)
    if on_error is not None:
        page.on("pageerror", on_error)
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    ms = page.wait_for_function(DECODED, arg=count, polling="raf", timeout=timeout * 1000).json_value()
    return page, ms / 1000


def index_progress(page) -> tuple[int, int] | None:
    """(done, total) of the prediction index as the page says it; None once the note is gone (complete)."""
    progress = page.evaluate(PROGRESS)
    return tuple(progress) if progress else None


def follow_index(page, timeout: float, every: int, sample) -> bool:
    """Read the page's progress note every 2 s until it is gone (True) or ``timeout`` s (False);
    ``sample(moment, value)`` is called at the start, every ``every`` more images, and at the end."""
    t0, last = time.perf_counter(), None
    while time.perf_counter() - t0 < timeout:
        progress = index_progress(page)
        if progress is None:
            sample("prediction index complete", f"{time.perf_counter() - t0:.0f} s")
            return True
        if last is None or progress[0] - last[0] >= every:
            sample(f"predicted {progress[0]:,} of {progress[1]:,}", f"{time.perf_counter() - t0:.0f} s")
            last = progress
        time.sleep(2)
    sample(f"predicted {f'{last[0]:,}' if last else '?'} (timeout)", f"{timeout:.0f} s")
    return False
