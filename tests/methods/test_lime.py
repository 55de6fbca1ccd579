"""LIME through the engine equals the lime package's own explain_instance."""

from __future__ import annotations

import numpy as np
import pytest

from xai_panel.engine.perturbation import PerturbationEngine
from xai_panel.engine.segmentation import segment
from xai_panel.methods.lime import explain_lime


def test_engine_lime_reproduces_lime_explain_instance(classifier, chelsea):
    from lime.lime_image import LimeImageExplainer

    view = classifier.prepare(chelsea)
    seg = segment(view, "quickshift", seed=0)
    seed, n = 11, 300
    theirs = LimeImageExplainer(random_state=seed).explain_instance(
        view, classifier.predict_proba, top_labels=5, hide_color=None, num_samples=n,
        batch_size=n, segmentation_fn=lambda _: seg.labels, random_seed=seed, progress_bar=False
    ) if "progress_bar" in LimeImageExplainer.explain_instance.__code__.co_varnames else \
        LimeImageExplainer(random_state=seed).explain_instance(
            view, classifier.predict_proba, top_labels=5, hide_color=None, num_samples=n,
            batch_size=n, segmentation_fn=lambda _: seg.labels, random_seed=seed)
    engine = PerturbationEngine(view, seg, classifier, "mean", batch_size=n)
    ours = explain_lime(engine, theirs.top_labels, num_samples=n, seed=seed)
    for label in theirs.top_labels:
        expected = np.zeros(seg.n_segments)
        for feature, weight in theirs.local_exp[label]:
            expected[feature] = weight
        np.testing.assert_allclose(ours[label].weights, expected, rtol=1e-4, atol=1e-6)
        assert ours[label].intercept == pytest.approx(theirs.intercept[label], abs=1e-6)
    # lime keeps one scalar ``score``, overwritten per label in ascending-probability order:
    # what survives is the top class's R^2.
    assert ours[theirs.top_labels[0]].score == pytest.approx(theirs.score, abs=1e-6)


def test_lime_mask_follows_num_features_without_recomputing(classifier, chelsea):
    view = classifier.prepare(chelsea)
    seg = segment(view, "quickshift")
    engine = PerturbationEngine(view, seg, classifier)
    label = int(classifier.predict_proba(view[None])[0].argmax())
    res = explain_lime(engine, [label], num_samples=200, seed=0)[label]
    top3, top8 = res.top_segments(3), res.top_segments(8)
    assert list(top8[:3]) == list(top3) and np.all(res.weights[top3] > 0)
    mask = res.mask(seg.labels, 3)
    assert set(np.unique(seg.labels[mask == 1])) == set(top3)
    signed = res.mask(seg.labels, 6, positive_only=False)
    assert set(np.unique(signed)) <= {-1, 0, 1}
