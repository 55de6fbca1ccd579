"""The one-file report and the figures, from an Explanation, without a server."""

from __future__ import annotations

import base64
import html
import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from xai_panel.methods.base import method_label
from xai_panel.render.curves import curve_svg
from xai_panel.render.figures import figure, figure_files, method_limit, zip_files
from xai_panel.render.overlays import anchor_overlay, lime_overlay, score_map, score_overlay
from xai_panel.render.report import report_html

from .conftest import EVERY_METHOD

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)" class="(\w+)">')


def _decode(b64: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_every_method_ran(every_method):
    assert every_method.methods == tuple(EVERY_METHOD) and not every_method.errors
    assert every_method.faithfulness and every_method.agreement


def test_a_figure_is_the_panes_drawing_for_its_result_type(every_method):
    e = every_method
    label, segments = e.top[0].index, e.segmentation.labels
    assert np.array_equal(figure(e, "lime", label), lime_overlay(e.image, segments, e.lime[label]))
    assert np.array_equal(figure(e, "anchors", label), anchor_overlay(e.image, segments, e.anchors[label]))
    limit = max(float(np.abs(score_map(segments, r)).max()) for r in e.gradcam.values())
    assert method_limit(e, "gradcam") == pytest.approx(limit)
    assert np.array_equal(figure(e, "gradcam", label), score_overlay(e.image, e.gradcam[label].heatmap, limit))
    with pytest.raises(KeyError, match="lime has no result for class 99999"):
        figure(e, "lime", 99999)


def test_the_figure_files_hold_every_method_and_class(every_method):
    e = every_method
    files = figure_files(e)
    assert len(files) == 1 + len(EVERY_METHOD) * len(e.top)
    with zipfile.ZipFile(io.BytesIO(zip_files(files, folder="cat"))) as z:
        back = {n: np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB")) for n in z.namelist()}
    assert set(back) == {f"cat/{n}" for n in files}
    for name, image in files.items():
        assert np.array_equal(back[f"cat/{name}"], image), name


def test_the_report_holds_the_top_classes_every_methods_maps_costs_and_trust(every_method):
    e = every_method
    text = report_html(e, title="chelsea.png")
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    assert "default-src 'none'" in text  # the page may load nothing besides itself
    # no reference to anything outside the file: every src is a data URL, no link, no url() to a host
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text)
    assert "http://" not in text and "https://" not in text and "@import" not in text
    for c in e.top:
        assert f"{c.probability:.2%}" in text and c.name in text
    images = IMG.findall(text)
    maps = [(alt, _decode(b64)) for b64, alt, kind in images if kind == "map"]
    assert len(maps) == len(EVERY_METHOD) * len(e.top)
    sections = re.findall(r'<section class="method" id="method-(\w+)">(.*?)</section>', text, re.S)
    assert [m for m, _ in sections] == list(EVERY_METHOD)
    for method, body in sections:
        pictures = [_decode(b64) for b64, _, kind in IMG.findall(body) if kind == "map"]
        expected = [figure(e, method, c.index) for c in e.top]
        assert all(np.array_equal(a, b) for a, b in zip(pictures, expected, strict=True)), method
        cost = e.costs[method]
        assert f"{cost.wall_seconds:.2f} s · {cost.forward_passes} forward passes" in body
        if cost.backward_passes:
            assert f"{cost.backward_passes} backward passes" in body
    f = e.faithfulness["lime"][e.top[0].index]
    assert f"{f.deletion_auc:.3f}" in text and f"{f.random_insertion_auc:.3f}" in text
    # the curves: one figure per measured method and class, the trust pane's drawing of them
    curves = re.findall(r"<figure class='xp-curve' data-method='([^']+)'>.*?</figure>", text, re.S)
    assert len(curves) == sum(len(per_class) for per_class in e.faithfulness.values()) > 0
    assert curve_svg(method_label("lime"), f) in text
    assert "<h3>Agreement</h3>" in text
    assert "Stability" not in text and "Sanity check" not in text  # not run: not shown


def test_a_report_needs_an_explanation():
    with pytest.raises(TypeError, match="report_html needs an Explanation, got dict"):
        report_html({})


def test_the_report_adds_stability_and_the_sanity_check_when_given(every_method, classifier, chelsea):
    from xai_panel.metrics.sanity import sanity_check
    from xai_panel.metrics.stability import stability

    grid = dict(segmentation="grid", segmentation_params={"rows": 3, "cols": 3}, settings={"lime": {"num_samples": 40}})
    steady = stability(chelsea, classifier, methods=("lime",), seeds=2, noise_repeats=1, top_k=2, **grid)
    check = sanity_check(chelsea, classifier, methods=("lime",), stages=1, **grid)
    text = report_html(every_method, title="chelsea.png", stability=steady, sanity=check)
    s = steady.results["lime"][steady.top[0].index]
    row = re.search(r"<table class='stability'>.*?</table>", text, re.S).group(0)
    assert f"<td class='n'>{s.seed_jaccard:.2f}</td><td class='n'>{s.seed_spearman:.2f}</td>" in row
    assert f"{steady.forward_passes} forward passes" in text
    sanity = re.search(r"<table class='sanity'>.*?</table>", text, re.S).group(0)
    assert f"{check.similarity['lime'][-1]:+.2f}" in sanity and ("passes" in sanity or "FAILS" in sanity)
    assert html.escape(check.verdict("lime")) in text
