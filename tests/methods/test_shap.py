"""SHAP estimators against exact Shapley values (tiny fixed model) and on the real model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xai_panel.engine.perturbation import PerturbationEngine
from xai_panel.engine.segmentation import segment
from xai_panel.methods.lime import lime_pool
from xai_panel.methods.shap import explain_shap, shapley_kernel_weights
from xai_panel.models.classifier import Classifier, Preprocessing

SIZE = 32


def toy_classifier(n_classes: int = 3, hidden: int = 8, seed: int = 0) -> Classifier:
    """A fixed random two-layer network on raw pixels: nonlinear, deterministic, instant."""
    rs = np.random.RandomState(seed)
    a = rs.normal(0, 1, (3 * SIZE * SIZE, hidden)) * 4 / np.sqrt(3 * SIZE * SIZE)
    b = rs.normal(0, 1, (hidden, n_classes))

    def runner(x: np.ndarray) -> np.ndarray:
        return np.tanh(x.reshape(len(x), -1) @ a) @ b

    return Classifier(runner, [f"class{i}" for i in range(n_classes)], model_id="toy-mlp",
                      preprocessing=Preprocessing(crop_size=SIZE, resize_size=SIZE, mean=(0.5,) * 3, std=(0.25,) * 3),
                      batch_size=64)


def toy_engine(rows: int, cols: int) -> PerturbationEngine:
    image = np.random.RandomState(1).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    return PerturbationEngine(image, segment(image, "grid", rows=rows, cols=cols), toy_classifier(), "mean")


def all_coalitions(m: int) -> np.ndarray:
    return np.array(list(itertools.product([False, True], repeat=m)))


def exact_shapley(engine: PerturbationEngine, labels) -> np.ndarray:
    """Shapley values (M, L) by full enumeration of the 2^M coalitions."""
    m = engine.n_segments
    coalitions = all_coalitions(m)
    v = engine.evaluate(coalitions)[:, labels].astype(np.float64)
    index = {c.tobytes(): i for i, c in enumerate(coalitions)}
    phi = np.zeros((m, len(labels)))
    for row, c in enumerate(coalitions):
        s = int(c.sum())
        for i in np.flatnonzero(~c):
            with_i = c.copy()
            with_i[i] = True
            weight = math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m)
            phi[i] += weight * (v[index[with_i.tobytes()]] - v[row])
    return phi


@pytest.fixture(scope="module")
def small():
    """M = 9 superpixels: 512 coalitions, exact values by enumeration."""
    engine = toy_engine(3, 3)
    labels = [0, 1, 2]
    return engine, labels, exact_shapley(engine, labels)


def test_toy_model_is_not_trivial(small):
    engine, labels, exact = small
    assert np.abs(exact).max() > 0.05  # superpixels matter...
    assert np.ptp(exact[:, 0]) > 0.05  # ...and not all equally


def test_kernel_with_full_budget_equals_exact_shapley(small):
    engine, labels, exact = small
    results = explain_shap(engine, labels, estimator="kernel", nsamples=2**9, seed=0)
    for j, label in enumerate(labels):
        r = results[label]
        assert r.estimator == "kernel" and r.heatmap is None
        np.testing.assert_allclose(r.values, exact[:, j], atol=1e-6)
        full, empty = engine.evaluate(np.array([[True] * 9, [False] * 9]))[:, label]
        assert r.prediction == pytest.approx(full) and r.base_value == pytest.approx(empty)
        assert r.values.sum() == pytest.approx(r.prediction - r.base_value, abs=1e-9)
        assert r.additivity_error < 1e-9


def test_pool_with_every_coalition_equals_exact_shapley(small):
    engine, labels, exact = small
    coalitions = all_coalitions(9)
    results = explain_shap(engine, labels, estimator="pool", pool=(coalitions, engine.evaluate(coalitions)))
    for j, label in enumerate(labels):
        np.testing.assert_allclose(results[label].values, exact[:, j], atol=1e-6)
        assert results[label].additivity_error < 1e-9


def test_pool_with_random_uniform_pool_is_close_and_improves_with_size(small):
    """Tolerance: relative L2 error below 0.15 at 8000 draws (measured ~0.05-0.08 for seeds 0-4),
    and clearly smaller than at 300 draws (Monte Carlo error shrinks with the pool)."""
    engine, labels, exact = small

    def rel_error(n, seed):
        res = explain_shap(engine, labels, estimator="pool", pool=lime_pool(engine, n, seed))
        est = np.stack([res[label].values for label in labels], axis=1)
        return np.linalg.norm(est - exact) / np.linalg.norm(exact)

    big = [rel_error(8000, seed) for seed in range(3)]
    small_pool = [rel_error(300, seed) for seed in range(3)]
    assert max(big) < 0.15
    assert np.mean(big) < 0.5 * np.mean(small_pool)


def test_pool_costs_at_most_the_empty_coalition(small):
    engine = toy_engine(3, 3)
    pool = lime_pool(engine, 200, seed=5)
    with engine.track("shap") as box:
        explain_shap(engine, [0, 2], estimator="pool", pool=pool)
    assert box["cost"].forward_passes <= 1


def test_shapley_kernel_weights():
    m = 6
    sizes = np.arange(1, m)
    expected = np.array([(m - 1) / (math.comb(m, s) * s * (m - s)) for s in sizes])
    np.testing.assert_allclose(shapley_kernel_weights(sizes, m), expected / expected.max())
    assert np.all(np.isfinite(shapley_kernel_weights(np.arange(1, 2000), 2000)))  # no C(M, s) overflow


def test_kernel_is_reproducible_and_leaves_the_global_rng_alone():
    engine = toy_engine(6, 6)  # M = 36: shap has to sample
    np.random.seed(123)
    state = np.random.get_state()
    a = explain_shap(engine, [1], estimator="kernel", nsamples=200, seed=7)[1].values
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    b = explain_shap(engine, [1], estimator="kernel", nsamples=200, seed=7)[1].values
    c = explain_shap(engine, [1], estimator="kernel", nsamples=200, seed=8)[1].values
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_kernel_asks_the_engine_once_per_coalition():
    engine = toy_engine(6, 6)
    with engine.track("shap") as box:
        explain_shap(engine, [0, 1], estimator="kernel", nsamples=300, seed=0)
    # shap's budget, plus the empty and full coalitions; nothing is evaluated twice
    assert box["cost"].forward_passes <= 302
    assert engine.evaluated == box["cost"].forward_passes


def test_unknown_estimator_is_refused(small):
    with pytest.raises(ValueError, match="unknown SHAP estimator 'deep'"):
        explain_shap(small[0], [0], estimator="deep")


@pytest.mark.slow  # the first Partition call in a process spends 10-80 s compiling shap's numba code
def test_partition_on_real_photo_is_additive_and_pixel_resolution(classifier, chelsea):
    view = classifier.prepare(chelsea)
    seg = segment(view, "slic", n_segments=20)
    engine = PerturbationEngine(view, seg, classifier)
    labels = [int(i) for i in np.argsort(-engine.predict_full())[:2]]
    with engine.track("shap") as box:
        results = explain_shap(engine, labels, estimator="partition", nsamples=100, blur=32)
    for label in labels:
        r = results[label]
        assert r.heatmap.shape == view.shape[:2] and r.values.shape == (seg.n_segments,)
        assert r.heatmap.sum() + r.base_value == pytest.approx(r.prediction, abs=1e-4)
        assert r.additivity_error < 1e-4
        np.testing.assert_allclose(r.values.sum(), r.heatmap.sum(), atol=1e-9)
        assert np.abs(r.heatmap).max() > 0
        # the blur baseline is a different image: the base value is the blurred view's score
        assert 0.0 <= r.base_value <= 1.0
    # the Partition explainer's passes are booked to the engine (at most the budget)
    assert 0 < box["cost"].forward_passes <= 100 + 2
    again = explain_shap(engine, labels, estimator="partition", nsamples=100, blur=32)
    assert np.array_equal(again[labels[0]].heatmap, results[labels[0]].heatmap)


# -- "shared": the pool plus paired kernel draws ------------------------------------------------
def test_paired_kernel_coalitions_come_in_complementary_pairs_with_kernel_sizes():
    from xai_panel.methods.shap import kernel_size_distribution, paired_kernel_coalitions

    rows = paired_kernel_coalitions(12, 20000, np.random.default_rng(0))
    assert rows.shape == (20000, 12)
    np.testing.assert_array_equal(rows[:10000], ~rows[10000:])
    sizes = np.bincount(rows.sum(axis=1), minlength=13)[1:12] / len(rows)
    np.testing.assert_allclose(sizes, kernel_size_distribution(12), atol=0.01)
    assert rows.sum(axis=1).min() >= 1 and rows.sum(axis=1).max() <= 11
    assert len(paired_kernel_coalitions(12, 7, np.random.default_rng(0))) == 7


def test_shared_is_additive_reproducible_and_beats_the_pool_alone(small):
    """Relative L2 error against exact values, mean of 3 seeds: the 300-row pool plus 300 paired
    kernel draws must beat the pool alone and the kernel draws alone (600 pool rows)."""
    engine, labels, exact = small

    def rel_error(estimator, pool_size, nsamples, seed):
        pool = lime_pool(engine, pool_size, seed) if pool_size else None
        res = explain_shap(engine, labels, estimator=estimator, pool=pool, nsamples=nsamples, seed=seed)
        for r in res.values():
            assert r.estimator == estimator and r.additivity_error < 1e-9
        est = np.stack([res[label].values for label in labels], axis=1)
        return np.linalg.norm(est - exact) / np.linalg.norm(exact), est

    shared = [rel_error("shared", 300, 300, seed) for seed in range(3)]
    pool_only = [rel_error("pool", 600, 0, seed)[0] for seed in range(3)]
    assert np.mean([e for e, _ in shared]) < np.mean(pool_only)
    assert max(e for e, _ in shared) < 0.2
    again = rel_error("shared", 300, 300, 0)[1]
    np.testing.assert_array_equal(again, shared[0][1])
    assert not np.array_equal(shared[0][1], shared[1][1])


def test_shared_costs_its_new_draws_only(small):
    engine = toy_engine(3, 3)
    pool = lime_pool(engine, 200, seed=5)
    with engine.track("shap") as box:
        explain_shap(engine, [0, 2], estimator="shared", pool=pool, nsamples=40, seed=0)
    assert box["cost"].forward_passes <= 40 + 1  # the draws (fewer when memoised) and the empty coalition


def test_shap_alone_with_the_shared_estimator_draws_no_pool(small):
    from xai_panel.engine.pipeline import explain

    engine = toy_engine(3, 3)
    result = explain(engine.image, engine.classifier, methods=("shap",), top_k=2, segmentation="grid",
                     segmentation_params={"rows": 3, "cols": 3}, settings={"shap": {"nsamples": 64}})
    assert result.shap and result.costs["shap"].forward_passes <= 64 + 1


# -- "owen": shap's Partition recursion over a superpixel hierarchy -----------------------------


def exact_owen(engine: PerturbationEngine, labels, linkage: np.ndarray) -> np.ndarray:
    """Owen values (M, L) by enumeration: the average marginal contribution over every order
    in which each group of the binary hierarchy joins as a block (2^(M-1) orders)."""
    from scipy.cluster.hierarchy import to_tree

    def orders(node):
        if node.is_leaf():
            return [[node.id]]
        return [o for a in orders(node.left) for b in orders(node.right) for o in (a + b, b + a)]

    m = engine.n_segments
    phi = np.zeros((m, len(labels)))
    every = orders(to_tree(linkage))
    for order in every:
        z = np.zeros((m + 1, m), bool)
        for k, i in enumerate(order):
            z[k + 1] = z[k]
            z[k + 1, i] = True
        v = engine.evaluate(z)[:, labels].astype(np.float64)
        phi[order] += np.diff(v, axis=0)
    return phi / len(every)


def test_owen_values_are_exact_owen_values_and_additive(small):
    from xai_panel.methods.shap import superpixel_hierarchy

    engine, labels, shapley = small
    exact = exact_owen(engine, labels, superpixel_hierarchy(engine.segments, engine.n_segments))
    before = engine._tally.passes
    results = explain_shap(engine, labels, estimator="owen", nsamples=2000)
    got = np.stack([results[label].values for label in labels], axis=1)
    assert np.abs(got - exact).max() < 1e-9
    for r in results.values():
        assert r.estimator == "owen" and r.additivity_error < 1e-9
    # Owen values are not the Shapley values (the groups are fixed), but close on this model.
    assert np.abs(exact - shapley).max() > 1e-4 and np.corrcoef(exact[:, 0], shapley[:, 0])[0, 1] > 0.8
    assert engine._tally.passes == before  # every coalition was already in the engine's memo


def test_owen_is_deterministic_within_budget_and_additive_on_the_real_model(chelsea, classifier):
    view = classifier.prepare(chelsea)
    segments = segment(view, "slic", seed=0)
    runs = []
    for _ in range(2):
        engine = PerturbationEngine(view, segments, classifier, "mean")
        labels = [int(i) for i in np.argsort(-engine.predict_full())[:2]]
        passes = engine._tally.passes
        runs.append(explain_shap(engine, labels, estimator="owen", nsamples=120, seed=len(runs)))
        assert engine._tally.passes - passes <= 120 + 1  # the budget (+ the empty coalition)
    for label in labels:
        a, b = runs[0][label], runs[1][label]
        assert np.array_equal(a.values, b.values)  # different seeds, same values: no sampling
        assert a.additivity_error < 1e-6 and len(np.unique(np.round(a.values, 9))) > 3
    # Our recursion (no numba) gives shap's own Partition explainer's values bit for bit, at
    # the same budget (its coalitions are all in the engine's memo: no passes)
    import shap

    from xai_panel.methods.shap import superpixel_hierarchy

    m, passes = engine.n_segments, engine._tally.passes
    masker = shap.maskers.Partition(np.zeros((1, m)), clustering=superpixel_hierarchy(engine.segments, m))
    theirs = shap.Explainer(lambda z: engine.evaluate(np.asarray(z) > 0.5)[:, labels], masker, algorithm="partition")(
        np.ones((1, m)), max_evals=120, batch_size=engine.batch_size, silent=True).values[0]
    assert np.array_equal(np.stack([runs[1][label].values for label in labels], axis=1), theirs)
    assert engine._tally.passes == passes
