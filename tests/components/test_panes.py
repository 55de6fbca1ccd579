"""The panes follow their inputs: top classes, LIME, Anchors, SHAP, timing, the image."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import re

import numpy as np
import pytest
from PIL import Image

from xai_panel.components import AnchorPane, ImagePane, LimePane, ShapPane, TimingPane, TopClasses
from xai_panel.components.panes.image import shrink
from xai_panel.components.panes.scores import score_overlay
from xai_panel.methods.anchors import AnchorResult
from xai_panel.render.overlays import anchor_overlay, lime_overlay, score_map, symmetric_limit
from xai_panel.render.tiles import tile_cache


def pictures(html: str) -> list[np.ndarray]:
    """The images a pane's HTML holds, decoded, in order."""
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
            for data in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)]


def captions(html: str) -> list[str]:
    return re.findall(r"<figcaption>(.*?)</figcaption>", html)


def close(a: np.ndarray, b: np.ndarray, tolerance: float = 4.0) -> bool:
    """Equal up to JPEG's loss (mean absolute difference in grey levels)."""
    return a.shape == b.shape and float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)))) < tolerance


@pytest.fixture(scope="module")
def with_anchors(lime_shap):
    """The LIME+SHAP explanation plus hand-made anchors (real results, chosen values)."""
    view = lime_shap.image
    examples = np.stack([view, view // 2])
    anchors = {
        label: AnchorResult(label=label, target="top-1" if rank == 0 else "top-k", segments=(rank, rank + 1),
                            precision=0.96 - rank / 100, coverage=0.3, examples=examples[: 2 - rank % 2],
                            counter_examples=examples[:1], found=rank != 4)
        for rank, label in enumerate(lime_shap.labels)
    }
    return lime_shap.with_results(anchors=anchors)


def test_top_classes_select_the_top_class_and_follow_clicks(lime_shap):
    pane = TopClasses(top=list(lime_shap.top))
    assert pane.selected == lime_shap.top[0].index
    assert list(pane._list.options.values()) == [c.index for c in lime_shap.top]
    pane._list.value = lime_shap.top[1].index  # a click in the ranked list
    assert pane.selected == lime_shap.top[1].index
    with pytest.raises(ValueError):
        pane.select(999_999)
    # The buttons are the bars: each filled to its probability (CSS variables the stylesheet reads).
    widths = [float(pane._list.styles[f"--xp-p{rank}"].rstrip("%")) for rank in range(1, 6)]
    assert widths == pytest.approx([100 * c.probability for c in lime_shap.top], abs=0.05)
    assert all(f"var(--xp-p{rank}" in pane._list.stylesheets[0] for rank in range(1, 6))
    pane.select(lime_shap.top[-1].index)
    assert pane._list.value == lime_shap.top[-1].index  # the active button is the inspected class
    pane.top = []  # a new image: the selection resets
    assert pane.selected is None and pane._list.options == {} and pane._list.styles == {}


def test_top_classes_mark_the_true_label(lime_shap):
    pane = TopClasses(top=list(lime_shap.top), true_label=lime_shap.top[2].index)
    labels = list(pane._list.options)
    assert labels[2].endswith("✓") and not labels[0].endswith("✓")


def test_lime_pane_draws_each_class_and_filters_without_recomputing(lime_shap):
    pane = LimePane(explanation=lime_shap, selected=lime_shap.top[1].index)
    tiles = pane.tiles()
    assert len(tiles) == 5
    segments = lime_shap.segmentation.labels
    for (label, tile), score in zip(tiles, lime_shap.top):
        expected = lime_overlay(lime_shap.image, segments, lime_shap.lime[score.index], 5)
        assert score.name in label and "R²" in label
        assert label.startswith("▶ 2.") == (score.index == pane.selected)  # the inspected class is marked
        assert np.array_equal(tile, expected)
    # The page gets the same pictures (as JPEG) with the same captions, the inspected one framed.
    html = pane._view.object
    assert captions(html) == [label for label, _ in tiles]
    assert all(close(sent, tile) for sent, (_, tile) in zip(pictures(html), tiles))
    assert len(re.findall(r'class="xp-tile xp-chosen"', html)) == 1
    assert html.index("xp-chosen") > html.index("<figcaption>1. ")  # rank 2 is framed, not rank 1
    hits = tile_cache().hits
    pane.selected = lime_shap.top[0].index  # moving the frame re-encodes nothing
    assert tile_cache().hits >= hits + 5 and captions(pane._view.object)[0].startswith("▶ 1.")
    pane.param.update(num_features=2, show_negative=True)
    label = lime_shap.top[0].index
    expected = lime_overlay(lime_shap.image, segments, lime_shap.lime[label], 2, show_negative=True)
    assert np.array_equal(pane.tiles()[0][1], expected)
    assert close(pictures(pane._view.object)[0], expected)
    assert pane.explanation is lime_shap  # only the display changed


def test_shap_pane_uses_one_colour_scale_for_all_classes(lime_shap):
    pane = ShapPane(explanation=lime_shap, selected=lime_shap.top[0].index)
    limit = symmetric_limit(score_map(lime_shap.segmentation.labels, r) for r in lime_shap.shap.values())
    assert pane.limit() == limit
    first = lime_shap.top[0].index
    label, values = pane.tiles()[1]
    assert "Σφ" in label and np.allclose(values, score_map(lime_shap.segmentation.labels, lime_shap.shap[lime_shap.top[1].index]))
    html = pane._view.object
    sent = pictures(html)
    assert len(sent) == 5 and "xp-colorbar" in html and f"{limit:+.3g}" in html  # one colour bar for the row
    for score, picture in zip(lime_shap.top, sent):  # every class on the same scale
        values = score_map(lime_shap.segmentation.labels, lime_shap.shap[score.index])
        assert close(picture, score_overlay(lime_shap.image, values, limit, "RdBu_r", 0.7))
    # Red where the value is most positive, blue where most negative.
    values = score_map(lime_shap.segmentation.labels, lime_shap.shap[first])
    picture = sent[0].astype(int)
    hi, lo = np.unravel_index(np.argmax(values), values.shape), np.unravel_index(np.argmin(values), values.shape)
    assert picture[hi][0] > picture[hi][2] and picture[lo][2] > picture[lo][0]
    pane.alpha = 0.3
    assert close(pictures(pane._view.object)[0], score_overlay(lime_shap.image, values, limit, "RdBu_r", 0.3))


def test_anchor_pane_shows_anchors_statistics_and_examples(with_anchors):
    pane = AnchorPane(explanation=with_anchors, selected=with_anchors.top[1].index)
    top = with_anchors.top
    tiles = pane.tiles()
    expected = anchor_overlay(with_anchors.image, with_anchors.segmentation.labels, with_anchors.anchors[top[0].index])
    assert np.array_equal(tiles[0][1], expected)
    assert tiles[0][0].endswith("P 96%") and tiles[4][0].endswith("no anchor")
    table = pane._table(with_anchors)
    assert "96.0%" in table and "30.0%" in table and "best effort" in table
    assert table.count("<td>found</td>") == 4 and "empty" not in table  # non-empty anchors: as before
    assert pane.inspected() is with_anchors.anchors[top[1].index]
    strip = pane.examples_html()
    title = re.search(r'xp-strip-title">(.*?)</div>', strip).group(1)
    assert "keep" in title and top[1].name in title and "(1)" in title  # rank 2 has one example
    assert len(pictures(strip)) == 1 and strip.count("xp-tile") == pane.max_examples  # padded to four slots
    assert close(pictures(strip)[0], with_anchors.anchors[top[1].index].examples[0])
    assert "lose" in pane.examples_html(kind="counter_examples")


def test_panes_show_placeholders_and_errors_before_results(lime_shap):
    pane = LimePane()
    assert [label for label, _ in pane.tiles()] == [""] * 5
    assert "Select an image" in pane._state(None, False, "")
    assert "Computing" in pane._state(None, True, "")
    assert "failed" in pane._state(lime_shap, False, "<boom>") and "&lt;boom&gt;" in pane._state(lime_shap, False, "<boom>")
    # An explanation without this method: the pane says so; the tiles name the classes, blank.
    anchor_pane = AnchorPane(explanation=lime_shap)
    assert "not requested" in anchor_pane._state(lime_shap, False, "")
    assert [label for label, _ in anchor_pane.tiles()][0] == f"1. {lime_shap.top[0].name}"


def test_a_pane_redraws_only_when_its_own_results_change(lime_shap):

    pane = LimePane(explanation=lime_shap)
    drawn = []
    pane.param.watch(lambda e: drawn.append(e.new), "shown")
    pane.explanation = lime_shap.with_results(anchors={})  # another method arrived: same LIME
    assert drawn == []
    pane.explanation = None
    assert drawn == [None]


def test_timing_pane_reports_the_engine_costs(lime_shap):
    pane = TimingPane(explanation=lime_shap, timings={"top": 0.01, "lime": 0.5, "shap": 0.6, "done": 0.6})
    rows = pane.rows(lime_shap)
    assert [r["method"] for r in rows] == ["top-k", "lime", "shap"]
    assert rows[1]["forward_passes"] == lime_shap.costs["lime"].forward_passes
    html = pane._table(lime_shap, pane.timings, False)
    assert str(lime_shap.total_forward_passes) in html and "0.60" in html
    ready = re.findall(r"<td>([^<]*)</td></tr>", html)  # the last column, row by row
    assert ready == ["0.01", "0.50", "0.60", "0.60"] and "nan" not in html
    assert "<td>–</td>" in pane._table(lime_shap, {"lime": 0.5}, False)  # not known: a dash, not 'nan'
    bars = pane._bars(lime_shap)
    widths = [float(w) for w in re.findall(r"width: ([\d.]+)%", bars)]
    assert len(widths) == 2 * len(rows)
    assert max(widths[i] + widths[i + 1] for i in range(0, len(widths), 2)) == pytest.approx(100, abs=0.2)
    for row in rows:  # every method's wall time is written next to its bar
        assert f"{row['wall_seconds']:.2f} s" in bars


def test_image_pane_shrinks_large_images(photos):
    big = np.zeros((2000, 3000, 3), np.uint8)
    assert shrink(big, 300).shape == (200, 300, 3)
    assert shrink(photos["coffee"], 4000) is photos["coffee"]
    big[:, :, 0] = 200
    pane = ImagePane(image=big, title="big <one>")
    assert pane.picture().shape == (300, 300, 3)  # letterboxed into one square size
    html = pane.html()
    sent = pictures(html)[0]
    assert sent.shape == (300, 300, 3) and close(sent, pane.picture())
    assert captions(html) == ["big &lt;one&gt;"]


def test_a_lime_preview_is_marked_until_the_final_fit_replaces_it(lime_shap):
    early = dataclasses.replace(lime_shap, preview=("lime",))
    pane = LimePane(explanation=early)
    assert all(label.endswith(" · preview") for label, _ in pane.tiles())
    assert "preview" in pane._state(early, False, "") and captions(pane._view.object)[0].endswith("preview")
    pane.explanation = lime_shap  # the same results, now final: the captions follow
    assert not any("preview" in label for label, _ in pane.tiles())
    assert not any("preview" in c for c in captions(pane._view.object))


def test_another_image_is_drawn_once_framing_its_top_class(lime_shap, photos, classifier):
    """A new image's explanation with the old class still selected: one drawing, framing the new
    top class (the class list resets ``selected`` to it next, which then changes nothing)."""
    from xai_panel import explain

    other = explain(photos["coffee"], classifier, ["lime"], top_k=5, segmentation="slic",
                    settings={"lime": {"num_samples": 30}})
    assert other.labels[0] != lime_shap.labels[2]
    pane = LimePane(explanation=lime_shap, selected=lime_shap.labels[2])
    assert pane.marked == lime_shap.labels[2]
    drawn = []
    pane.param.watch(lambda *events: drawn.append({e.name: e.new for e in events}), ["shown", "marked"])
    pane.explanation = other
    pane.selected = other.labels[0]  # as TopClasses does when its top changes
    assert len(drawn) == 1 and drawn[0]["marked"] == other.labels[0] and drawn[0]["shown"] is other
    pane.selected = other.labels[3]  # a click on a class: the frame follows it
    assert pane.marked == other.labels[3] and len(drawn) == 2


def test_an_empty_anchor_is_said_to_need_no_region_in_the_pane_the_trust_matrix_and_the_report():
    """A real explanation (toy model, real engine): class 1 stays in the top-2 with everything hidden."""
    from tests.methods.test_anchors import one_cell_model, toy_image
    from xai_panel.components.panes.trust import TrustPane
    from xai_panel.engine.pipeline import explain
    from xai_panel.render.report import report_html

    res = explain(toy_image(4), one_cell_model(5), methods=("lime", "anchors"), top_k=2, seed=0,
                  segmentation="grid", segmentation_params={"rows": 4, "cols": 4}, fill="constant",
                  settings={"anchors": {"n_examples": 2, "regions": None}}, metrics=("agreement",))
    normal, empty = res.anchors[0], res.anchors[1]
    assert normal.segments == (5,) and not normal.empty and empty.segments == () and empty.empty
    pane = AnchorPane(explanation=res, selected=1)
    captions_ = [label for label, _ in pane.tiles()]
    assert captions_[0].endswith("P 100%") and captions_[1].endswith("empty anchor")
    table = pane._table(res)
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert rows[1].endswith("<td>found</td>") and rows[2].endswith("<td>empty (needs no region)</td>")
    assert html.escape(empty.note) in table and "even with every superpixel hidden" in empty.note
    # the inspected empty anchor: its note instead of grey tiles; the normal one keeps its examples
    strip = pane.examples_html()
    assert "needs no region" in strip and html.escape(empty.note) in strip and pictures(strip) == []
    assert pane.examples_html(kind="counter_examples") == ""
    normal_strip = pane.examples_html(res, 0)
    assert len(pictures(normal_strip)) == 2 and "needs no region" not in normal_strip
    # the agreement matrix does not read the empty anchor's IoU of 0 as disagreement
    matrix = TrustPane(explanation=res, selected=1).agreement_html()
    assert matrix.count("– empty anchor") == 2 and not re.search(r"IoU \d", matrix)
    assert re.search(r"IoU \d", TrustPane(explanation=res, selected=0).agreement_html())
    report = report_html(res)
    assert "empty anchor (needs no region)" in report and html.escape(empty.note) in report
    assert f"P 100%, coverage {normal.coverage:.0%}" in report  # the top class's real anchor, as before
    assert report.count("anchor-note") == 1
