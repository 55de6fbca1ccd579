"""The panes follow their inputs: top classes, LIME, Anchors, SHAP, timing, the image."""

from __future__ import annotations

import dataclasses

import holoviews as hv
import numpy as np
import pytest

from xai_panel.components import AnchorPane, ImagePane, LimePane, ShapPane, TimingPane, TopClasses
from xai_panel.components.image_pane import shrink
from xai_panel.components.method_pane import SELECTED
from xai_panel.components.rendering import anchor_overlay, lime_overlay, shap_map, symmetric_limit
from xai_panel.explain.results import AnchorResult


def rgb_array(element) -> np.ndarray:
    """The pixels an hv.RGB was given (top row first)."""
    return np.asarray(element.data)[..., :3]


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
    return dataclasses.replace(lime_shap, anchors=anchors)


def test_top_classes_select_the_top_class_and_follow_clicks(lime_shap):
    pane = TopClasses(top=list(lime_shap.top))
    assert pane.selected == lime_shap.top[0].index
    assert list(pane._list.options.values()) == [c.index for c in lime_shap.top]
    pane._tap.event(index=[0])  # the chart lists the top class last: bar 0 is rank 5
    assert pane.selected == lime_shap.top[-1].index
    assert pane._list.value == pane.selected
    pane._list.value = lime_shap.top[1].index  # a click in the ranked list
    assert pane.selected == lime_shap.top[1].index
    with pytest.raises(ValueError):
        pane.select(999_999)
    bars = pane._bars[()]
    assert isinstance(bars, hv.Bars) and list(bars.dimension_values("class")) == [c.name for c in reversed(lime_shap.top)]
    roles = dict(zip(bars.dimension_values("class"), bars.dimension_values("role")))
    assert roles[lime_shap.top[1].name] == "inspect"
    pane.top = []  # a new image: the selection resets
    assert pane.selected is None


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
        if score.index == pane.selected:
            assert label.startswith("▶ 2.") and (tile[:5] == SELECTED).all()  # the inspected class is framed
            assert np.array_equal(tile[5:-5, 5:-5], expected[5:-5, 5:-5])
        else:
            assert np.array_equal(tile, expected)
    plot = pane._plot[()]
    assert isinstance(plot, hv.RGB)
    assert [t[1] for t in plot.opts.get().kwargs["xticks"]] == [label for label, _ in tiles]
    pane.param.update(num_features=2, show_negative=True)
    label = lime_shap.top[0].index
    expected = lime_overlay(lime_shap.image, segments, lime_shap.lime[label], 2, show_negative=True)
    assert np.array_equal(pane.tiles()[0][1], expected)
    assert pane.explanation is lime_shap  # only the display changed


def test_shap_pane_uses_one_colour_scale_for_all_classes(lime_shap):
    pane = ShapPane(explanation=lime_shap, selected=lime_shap.top[0].index)
    limit = symmetric_limit(shap_map(lime_shap.segmentation.labels, r) for r in lime_shap.shap.values())
    assert pane.limit() == limit
    overlay = pane._plot[()]
    heat = overlay.get(1)
    assert isinstance(heat, hv.Image) and heat.opts.get().kwargs["clim"] == (-limit, limit)
    assert heat.opts.get().kwargs["colorbar"] is True  # one colour bar for the row
    first = lime_shap.top[0].index
    label, values = pane.tiles()[1]
    assert "Σφ" in label and np.allclose(values, shap_map(lime_shap.segmentation.labels, lime_shap.shap[lime_shap.top[1].index]))
    side = lime_shap.image.shape[0]
    assert np.allclose(np.asarray(heat.data)[5:-5, 5:side - 5], shap_map(lime_shap.segmentation.labels,
                                                                      lime_shap.shap[first])[5:-5, 5:-5])
    assert np.isnan(np.asarray(heat.data)[0, 0])  # the inspected (top) class keeps its frame visible


def test_anchor_pane_shows_anchors_statistics_and_examples(with_anchors):
    pane = AnchorPane(explanation=with_anchors, selected=with_anchors.top[1].index)
    top = with_anchors.top
    tiles = pane.tiles()
    expected = anchor_overlay(with_anchors.image, with_anchors.segmentation.labels, with_anchors.anchors[top[0].index])
    assert np.array_equal(tiles[0][1], expected)
    assert tiles[0][0].endswith("P 96%") and tiles[4][0].endswith("no anchor")
    table = pane._table(with_anchors).object
    assert "96.0%" in table and "30.0%" in table and "best effort" in table
    assert pane.inspected() is with_anchors.anchors[top[1].index]
    strip = pane._examples[()]
    title = strip.opts.get().kwargs["title"]
    assert "keep" in title and top[1].name in title and "(1)" in title  # rank 2 has one example
    assert rgb_array(strip).shape[1] > rgb_array(strip).shape[0] * 3  # four tiles side by side


def test_panes_show_placeholders_and_errors_before_results(lime_shap):
    pane = LimePane()
    assert [label for label, _ in pane.tiles()] == [""] * 5
    assert "Select an image" in pane._state(None, False, "").object
    assert "Computing" in pane._state(None, True, "").object
    assert "failed" in pane._state(lime_shap, False, "boom").object
    # An explanation without this method: the pane says so; the tiles name the classes, blank.
    anchor_pane = AnchorPane(explanation=lime_shap)
    assert "not requested" in anchor_pane._state(lime_shap, False, "").object
    assert [label for label, _ in anchor_pane.tiles()][0] == f"1. {lime_shap.top[0].name}"


def test_a_pane_redraws_only_when_its_own_results_change(lime_shap):
    import dataclasses

    pane = LimePane(explanation=lime_shap)
    drawn = []
    pane.param.watch(lambda e: drawn.append(e.new), "shown")
    pane.explanation = dataclasses.replace(lime_shap, anchors={})  # another method arrived: same LIME
    assert drawn == []
    pane.explanation = None
    assert drawn == [None]


def test_timing_pane_reports_the_engine_costs(lime_shap):
    pane = TimingPane(explanation=lime_shap, timings={"top": 0.01, "lime": 0.5, "shap": 0.6, "done": 0.6})
    rows = pane.rows(lime_shap)
    assert [r["method"] for r in rows] == ["top-k", "lime", "shap"]
    assert rows[1]["forward_passes"] == lime_shap.costs["lime"].forward_passes
    html = pane._table(lime_shap, pane.timings, False).object
    assert str(lime_shap.total_forward_passes) in html and "0.60" in html
    bars = pane._chart[()]
    total = sum(bars.dimension_values("seconds"))
    assert total == pytest.approx(sum(c.wall_seconds for c in lime_shap.costs.values()), rel=1e-6)


def test_image_pane_shrinks_large_images(photos):
    big = np.zeros((2000, 3000, 3), np.uint8)
    assert shrink(big, 300).shape == (200, 300, 3)
    assert shrink(photos["coffee"], 4000) is photos["coffee"]
    pane = ImagePane(image=big, title="big")
    element = pane._plot[()]
    assert rgb_array(element).shape == (300, 300, 3)  # letterboxed into one square size
