"""Occlusion (leave one superpixel out): exact values on a tiny model, passes counted and
shared, and the real model through explain, the store and precompute."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.methods.test_anchors import toy_classifier, toy_engine
from xai_panel.methods.occlusion import OcclusionExplainer, adjacency, explain_occlusion

WEIGHTS = np.array([[2.0, -1.0, 0.5, 0.0], [0.0, 1.5, -0.5, 1.0], [-1.0, 0.0, 1.0, 0.5]])  # (classes, cells)


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def linear_model():
    # 2x2 grid of cells; logits = WEIGHTS @ kept
    return toy_classifier(lambda kept: kept.astype(np.float64) @ WEIGHTS.T, n_classes=3, cells=2)


def test_values_are_p_image_minus_p_without_each_superpixel_by_hand():
    engine = toy_engine(linear_model(), cells=2)
    results = explain_occlusion(engine, [0, 1, 2])
    full = softmax(WEIGHTS @ np.ones(4))
    for c in range(3):
        expected = [full[c] - softmax(WEIGHTS @ np.where(np.arange(4) == i, 0.0, 1.0))[c] for i in range(4)]
        assert np.allclose(results[c].values, expected, atol=1e-6)
        assert results[c].prediction == pytest.approx(full[c], abs=1e-6)


def test_one_pass_per_superpixel_for_every_class_and_free_when_memoised():
    engine = toy_engine(linear_model(), cells=2)
    with engine.track("occlusion") as box:
        explain_occlusion(engine, [0, 1, 2])
    assert box["cost"].forward_passes == 4 + 1  # M leave-one-out coalitions and the full image
    with engine.track("again") as box:
        explain_occlusion(engine, [2])
    assert box["cost"].forward_passes == 0 and box["cost"].cache_hits == 5


def test_a_larger_occluder_hides_the_neighbours_too():
    engine = toy_engine(linear_model(), cells=2)
    near = adjacency(engine.segments)
    assert near.tolist() == [[True, True, True, False], [True, True, False, True],
                             [True, False, True, True], [False, True, True, True]]
    results = explain_occlusion(engine, [0], neighbours=1)
    full = softmax(WEIGHTS @ np.ones(4))[0]
    kept_0 = np.array([0.0, 0.0, 0.0, 1.0])  # superpixel 0 and its two neighbours hidden
    assert results[0].values[0] == pytest.approx(full - softmax(WEIGHTS @ kept_0)[0], abs=1e-6)


def test_bad_settings_are_refused_with_the_bounds():
    with pytest.raises(ValueError, match="neighbours"):
        OcclusionExplainer(neighbours=9)
    with pytest.raises(ValueError, match="neighbours must be >= 0"):
        explain_occlusion(toy_engine(linear_model(), cells=2), [0], neighbours=-1)


def test_real_model_through_explain_shares_the_passes(classifier, chelsea):
    import xai_panel as xp

    res = xp.explain(chelsea, classifier, methods=("lime", "occlusion"), segmentation="slic",
                     settings={"lime": {"num_samples": 60}})
    m = res.segmentation.n_segments
    label = res.top[0].index
    cost = res.costs["occlusion"]
    assert cost.forward_passes + cost.cache_hits == m + 1  # every probe asked; LIME's pool may hold some
    values = res.occlusion[label].values
    assert values.shape == (m,) and np.isfinite(values).all()
    # A check against the model directly: hide the most important superpixel by hand.
    from xai_panel.engine.perturbation import fill_image

    view = res.image
    top = int(np.argmax(values))
    hidden = np.where((res.segmentation.labels == top)[..., None], fill_image(view, res.segmentation.labels), view)
    p_full = classifier.predict_proba(view[None])[0, label]
    p_hidden = classifier.predict_proba(hidden[None])[0, label]
    assert values[top] == pytest.approx(p_full - p_hidden, abs=1e-4)


@pytest.mark.slow
def test_precompute_methods_occlusion_stores_it(tmp_path):
    store = tmp_path / "store.sqlite"
    done = subprocess.run([sys.executable, "-m", "xai_panel", "precompute", "demo", "--limit", "1", "--methods",
                           "occlusion", "--segmentation", "slic", "--store", str(store), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    from xai_panel.store import ExplanationStore

    info = ExplanationStore(store).info()
    assert "occlusion" in str(info), info
    bad = subprocess.run([sys.executable, "-m", "xai_panel", "precompute", "demo", "--limit", "1", "--methods",
                          "oclusion", "--store", str(store), "--no-progress"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "did you mean 'occlusion'" in bad.stderr
