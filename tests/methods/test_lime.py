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


# -- the opt-in stopping rule (stop_when_stable) -----------------------------------------------------

def test_the_stopping_rule_stops_on_a_prefix_of_the_fixed_pool_and_ranks_like_it(classifier, chelsea):
    from scipy.stats import spearmanr

    from xai_panel.methods.lime import lime_pool, stable_pool

    view = classifier.prepare(chelsea)
    seg = segment(view, "slic", seed=0)
    labels = [c.index for c in classifier.top_k(view, 2)]
    fixed_engine = PerturbationEngine(view, seg, classifier, "mean")
    fixed = lime_pool(fixed_engine, 1000, 0)
    reference = explain_lime(fixed_engine, labels, num_samples=1000, seed=0, pool=fixed)

    engine = PerturbationEngine(view, seg, classifier, "mean")
    with engine.track("lime") as box:
        pool = stable_pool(engine, labels, seed=0, max_samples=1000, min_samples=200, step=50)
    n = len(pool[0])
    # Two calm checks need three fits (200, 250, 300 at the least); stopped well before the budget.
    assert 300 <= n < 1000 and (n - 200) % 50 == 0
    assert box["cost"].forward_passes == n  # each sample evaluated once, the refits cost no passes
    assert np.array_equal(pool[0], fixed[0][:n]) and np.allclose(pool[1], fixed[1][:n], atol=1e-5)
    stopped = explain_lime(engine, labels, num_samples=n, seed=0, pool=pool)
    for label in labels:
        assert spearmanr(reference[label].weights, stopped[label].weights).statistic > 0.9
        assert len(set(reference[label].top_segments(5)) & set(stopped[label].top_segments(5))) >= 3


def test_the_stopping_rule_never_stable_draws_the_whole_fixed_pool(classifier, chelsea):
    from xai_panel.methods.lime import lime_pool, stable_pool

    view = classifier.prepare(chelsea)
    seg = segment(view, "slic", seed=0)
    labels = [classifier.top_k(view, 1)[0].index]
    engine = PerturbationEngine(view, seg, classifier, "mean")
    pool = stable_pool(engine, labels, seed=3, max_samples=300, min_samples=100, step=100, stable_rank=1.0)
    fixed = lime_pool(engine, 300, 3)
    assert np.array_equal(pool[0], fixed[0]) and np.array_equal(pool[1], fixed[1])


def test_explain_with_the_stopping_rule_spends_fewer_passes_and_refuses_bad_settings(classifier, chelsea):
    from xai_panel import explain
    from xai_panel.methods import LimeExplainer

    settings = {"lime": {"num_samples": 1000, "stop_when_stable": True}}
    res = explain(chelsea, classifier, ["lime"], top_k=2, segmentation="slic", settings=settings)
    cost = res.costs["lime"]
    assert 300 <= cost.forward_passes < 1000 and cost.samples < 1000  # each row asked for once
    assert res.settings["lime"]["stop_when_stable"] is True  # part of the result's (and the store's) key
    with pytest.raises(ValueError, match="min_samples"):
        LimeExplainer(stop_when_stable=True, min_samples=5)
    with pytest.raises(ValueError, match="stable_rank"):
        LimeExplainer(stable_rank=1.5)
