"""The dashboards in a real browser: gallery, linking, cancellation, uploads, URLs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import BOKEH_LABELS

pytestmark = pytest.mark.browser

CAT, COFFEE, ROCKET = "skimage/data/chelsea.png", "skimage/data/coffee.png", "skimage/data/rocket.jpg"
LIME_TITLE = re.compile(r"R² ")
ANCHOR_TITLE = re.compile(r"· (P \d+%|no anchor)")
SHAP_TITLE = re.compile(r"Σφ")


def labels(page) -> list[str]:
    return page.evaluate(BOKEH_LABELS)


def wait_labels(page, pattern: re.Pattern, count: int = 5, contains: str | None = None, timeout: float = 240_000):
    page.wait_for_function(
        """([pattern, count, contains, script]) => {
            const found = (new Function("return " + script))()().filter(t => new RegExp(pattern).test(t)
                                                                       && (!contains || t.includes(contains)));
            return found.length >= count;
        }""", arg=[pattern.pattern, count, contains, BOKEH_LABELS], timeout=timeout)


def thumbs(page):
    return page.locator(".xp-thumb")


def top_buttons(page):
    return page.get_by_role("button", name=re.compile(r"^[1-5]\. .+ · \d+\.\d%"))


def open_gallery(page, url: str, query: str = ""):
    page.goto(f"{url}/gallery{query}")
    thumbs(page).first.wait_for()


def test_the_gallery_loads_and_a_label_filters_the_thumbnails(page, server):
    open_gallery(page, server)
    assert thumbs(page).count() == 9
    labels = page.locator("select").filter(has=page.locator("option", has_text="All images"))
    labels.select_option(label="tabby (1)")
    page.wait_for_function("() => true")  # let the round trip start
    thumbs(page).filter(has_text="tabby").first.wait_for()
    page.wait_for_function(
        """() => { const cards = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
             if (e.classList && e.classList.contains('xp-thumb')) cards.push(e); if (e.shadowRoot) walk(e.shadowRoot); });
           })(document); return cards.length === 1; }""")
    assert thumbs(page).count() == 1 and thumbs(page).first.get_attribute("data-id") == CAT
    assert "label=tabby" in page.url
    labels.select_option(label="(unlabelled) (3)")
    page.wait_for_function("() => document.location.search.includes('unlabelled')")


def test_a_click_shows_five_classes_then_lime_anchors_and_shap(page, server):
    open_gallery(page, server)
    thumbs(page).filter(has=page.locator(f"[data-id='{COFFEE}']")).count()
    page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
    top_buttons(page).nth(4).wait_for()
    names = top_buttons(page).all_inner_texts()
    assert len(names) == 5 and names[0].startswith("1. espresso")
    wait_labels(page, LIME_TITLE)
    wait_labels(page, ANCHOR_TITLE)
    wait_labels(page, SHAP_TITLE)
    assert any(t.startswith("▶ 1. espresso") for t in labels(page))
    assert f"image={COFFEE.replace('/', '%2F')}" in page.url
    # Inspecting another class moves the marker in every pane.
    top_buttons(page).nth(1).click()
    wait_labels(page, re.compile(r"^▶ 2\. "), count=3)


def test_clicking_another_image_mid_computation_shows_only_the_new_one(page, server):
    open_gallery(page, server)
    badge = page.locator(f".xp-thumb[data-id='{ROCKET}'] .xp-badge")
    page.wait_for_function("""() => true""")
    badge.filter(has_not_text="predicting").wait_for()
    rocket_top1 = badge.inner_text().strip()
    page.locator(f".xp-thumb[data-id='{CAT}']").click()
    top_buttons(page).first.wait_for()
    assert "cat" in top_buttons(page).first.inner_text()
    page.locator(f".xp-thumb[data-id='{ROCKET}']").click()  # the cat is still being explained
    page.get_by_text(re.compile(r"rocket\.jpg.* explained in")).wait_for(timeout=240_000)
    assert top_buttons(page).first.inner_text().startswith(f"1. {rocket_top1}")
    wait_labels(page, LIME_TITLE, contains=rocket_top1, count=1)
    wait_labels(page, ANCHOR_TITLE, contains=rocket_top1, count=1)
    wait_labels(page, SHAP_TITLE, contains=rocket_top1, count=1)
    cat_names = {"tiger cat", "tabby", "Egyptian cat"}
    leftovers = [t for t in labels(page) if any(name in t for name in cat_names)]
    assert not leftovers, f"results of the abandoned image are still shown: {leftovers}"


def test_a_bad_upload_shows_an_error_and_the_page_keeps_working(page, server, tmp_path):
    page.goto(f"{server}/explorer")
    thumbs(page).first.wait_for()
    good = Path(__file__).resolve().parents[2] / ".venv"  # never read; only for a clear failure message
    from skimage import data
    from PIL import Image

    jpeg = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(jpeg)
    payload = jpeg.read_bytes()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": payload[: len(payload) // 3]}])
    page.get_by_text(re.compile(r"broken\.jpg: .*truncated")).first.wait_for()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}])
    page.get_by_text(re.compile(r"invalid type|notes\.txt:")).first.wait_for()
    # Still working: a good image is explained, and the gallery still answers clicks.
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "cat.jpg", "mimeType": "image/jpeg", "buffer": payload}])
    page.get_by_text(re.compile(r"Explaining cat\.jpg|cat\.jpg.* explained")).first.wait_for()
    top_buttons(page).nth(4).wait_for()
    page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
    page.get_by_role("button", name=re.compile(r"^1\. espresso")).wait_for()
    assert good  # noqa: the path is only a marker


def test_the_url_restores_a_view_and_refuses_bad_values(page, server):
    open_gallery(page, server, f"?image={COFFEE}&label=espresso")
    page.get_by_role("button", name=re.compile(r"^1\. espresso")).wait_for()
    assert thumbs(page).count() == 1
    open_gallery(page, server, "?image=../../etc/passwd&label=no-such-label")
    page.get_by_text(re.compile(r"refused")).first.wait_for()
    page.get_by_text(re.compile(r"label 'no-such-label'")).first.wait_for()
    assert thumbs(page).count() == 9  # the page works: all images shown, nothing selected
    page.locator(f".xp-thumb[data-id='{CAT}']").click()
    top_buttons(page).nth(4).wait_for()
