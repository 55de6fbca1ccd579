"""Overlays drawn by the panes, checked pixel by pixel on tiny synthetic images."""

from __future__ import annotations

import numpy as np

from xai_panel.methods.anchors import AnchorResult
from xai_panel.methods.lime import LimeResult
from xai_panel.methods.shap import ShapResult
from xai_panel.render.overlays import (
    ANCHOR,
    NEGATIVE,
    POSITIVE,
    anchor_overlay,
    boundaries,
    dim,
    lime_overlay,
    score_map,
    symmetric_limit,
)

# Four 4x4 superpixels in an 8x8 image: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
SEGMENTS = np.kron(np.arange(4).reshape(2, 2), np.ones((4, 4), int)).astype(np.int32)
IMAGE = np.full((8, 8, 3), 200, np.uint8)


def lime(weights):
    return LimeResult(label=1, weights=np.asarray(weights, float), intercept=0.0, score=0.5, local_prediction=0.5)


def test_boundaries_mark_both_sides_of_each_border_and_can_be_restricted():
    edge = boundaries(SEGMENTS)
    assert edge[3, 0] and edge[4, 0] and edge[0, 3] and edge[0, 4]
    assert not edge[0, 0] and not edge[7, 7]
    only_0 = boundaries(SEGMENTS, keep=[0])
    assert only_0[3, 0] and only_0[0, 3] and not only_0[4, 0] and not only_0[7, 4]


def test_lime_overlay_keeps_the_top_positive_superpixels_and_dims_the_rest():
    out = lime_overlay(IMAGE, SEGMENTS, lime([0.5, 0.2, -0.4, 0.0]), num_features=1, show_boundaries=False)
    assert out.shape == IMAGE.shape and out.dtype == np.uint8
    tint = (IMAGE[0, 0] * 0.82 + np.asarray(POSITIVE) * 0.18).astype(np.uint8)
    assert (out[1, 1] == tint).all()  # superpixel 0: the strongest positive weight
    assert (out[1, 6] == dim(IMAGE)[1, 6]).all()  # superpixel 1 (positive but not in the top 1) is dimmed
    assert (out[6, 1] == dim(IMAGE)[6, 1]).all()  # negative weights are hidden by default


def test_lime_overlay_shows_negative_superpixels_on_request_and_draws_outlines():
    out = lime_overlay(IMAGE, SEGMENTS, lime([0.5, 0.2, -0.4, 0.0]), num_features=1, show_negative=True)
    assert (out[3, 1] == POSITIVE).all()  # outline of the positive superpixel (its border row)
    assert (out[4, 1] == NEGATIVE).all()  # outline of the negative one, just below
    inner_negative = (IMAGE[5, 1] * 0.55 + np.asarray(NEGATIVE) * 0.45).astype(np.uint8)
    assert (out[5, 1] == inner_negative).all()


def test_lime_overlay_never_shows_non_positive_weights_as_support():
    out = lime_overlay(IMAGE, SEGMENTS, lime([-1.0, -0.5, 0.0, -0.1]), num_features=4, show_boundaries=False)
    assert (out == dim(IMAGE)).all()


def test_anchor_overlay_keeps_the_anchor_and_outlines_it():
    anchor = AnchorResult(label=1, target="top-1", segments=(3,), precision=0.97, coverage=0.4,
                          examples=np.zeros((0, 8, 8, 3), np.uint8), counter_examples=np.zeros((0, 8, 8, 3), np.uint8),
                          found=True)
    out = anchor_overlay(IMAGE, SEGMENTS, anchor)
    assert (out[4, 5] == ANCHOR).all()  # the anchor border, next to superpixel 1
    assert (out[5, 5] == IMAGE[5, 5]).all()
    assert (out[1, 1] == dim(IMAGE)[1, 1]).all()
    assert (anchor_overlay(IMAGE, SEGMENTS, []) == dim(IMAGE)).all()  # an empty anchor: all dimmed


def test_score_map_paints_superpixels_or_uses_the_pixel_heatmap():
    values = np.array([1.0, -2.0, 0.5, 0.0])
    result = ShapResult(label=1, values=values, base_value=0.1, prediction=0.6, estimator="pool")
    painted = score_map(SEGMENTS, result)
    assert painted[0, 0] == 1.0 and painted[0, 7] == -2.0 and painted[7, 0] == 0.5
    heat = np.arange(64, dtype=float).reshape(8, 8)
    pixel = ShapResult(label=1, values=values, base_value=0.1, prediction=0.6, estimator="partition", heatmap=heat)
    assert (score_map(SEGMENTS, pixel) == heat).all()


def test_symmetric_limit_is_shared_and_never_zero():
    assert symmetric_limit([np.array([0.1, -0.3]), np.array([0.2])]) == 0.3
    assert symmetric_limit([np.zeros(3)]) > 0
