"""The dashboards in a real browser: gallery, linking, cancellation, uploads, URLs.

They run on the shared served app (tests/served.py): ``xai-panel serve --data`` over a
small folder whose labelled photos are CAT (tabby/), COFFEE (espresso/) and ROCKET
(goldfish/, a wrong label on purpose), 28 images in all.
"""

from __future__ import annotations

import re

import pytest

from ..served import CAT, COFFEE, ROCKET
from .conftest import BOKEH_LABELS

pytestmark = pytest.mark.browser

PAGE_SIZE = 24  # the gallery dashboard's thumbnails per page
CAT_NAMES = ("tabby", "tiger cat", "Egyptian cat")  # the ImageNet classes of the cat photo
LIME_TITLE = re.compile(r"R² ")
ANCHOR_TITLE = re.compile(r"· (P \d+%|no anchor|empty anchor)")
SHAP_TITLE = re.compile(r"Σφ")
GRADCAM_TITLE = re.compile(r"· max \d")  # a Grad-CAM tile's caption, once its map is drawn


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


def thumb_ids(page) -> list[str]:
    return [t.get_attribute("data-id") for t in thumbs(page).all()]


def top_buttons(page):
    return page.get_by_role("button", name=re.compile(r"^[1-5]\. .+ · \d+\.\d%"))


def open_gallery(page, url: str, query: str = ""):
    page.goto(f"{url}/gallery{query}")
    thumbs(page).first.wait_for()


def wait_thumb_count(page, count: int) -> None:
    page.wait_for_function(
        """(count) => { const cards = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
             if (e.classList && e.classList.contains('xp-thumb')) cards.push(e);
             if (e.shadowRoot) walk(e.shadowRoot); }); })(document); return cards.length === count; }""", arg=count)


def test_the_gallery_loads_and_a_label_filters_the_thumbnails(page, served_app):
    open_gallery(page, served_app.url)
    assert thumbs(page).count() == PAGE_SIZE
    labels = page.locator("select").filter(has=page.locator("option", has_text="All images"))
    assert labels.locator("option").all_inner_texts() == [
        "All images (28)", "espresso (1)", "goldfish (1)", "tabby (1)", "(unlabelled) (25)"]
    labels.select_option(label="tabby (1)")
    wait_thumb_count(page, 1)
    assert thumb_ids(page) == [CAT]
    assert "label=tabby" in page.url
    labels.select_option(label="(unlabelled) (25)")
    page.wait_for_function("() => document.location.search.includes('unlabelled')")
    wait_thumb_count(page, PAGE_SIZE)
    assert not {CAT, COFFEE, ROCKET} & set(thumb_ids(page))


def test_a_click_shows_five_classes_then_gradcam_lime_anchors_and_shap(page, served_app):
    open_gallery(page, served_app.url)
    assert page.locator(f".xp-thumb[data-id='{COFFEE}']").count() == 1
    page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
    top_buttons(page).nth(4).wait_for()
    names = top_buttons(page).all_inner_texts()
    assert len(names) == 5 and names[0].startswith("1. espresso")
    wait_labels(page, GRADCAM_TITLE)  # the gradients pane: a map per class, first after the top classes
    wait_labels(page, LIME_TITLE)
    wait_labels(page, ANCHOR_TITLE)
    wait_labels(page, SHAP_TITLE)
    assert any(t.startswith("▶ 1. espresso") for t in labels(page))
    assert f"image={COFFEE.replace('/', '%2F')}" in page.url
    check_trust_pane(page)
    # Inspecting another class moves the marker in every pane.
    top_buttons(page).nth(1).click()
    wait_labels(page, re.compile(r"^▶ 2\. "), count=3)


TRUST_CURVES = """() => {
  // Per trust plot (an inline SVG figure per method), whether each of its lines is dashed.
  const out = {};
  (function walk(root) { root.querySelectorAll('*').forEach(e => {
    if (e.classList && e.classList.contains('xp-curve'))
      out[e.dataset.method] = [...e.querySelectorAll('polyline')].map(l => l.hasAttribute('stroke-dasharray'));
    if (e.shadowRoot) walk(e.shadowRoot); }); })(document);
  return out;
}"""


RANKED = ("Grad-CAM", "LIME", "SHAP")  # the dashboards' methods whose results rank superpixels


def check_trust_pane(page) -> None:
    """After the explanations, the trust pane shows each ranked method's AUCs for the five classes and their curves."""
    rows = page.locator(".xp-trust tbody tr")
    rows.nth(14).wait_for(timeout=240_000)  # Grad-CAM, LIME and SHAP x 5 classes (anchors do not rank superpixels)
    cells = [r.locator("td").all_inner_texts() for r in rows.all()]
    assert len(cells) == 15 and {c[0] for c in cells} == set(RANKED)
    assert [c[1][:2] for c in cells if c[0] == "LIME"] == ["1.", "2.", "3.", "4.", "5."]
    for c in cells:  # deletion, random, insertion, random: probabilities' areas in [0, 1]
        assert all(0.0 <= float(v) <= 1.0 for v in c[2:6]), c
    # the top class's deletion beats chance for LIME on this espresso (measured: about 0.1 against 0.4)
    lime_top = next(c for c in cells if c[0] == "LIME" and c[1].startswith("1. espresso"))
    assert float(lime_top[2]) < float(lime_top[3]), lime_top
    assert page.locator(".xp-agree").get_by_text("ρ").count() == 6  # every pair of the three, both ways
    page.wait_for_function("([s, names]) => { const c = (new Function('return ' + s))()(); "
                           "return names.every(n => c[n]); }", arg=[TRUST_CURVES, list(RANKED)], timeout=60_000)
    curves = page.evaluate(TRUST_CURVES)
    for method in RANKED:  # deletion and insertion solid, their random baselines dashed
        assert sorted(curves[method]) == [False, False, True, True], curves


