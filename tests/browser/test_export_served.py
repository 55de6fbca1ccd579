"""The served gallery's downloads, clicked in Chromium: the report, a card's PNG and the numbers,
which ``store import`` reads back under the keys the served app stored them with."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from ..components.conftest import wait_until
from ..served import SPARE
from .test_dashboards import open_gallery, top_buttons
from .test_served import status_text

pytestmark = pytest.mark.browser

SERVED_METHODS = ("lime", "anchors", "shap", "gradcam")  # the dashboards' default request


def _download(page, locator, tmp_path):
    with page.expect_download(timeout=120_000) as info:
        locator.click()
    download = info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    return path


def test_the_gallerys_downloads_give_the_report_a_png_and_the_stores_numbers(page, served_app, tmp_path):
    from xai_panel.store import ExplanationStore, find_results, import_results

    open_gallery(page, served_app.url)
    page.locator(f".xp-thumb[data-id='{SPARE}']").click()
    top_buttons(page).first.wait_for()
    status_text(page, r"view-01\.jpg.* explained in").wait_for(timeout=240_000)

    report = _download(page, page.locator(".xp-export-report button"), tmp_path)
    assert report.name == "view-01_report.html"
    text = report.read_text(encoding="utf-8")
    assert re.findall(r'id="method-(\w+)"', text) == list(SERVED_METHODS)
    assert text.count('class="map"') == 5 * len(SERVED_METHODS)  # the served top-5, every method
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text) and "<script" not in text

    picture = _download(page, page.locator(".xp-download-lime button"), tmp_path)
    assert picture.name.startswith("view-01_lime_") and picture.suffix == ".png"
    with Image.open(picture) as im:
        assert im.format == "PNG" and im.size == (224, 224)
        assert np.asarray(im).std() > 0

    numbers = _download(page, page.locator(".xp-export-numbers button"), tmp_path)
    assert numbers.name == "view-01_numbers.zip"
    with zipfile.ZipFile(numbers) as z:
        assert sum(n.endswith("/result.json") for n in z.namelist()) == len(SERVED_METHODS)
        with Image.open(io.BytesIO(z.read(next(n for n in z.namelist() if n.endswith("/image.png"))))) as im:
            assert im.size == (224, 224)
    with ExplanationStore(tmp_path / "mine.sqlite") as mine:
        keys = import_results(mine, numbers)
        assert len(keys) == len(SERVED_METHODS)
        [image_hash] = {r.image_hash for r in mine.results()}
    with ExplanationStore(served_app.store) as served:
        # the served app stored what it computed: the download carries the very same keys
        assert wait_until(lambda: set(keys) <= set(find_results(served, image_hash)), timeout=30)
