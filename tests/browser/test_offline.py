"""A served page asks no other host (offline use), and a server stopped with SIGTERM exits cleanly.

The first test browses the shared served app with every request recorded: the pages, a
click's top classes and explanation plots, the explorer. The second serves its own app
(the shared app's cache, so no ONNX export), starts a long explanation and stops the
server the way a process manager does.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from urllib.parse import urlsplit

import pytest

from ..served import CAT, COFFEE, SPARE, xai_panel_serve
from .test_dashboards import open_gallery, top_buttons
from .test_served import open_settings, set_number, status_text

pytestmark = pytest.mark.browser


def record_requests(page, server_url: str) -> list[str]:
    """Every request of the page to a host other than the server's (blob: and data: URLs are the page's own)."""
    host = urlsplit(server_url).netloc
    foreign: list[str] = []

    def seen(request):
        url = urlsplit(request.url)
        if url.scheme in ("blob", "data") or url.netloc == host:
            return
        foreign.append(request.url)

    page.on("request", seen)
    return foreign


def test_the_served_pages_ask_no_other_host(page, served_app):
    foreign = record_requests(page, served_app.url)
    open_gallery(page, served_app.url)
    page.locator(f".xp-thumb[data-id='{SPARE}']").click()
    top_buttons(page).first.wait_for()
    status_text(page, r"Explaining \S*view-01\.jpg|view-01\.jpg.* explained in").wait_for()
    page.goto(f"{served_app.url}/explorer")
    page.locator(".xp-thumb").first.wait_for()
    page.get_by_text("Explainer settings").click()  # a lazily built card: its widgets' stylesheets too
    page.get_by_text("Num samples").first.wait_for()
    assert foreign == [], f"the page asked other hosts: {foreign}"
    # Nor does the page name one for later (a font, a stylesheet of a lazily built widget).
    html = page.content()
    assert "fonts.googleapis" not in html and "cdn.holoviz.org" not in html


@pytest.mark.slow
def test_sigterm_after_a_click_exits_cleanly(page, served_app, tmp_path_factory):
    base = tmp_path_factory.mktemp("sigterm")
    root = base / "data"
    for rel in (CAT, COFFEE):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(served_app.data / rel, root / rel)
    server = xai_panel_serve(base, "--data", str(root),
                             env_extra={"XAI_PANEL_CACHE": str(served_app.data.parent / "cache")})
    try:
        open_gallery(page, server.url)
        open_settings(page)
        set_number(page, "Num samples", 50_000)  # minutes of model passes: still running when the signal comes
        page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
        status_text(page, r"Explaining \S*coffee\.png: lime").wait_for()
        time.sleep(0.5)  # inside the model's batches
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=60)
        took = time.monotonic() - t0
    finally:
        if server.proc.poll() is None:
            server.stop()
    log = server.log()
    assert "terminate called" not in log and "Aborted" not in log, log[-2000:]
    assert code == 0, f"exit status {code}:\n{log[-2000:]}"
    assert re.search(r"background work stopped in \d", log), log[-2000:]
    assert took < 30, f"the server took {took:.0f} s to stop"
    assert not server.our_tracebacks(), server.our_tracebacks()