def test_clicking_another_image_mid_computation_shows_only_the_new_one(page, served_app):
    open_gallery(page, served_app.url)
    badge = page.locator(f".xp-thumb[data-id='{ROCKET}'] .xp-badge")
    badge.filter(has_not_text="predicting").wait_for()
    rocket_top1 = badge.inner_text().strip()
    assert rocket_top1 not in CAT_NAMES and rocket_top1 != "goldfish"
    page.locator(f".xp-thumb[data-id='{CAT}']").click()
    top_buttons(page).first.wait_for()
    assert top_buttons(page).first.inner_text().startswith(tuple(f"1. {n} · " for n in CAT_NAMES))
    page.locator(f".xp-thumb[data-id='{ROCKET}']").click()  # the cat is still being explained
    page.get_by_text(re.compile(r"rocket\.jpg.* explained in")).wait_for(timeout=240_000)
    assert top_buttons(page).first.inner_text().startswith(f"1. {rocket_top1}")
    wait_labels(page, LIME_TITLE, contains=rocket_top1, count=1)
    wait_labels(page, ANCHOR_TITLE, contains=rocket_top1, count=1)
    wait_labels(page, SHAP_TITLE, contains=rocket_top1, count=1)
    leftovers = [t for t in labels(page) if any(name in t for name in CAT_NAMES)]
    assert not leftovers, f"results of the abandoned image are still shown: {leftovers}"


def _refusal(data: bytes, filename: str) -> str:
    """The message the upload component gives for these bytes (the real component, no server)."""
    from xai_panel.components import ImageUpload

    upload = ImageUpload()
    upload.load(data, filename)
    message = upload.wait().error
    assert message.startswith(f"{filename}: "), message
    return message


def test_a_bad_upload_shows_the_servers_refusal_and_the_page_keeps_working(page, served_app, tmp_path):
    page.goto(f"{served_app.url}/explorer")
    thumbs(page).first.wait_for()
    payload = (served_app.data / CAT).read_bytes()
    upload = page.locator("input[type=file]")
    truncated = payload[: len(payload) // 3]
    upload.set_input_files(files=[{"name": "broken.png", "mimeType": "image/png", "buffer": truncated}])
    alert = page.locator(".xp-upload-error")
    expected = _refusal(truncated, "broken.png")
    assert "truncated" in expected
    alert.filter(has_text=expected).wait_for()
    # An accepted type and extension, so the drop zone's own check lets it through: only
    # the server's decoder can refuse it.
    upload.set_input_files(files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}])
    expected = _refusal(b"not an image", "notes.png")
    alert.get_by_text(expected, exact=True).wait_for()  # the whole message, nothing else
    # Still working: a good image is explained, and the gallery still answers clicks.
    upload.set_input_files(files=[{"name": "cat.png", "mimeType": "image/png", "buffer": payload}])
    page.get_by_text(re.compile(r"Explaining cat\.png|cat\.png.* explained")).first.wait_for()
    top_buttons(page).nth(4).wait_for()
    assert top_buttons(page).first.inner_text().startswith(tuple(f"1. {n} · " for n in CAT_NAMES))
    page.locator(f".xp-thumb[data-id='{COFFEE}']").click()
    page.get_by_role("button", name=re.compile(r"^1\. espresso")).wait_for()


def test_the_url_restores_a_view_and_refuses_bad_values(page, served_app):
    open_gallery(page, served_app.url, f"?image={COFFEE}&label=espresso")
    page.get_by_role("button", name=re.compile(r"^1\. espresso")).wait_for()
    assert thumb_ids(page) == [COFFEE]
    open_gallery(page, served_app.url, "?image=../../etc/passwd&label=no-such-label")
    message = page.locator(".xp-gallery-message")
    message.filter(has_text="refused").wait_for()
    from xai_panel.data import open_dataset

    try:
        open_dataset(served_app.data).resolve("../../etc/passwd")
    except ValueError as exc:
        refusal = str(exc)
    message.get_by_text(f"The URL names label 'no-such-label', which this dataset does not have. "
                        f"The URL's image was refused: {refusal}", exact=True).wait_for()
    assert thumbs(page).count() == PAGE_SIZE  # the page works: all images shown, nothing selected
    page.locator(f".xp-thumb[data-id='{CAT}']").click()
    top_buttons(page).nth(4).wait_for()
