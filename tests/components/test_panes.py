"""The panes follow their inputs: top classes, LIME, Anchors, SHAP, timing, the image."""

from __future__ import annotations

import dataclasses

import holoviews as hv
import numpy as np
import pytest

from xai_panel.components import AnchorPane, ImagePane, LimePane, ShapPane, TimingPane, TopClasses
from xai_panel.components.image_pane import shrink
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
    frames = pane.frames()
    assert len(frames) == 5 and all(isinstance(f, hv.RGB) for f in frames)
    segments = lime_shap.segmentation.labels
    for frame, score in zip(frames, lime_shap.top):
        expected = lime_overlay(lime_shap.image, segments, lime_shap.lime[score.index], 5)
        assert np.array_equal(rgb_array(frame), expected)
    assert "▶" in frames[1].opts.get().kwargs["title"] and "▶" not in frames[0].opts.get().kwargs["title"]
    pane.num_features = 2
    pane.show_negative = True
    again = pane.frames()
    label = lime_shap.top[0].index
    expected = lime_overlay(lime_shap.image, segments, lime_shap.lime[label], 2, show_negative=True)
    assert np.array_equal(rgb_array(again[0]), expected)
    assert pane.explanation is lime_shap  # only the display changed


def test_shap_pane_uses_one_colour_scale_for_all_classes(lime_shap):
    pane = ShapPane(explanation=lime_shap)
    frames = pane.frames()
    limit = symmetric_limit(shap_map(lime_shap.segmentation.labels, r) for r in lime_shap.shap.values())
    heats = [f.get(1) for f in frames]
    assert all(isinstance(h, hv.Image) for h in heats)
    assert {h.opts.get().kwargs["clim"] for h in heats} == {(-limit, limit)}
    colorbars = [h.opts.get().kwargs.get("colorbar") for h in heats]
    assert colorbars == [False, False, False, False, True]  # one colour bar for the row
    first = lime_shap.top[0].index
    assert np.allclose(np.asarray(heats[0].data), shap_map(lime_shap.segmentation.labels, lime_shap.shap[first]))


def test_anchor_pane_shows_anchors_statistics_and_examples(with_anchors):
    pane = AnchorPane(explanation=with_anchors, selected=with_anchors.top[0].index)
    frames = pane.frames()
    top = with_anchors.top
    for frame, score in zip(frames, top):
        expected = anchor_overlay(with_anchors.image, with_anchors.segmentation.labels, with_anchors.anchors[score.index])
        assert np.array_equal(rgb_array(frame), expected)
    assert "P 96%" in frames[0].opts.get().kwargs["title"]
    assert "no anchor" in frames[4].opts.get().kwargs["title"]
    table = pane._table(with_anchors).object
    assert "96.0%" in table and "30.0%" in table and "best effort" in table
    strip = pane._examples[()]
    assert "keep" in strip.opts.get().kwargs["title"] and top[0].name in strip.opts.get().kwargs["title"]
    assert rgb_array(strip).shape[1] > rgb_array(strip).shape[0] * 3  # four tiles side by side


def test_panes_show_placeholders_and_errors_before_results(lime_shap):
    pane = LimePane()
    assert all(isinstance(f, hv.RGB) for f in pane.frames())
    assert "Select an image" in pane._state(None, False, "").object
    assert "Computing" in pane._state(None, True, "").object
    assert "failed" in pane._state(lime_shap, False, "boom").object
    # An explanation without this method: the pane says so, the plots stay blank.
    anchor_pane = AnchorPane(explanation=lime_shap)
    assert "not requested" in anchor_pane._state(lime_shap, False, "").object


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
