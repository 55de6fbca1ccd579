"""``xai_panel.explain``: the public entry point, on the real model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import xai_panel as xp
from xai_panel.engine.perturbation import Cancelled
from xai_panel.engine.segmentation import segment
from xai_panel.methods import LimeExplainer

FAST = {"lime": {"num_samples": 150}}


def test_top_k_matches_the_classifier_and_costs_are_reported(classifier, chelsea):
    res = xp.explain(chelsea, classifier, methods=("lime",), settings=FAST)
    assert [c.index for c in res.top] == [c.index for c in classifier.top_k(chelsea, 5)]
    assert res.image.shape == (224, 224, 3)
    assert set(res.lime) == set(res.labels)
    cost = res.costs["lime"]
    assert cost.forward_passes + cost.cache_hits == cost.samples == 150
    assert cost.forward_passes >= 140 and cost.wall_seconds >= cost.model_seconds > 0


def test_same_seed_same_result_different_seed_differs(classifier, chelsea):
    a = xp.explain(chelsea, classifier, methods=("lime",), seed=3, settings=FAST)
    b = xp.explain(chelsea, classifier, methods=("lime",), seed=3, settings=FAST)
    c = xp.explain(chelsea, classifier, methods=("lime",), seed=4, settings=FAST)
    top = a.top[0].index
    np.testing.assert_array_equal(a.segmentation.labels, b.segmentation.labels)
    np.testing.assert_array_equal(a.lime[top].weights, b.lime[top].weights)
    assert not np.allclose(a.lime[top].weights, c.lime[top].weights)


def test_progressive_callback_and_reused_segmentation(classifier, chelsea):
    seg = segment(classifier.prepare(chelsea), "grid", rows=4, cols=4)
    seen = []
    res = xp.explain(chelsea, classifier, methods=("lime",), settings=FAST, segments=seg,
                     on_method=lambda partial: seen.append(partial.methods))
    assert seen == [(), ("lime",)]
    assert res.segmentation is seg and res.lime[res.labels[0]].weights.shape == (16,)


def test_a_lime_preview_arrives_first_and_changes_nothing_else(classifier, chelsea):
    seen = []
    res = xp.explain(chelsea, classifier, methods=("lime", "shap"), settings=FAST, preview=40, seed=2,
                     on_method=seen.append)
    plain = xp.explain(chelsea, classifier, methods=("lime", "shap"), settings=FAST, seed=2)
    assert [s.preview for s in seen] == [(), ("lime",), (), ()]  # top-k, the preview, LIME, SHAP
    early, top = seen[1], res.top[0].index
    assert set(early.lime) == set(res.labels) and not early.shap
    assert not np.allclose(early.lime[top].weights, res.lime[top].weights)  # fitted on 40 samples, not 150
    assert res.preview == () and res.methods == ("lime", "shap")
    for label in res.labels:  # the result and its cost do not depend on the preview
        np.testing.assert_array_equal(res.lime[label].weights, plain.lime[label].weights)
        np.testing.assert_array_equal(res.shap[label].values, plain.shap[label].values)
    assert res.costs["lime"].forward_passes == plain.costs["lime"].forward_passes  # no pass is made twice
    assert res.total_forward_passes == plain.total_forward_passes


def test_cancel_raises_cancelled(classifier, chelsea):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        xp.explain(chelsea, classifier, methods=("lime",), settings=FAST, cancel=cancel)


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": ("deeplift",)}, "unknown method"),
    ({"top_k": 0}, "top_k must be between 1 and"),
    ({"seed": -1}, "seed must be an integer"),
    ({"settings": {"lime": {"num_samples": 10**9}}}, "num_samples.*at most"),
    ({"settings": {"lime": {"samples": 10}}}, "lime has no setting samples"),
    ({"segmentation": "watershed"}, "unknown segmentation"),
    ({"fill": "purple"}, "unknown fill"),
])
def test_bad_arguments_get_clear_messages(classifier, chelsea, kwargs, message):
    with pytest.raises(ValueError, match=message):
        xp.explain(chelsea, classifier, **{"methods": ("lime",), **kwargs})


def test_param_explainer_writes_read_only_outputs(classifier, chelsea):
    lime = LimeExplainer(num_samples=120)
    res = lime.explain(chelsea, classifier)
    assert set(lime.results) == set(res.labels) and lime.cost.samples == 120
    with pytest.raises(TypeError):
        lime.results = {}
    with pytest.raises(ValueError):
        lime.num_samples = 5
