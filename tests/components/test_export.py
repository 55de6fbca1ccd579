"""The dashboards' downloads: their callbacks, on a real explanation of a real photo (small budgets),
produce the figures as drawn, the store's export (read back by its import) and the report."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from xai_panel.components import ExplainerSettings, ExplanationSession, MemoryCache, TopClasses, method_pane
from xai_panel.components.widgets.export import NOTHING_TO_EXPORT, ExportButtons, picture_download
from xai_panel.engine.request import ExplainRequest
from xai_panel.store import ExplanationStore, import_results
from xai_panel.store.export import ExportError

from ..store.test_store_metrics import assert_same
from .conftest import wait_until

METHODS = ["lime", "anchors", "shap", "gradcam"]
SETTINGS = {"methods": METHODS, "segmentation": "grid", "grid_size": 3, "lime": {"num_samples": 40},
            "anchors": {"batch_size": 20, "coverage_samples": 100, "max_anchor_size": 2, "threshold": 0.6, "regions": 3,
                        "n_examples": 2},
            "shap": {"estimator": "pool"}}
"""Budgets that explain a photo with four methods in seconds."""


def _png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def explained(photos):
    """A session that explained the cat photo, its panes (one per method) and its downloads."""
    settings = ExplainerSettings.from_dict(SETTINGS)
    session = ExplanationSession(settings=settings, cache=MemoryCache(), metrics=["faithfulness"],
                                 metric_settings={"steps": 3, "random_orders": 1}, top_k=3)
    top = TopClasses.from_session(session)
    panes = [method_pane(session, m, inspect=top) for m in METHODS]
    buttons = ExportButtons.from_session(session, panes=panes)
    with pytest.raises(ValueError, match=NOTHING_TO_EXPORT):  # nothing to export before an image is explained
        buttons.report()
    session.param.update(source=photos["chelsea"], source_name="chelsea.png")
    session.wait()
    assert wait_until(lambda: session.status == "done" and not session.measuring and session.explanation.faithfulness)
    assert wait_until(lambda: all(p.shown is not None and p.results() for p in panes))
    return session, top, panes, buttons


def test_the_buttons_are_file_downloads_built_on_click(explained):
    session, _, _, buttons = explained
    figures, numbers, report = buttons.buttons
    assert [b.filename for b in buttons.buttons] == ["chelsea_figures.zip", "chelsea_numbers.zip", "chelsea_report.html"]
    for button in buttons.buttons:
        assert button.callback is not None and not button.embed and button.data is None  # nothing sent before a click
        assert not button.disabled


def test_the_figures_are_every_panes_pictures_as_drawn(explained):
    session, _, panes, buttons = explained
    e = session.explanation
    lime = panes[0]
    lime.num_features = 2  # a display setting: the download follows the pane
    with zipfile.ZipFile(buttons.buttons[0].callback()) as z:
        names = z.namelist()
        files = {n.split("/", 1)[1]: _png(z.read(n)) for n in names}
    assert all(n.startswith("chelsea_figures/") for n in names)
    assert np.array_equal(files["image.png"], e.image)
    for pane in panes:
        for rank, score in enumerate(e.top, 1):
            name = next(n for n in files if n.startswith(f"{pane.method}/{rank}_"))
            assert np.array_equal(files[name], pane.picture(e, score.index)), name
    assert len(files) == 1 + len(METHODS) * len(e.top)
    first = next(n for n in files if n.startswith("lime/1_"))
    lime.num_features = 5
    assert not np.array_equal(files[first], lime.picture(e, e.top[0].index))  # it was drawn with 2 superpixels


def test_a_panes_png_is_its_selected_class(explained):
    session, top, panes, _ = explained
    e = session.explanation
    shap = panes[2]
    button = picture_download(shap, lambda: session.image_name)
    top.select(e.top[1].index)
    assert wait_until(lambda: shap.marked == e.top[1].index)
    picture = _png(button.callback().getvalue())
    assert np.array_equal(picture, shap.picture(e, e.top[1].index))
    assert not np.array_equal(picture, shap.picture(e, e.top[0].index))
    assert button.filename.startswith("chelsea_shap_") and button.filename.endswith(".png")


def test_the_numbers_are_the_stores_export_and_its_import_reads_them_back(explained, tmp_path):
    session, _, _, buttons = explained
    e = session.explanation
    path = tmp_path / "numbers.zip"
    path.write_bytes(buttons.buttons[1].callback().getvalue())
    with zipfile.ZipFile(path) as z:
        documents = [n for n in z.namelist() if n.endswith("/result.json")]
    assert len(documents) == len(METHODS)
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        keys = import_results(store, path)
        request = ExplainRequest.from_explanation(e)
        assert sorted(keys) == sorted(request.result_key(session.image_digest, m) for m in METHODS)
        back = store.get(session.image_digest, request)
        assert back is not None and back.methods == e.methods
        for method in METHODS:
            assert_same(dict(e.results[method]), dict(back.results[method]), method)
            assert back.costs[method] == e.costs[method]
        assert set(back.faithfulness) == set(e.faithfulness)
        assert_same(dict(e.faithfulness["lime"]), dict(back.faithfulness["lime"]), "faithfulness")
        assert np.array_equal(back.segmentation.labels, e.segmentation.labels) and np.array_equal(back.image, e.image)


def test_the_report_holds_every_methods_maps_and_costs(explained):
    session, _, _, buttons = explained
    e = session.explanation
    text = buttons.buttons[2].callback().getvalue().decode("utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    for method in METHODS:
        assert f'id="method-{method}"' in text
    assert text.count('class="map"') == len(METHODS) * len(e.top)
    assert f"{e.costs['lime'].forward_passes} forward passes" in text
    assert "Faithfulness" in text and "Stability" not in text  # stability was not run


def test_an_import_of_something_else_is_refused_with_a_message(tmp_path):
    (tmp_path / "result.json").write_text('{"hello": 1}')
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(ExportError, match="not an xai-panel result.json"):
            import_results(store, tmp_path / "result.json")
        with pytest.raises(ExportError, match="does not exist"):
            import_results(store, tmp_path / "missing")


def test_the_report_adds_a_stability_report_of_this_image_only(explained, photos):
    from dataclasses import replace

    from xai_panel.metrics.stability import stability

    session, _, _, buttons = explained
    e = session.explanation
    report = stability(e.image, session.classifier, methods=("lime",), seeds=2, noise_repeats=0, top_k=2,
                       segmentation="grid", segmentation_params={"rows": 3, "cols": 3},
                       settings={"lime": {"num_samples": 40}})
    try:
        buttons.stability = report
        assert "<h2>Stability</h2>" in buttons.report().getvalue().decode()
        buttons.stability = replace(report, image=e.image[::-1].copy())  # a report of another image: left out
        assert "<h2>Stability</h2>" not in buttons.report().getvalue().decode()
    finally:
        buttons.stability = None
