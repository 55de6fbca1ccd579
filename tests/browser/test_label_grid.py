"""The label at a glance in a real browser: open it, explain a tiny label, see it fill, click a card.

Its own ``xai-panel serve`` (the shared app's cache, so no ONNX export) over two photos
labelled tabby and one golden retriever, with an empty store and LIME only on a small budget:
what the grid shows and fills is this test's alone.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from ..served import QUICK_SETTINGS, xai_panel_serve
from .test_dashboards import LIME_TITLE, open_gallery, wait_labels

pytestmark = pytest.mark.browser

PHOTOS = {"n02123045/tabby.JPEG": "n02123045_tabby", "n02123045/tiger_cat.JPEG": "n02123159_tiger_cat",
          "n02099601/golden.JPEG": "n02099601_golden_retriever"}
TABBY = ["n02123045/tabby.JPEG", "n02123045/tiger_cat.JPEG"]
METHOD = "lime"


def grid_cards(page):
    return page.locator(".xp-card-label .xp-thumb")


def details(page) -> dict[str, str]:
    return {c.get_attribute("data-id"): c.locator(".xp-detail").inner_text() for c in grid_cards(page).all()}


@pytest.fixture
def label_server(served_app, tmp_path_factory, shared_sample):
    base = tmp_path_factory.mktemp("label-grid")
    root = base / "data"
    for rel, name in PHOTOS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_sample / f"{name}.JPEG", root / rel)
    settings = {**QUICK_SETTINGS, "methods": [METHOD], METHOD: {"num_samples": 40}}
    server = xai_panel_serve(base, "--data", str(root), env_extra={
        "XAI_PANEL_CACHE": str(served_app.data.parent / "cache"), "XAI_PANEL_SETTINGS": json.dumps(settings)})
    try:
        yield server
    finally:
        server.stop()
    assert not server.our_tracebacks(), server.our_tracebacks()


def test_explain_a_label_see_it_fill_and_open_a_card(page, label_server):
    open_gallery(page, label_server.url, "?label=tabby")
    page.get_by_text("Label at a glance").click()  # built when opened
    page.locator(".xp-card-label .xp-detail").filter(has_text="not explained yet").nth(1).wait_for()
    assert sorted(details(page)) == TABBY
    plain = {c.get_attribute("data-id"): c.locator("img").get_attribute("src") for c in grid_cards(page).all()}

    page.get_by_role("button", name="Explain this label").click()
    page.locator(".xp-label-status").get_by_text(re.compile(r"Explaining [12] of 2")).wait_for()
    page.locator(".xp-label-status").get_by_text("tabby: 2 of 2 images explained and stored.").wait_for(
        timeout=300_000)
    page.wait_for_function("""() => { const found = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
          if (e.classList && e.classList.contains('xp-detail') && e.textContent.startsWith('deletion')) found.push(e);
          if (e.shadowRoot) walk(e.shadowRoot); }); })(document); return found.length === 2; }""")
    for card in grid_cards(page).all():  # each card now carries its overlay, not the photo
        src = card.locator("img").get_attribute("src")
        assert src.startswith("data:image/jpeg;base64,") and src != plain[card.get_attribute("data-id")]
        assert re.fullmatch(r".+ · \d+%", card.locator(".xp-badge").inner_text())

    page.locator(".xp-card-label .xp-thumb[data-id='n02123045/tiger_cat.JPEG']").click()
    page.get_by_text(re.compile(r"tiger_cat\.JPEG.* explained in .*\(from cache\)")).wait_for()
    wait_labels(page, LIME_TITLE, count=5)  # the detail panes show the image's explanation at once
    assert "image=n02123045%2Ftiger_cat.JPEG" in page.url
