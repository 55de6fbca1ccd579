"""``xai-panel precompute`` with its defaults, then the served gallery: the first click on a
precomputed image shows every pane from the store, and says so (the shared ``served_app``)."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from xai_panel.cli import main
from xai_panel.store import ExplanationStore

from .test_dashboards import ANCHOR_TITLE, GRADCAM_TITLE, LIME_TITLE, SHAP_TITLE, open_gallery, wait_labels

pytestmark = pytest.mark.browser

PRECOMPUTED = "view-05.jpg"  # an unlabelled photo of the served folder's first page no other test clicks


def test_a_precomputed_image_shows_every_pane_from_the_store(page, served_app, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XAI_PANEL_CACHE", str(served_app.data.parent / "cache"))  # the server's ONNX export
    (tmp_path / "data").mkdir()
    shutil.copy(served_app.data / PRECOMPUTED, tmp_path / "data" / PRECOMPUTED)
    # precompute's defaults (the interactive preset) into the served store, as a user runs it
    assert main(["precompute", str(tmp_path / "data"), "--store", str(served_app.store), "--limit", "1",
                 "--no-progress"]) == 0
    stored = [s for s in ExplanationStore(served_app.store).summaries(served_app.model_id)
              if s.image_id == PRECOMPUTED]
    assert stored and set(stored[0].methods) == {"gradcam", "lime", "anchors", "shap"}

    open_gallery(page, served_app.url)
    thumb = page.locator(f".xp-thumb[data-id='{PRECOMPUTED}']")
    t0 = time.perf_counter()
    thumb.click()
    # The served settings are the tests' quick ones (custom), so the stored result is another
    # preset's: shown at once, named, with a way to refine it.
    status = page.get_by_text(re.compile(re.escape(PRECOMPUTED) + r".* explained in .*, from the store \(interactive preset\)")
                              ).first
    status.wait_for(timeout=60_000)
    status_seconds = time.perf_counter() - t0
    server_seconds = float(re.search(r"explained in (\d+\.\d+) s", status.inner_text()).group(1))
    for title in (GRADCAM_TITLE, LIME_TITLE, ANCHOR_TITLE, SHAP_TITLE):
        wait_labels(page, title, timeout=60_000)
    all_panes = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\nclick -> status 'from the store': {status_seconds:.2f} s (the server's lookup: {server_seconds:.2f} s); "
              f"click -> every pane drawn: {all_panes:.2f} s (goal 0.3 s)")
    refine = page.get_by_role("button", name="Refine with the current settings")
    refine.wait_for()
    refine.click()
    page.get_by_text(re.compile(re.escape(PRECOMPUTED) + r".* explained in \d+\.\d+ s$")).first.wait_for()
    assert not refine.is_visible()
