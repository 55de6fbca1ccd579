"""Your own model in the explorer, and the HoloViews inspection of a class, in a real browser.

Both on the shared served app (tests/served.py). The uploaded model is the three-class
TorchScript model of tests/components/test_model_upload.py, whose probabilities are
computed here by hand from the normalisation.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from ..served import CAT, COFFEE, SPARE
from .test_dashboards import open_gallery, top_buttons
from .test_served import status_text

pytestmark = pytest.mark.browser


def test_an_uploaded_model_explains_its_three_classes_and_a_bad_one_is_refused(page, served_app, tmp_path):
    """The three-class TorchScript model of tests/components/test_model_upload.py (logits: ten
    times each normalised channel's mean), with its names file and 0.5/0.5: the page shows the
    probabilities computed here by hand; a pickle is refused and the page keeps working."""
    from xai_panel.data import load_image
    from xai_panel.models.classifier import preprocessing_for

    from ..components.test_model_upload import RGB, expected, rgb_model

    model_bytes = rgb_model(tmp_path / "rgb.pt")
    page.goto(f"{served_app.url}/explorer")
    page.locator(".xp-thumb").first.wait_for()
    page.get_by_text("Your own model").click()
    model_input = page.locator(".xp-model-file input[type=file]")
    names_input = page.locator(".xp-names-file input[type=file]")
    # A bad file first: a pickled object (torch.save), which would run code if loaded.
    import torch

    from ..components.test_model_upload import _ChannelMeans

    torch.save(_ChannelMeans(), tmp_path / "pickled.pt")
    model_input.set_input_files(files=[{"name": "pickled.pt", "mimeType": "application/octet-stream",
                                        "buffer": (tmp_path / "pickled.pt").read_bytes()}])
    status = page.locator(".xp-model-status")
    status.filter(has_text="pickled.pt received").wait_for()  # uploaded to the server
    page.get_by_role("button", name="Use this model").click()
    page.locator(".xp-model-error").filter(has_text="pickled.pt was refused").wait_for()

    model_input.set_input_files(files=[{"name": "rgb.pt", "mimeType": "application/octet-stream",
                                        "buffer": model_bytes}])
    status.filter(has_text="rgb.pt received").wait_for()
    names_input.set_input_files(files=[{"name": "names.txt", "mimeType": "text/plain",
                                        "buffer": "\n".join(RGB).encode()}])
    page.locator(".xp-names-status").filter(has_text="names.txt: 3 class names (red, green, blue)").wait_for()
    page.locator("select").filter(has=page.locator("option", has_text="0.5 / 0.5")).select_option(
        label="0.5 / 0.5 (inputs in [-1, 1])")
    size = page.locator(".bk-input-group").filter(has_text="Input size (px)").locator("input").first
    size.fill("64")
    size.press("Enter")
    page.get_by_role("button", name="Use this model").click()
    status.filter(has_text=re.compile(r"Using rgb\.pt · yours \w+: 3 classes")).wait_for()
    assert not page.locator(".xp-model-error").is_visible()

    page.locator(f".xp-thumb[data-id='{CAT}']").click()
    prep = preprocessing_for("0.5", 64)
    probs = expected(prep.prepare(load_image(served_app.data / CAT)), prep.mean, prep.std)
    order = np.argsort(-probs)
    want = [f"{rank}. {RGB[i]} · {100 * probs[i]:.1f}%" for rank, i in enumerate(order, 1)]
    top_buttons(page).nth(2).wait_for()
    assert top_buttons(page).all_inner_texts() == want
    status_text(page, r"chelsea\.png.* explained in").wait_for()
    # The gallery re-predicted with it: every badge is one of its three classes.
    page.locator(f".xp-thumb[data-id='{COFFEE}'] .xp-badge").filter(has_text=re.compile("^(red|green|blue)$")).wait_for()


TOOLTIP = """() => { const rows = []; (function walk(root) { root.querySelectorAll('*').forEach(e => {
    if (e.classList && e.classList.contains('bk-tooltip-content')) rows.push(e.innerText);
    if (e.shadowRoot) walk(e.shadowRoot); }); })(document); return rows; }"""


def test_hovering_the_inspection_plot_reads_the_score_and_superpixel(page, served_app):
    open_gallery(page, served_app.url)
    page.locator(f".xp-thumb[data-id='{SPARE}']").click()
    status_text(page, r"view-01\.jpg.* explained in").wait_for()
    page.get_by_text("Inspect · the score").click()
    canvas = page.locator(".xp-inspect-plot canvas").first
    canvas.wait_for()
    box = canvas.bounding_box()
    found = []
    # The left third, then the middle third of the first map (LIME) on the 3x3 grid of the
    # served app's settings: two columns of superpixels. Moved until the tooltip answers (a
    # plot redrawn under the cursor, say when the trust metrics arrive, needs a new move).
    for fraction in (0.15, 0.45):
        x, y = box["x"] + box["width"] * fraction * 0.78, box["y"] + box["height"] * 0.55
        for _ in range(40):
            page.mouse.move(x, y + 3)
            page.mouse.move(x, y)
            texts = [t for t in page.evaluate(TOOLTIP) if "LIME score" in t]
            if texts:
                break
            page.wait_for_timeout(250)
        assert texts, "no tooltip on the inspection plot"
        match = re.search(r"LIME score:\s*(-?\d+\.\d{4})\s*superpixel:\s*(\d+)", texts[0].replace("\n", " "))
        assert match, texts[0]
        found.append((float(match.group(1)), int(match.group(2))))
        page.mouse.move(0, 0)
    (score_a, id_a), (score_b, id_b) = found
    assert 0 <= id_a < 9 and 0 <= id_b < 9 and id_a != id_b, found  # two superpixels of the 3x3 grid
