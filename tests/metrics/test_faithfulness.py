"""Deletion/insertion faithfulness, RISE's pixel protocol and agreement: hand-computed values on
tiny fixed models, and the real model on real photos."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

import xai_panel as xp
from tests.methods.test_shap import SIZE, toy_classifier
from xai_panel.engine.perturbation import PerturbationEngine, fill_image
from xai_panel.engine.results import Explanation, ScoreResult
from xai_panel.engine.segmentation import segment
from xai_panel.methods.anchors import AnchorResult
from xai_panel.metrics.agreement import agreement
from xai_panel.metrics.faithfulness import (
    auc,
    faithfulness,
    faithfulness_of,
    hidden_counts,
    ranking,
    rise_curves,
)
from xai_panel.metrics.trust import add_metrics, check_metrics
from xai_panel.models.classifier import Classifier, ClassScore, Preprocessing


@dataclass(frozen=True)
class Scores(ScoreResult):
    label: int
    values: np.ndarray


def toy_image() -> np.ndarray:
    return np.random.RandomState(1).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)


def test_auc_is_the_trapezoid_over_the_steps():
    assert auc([0, 0.5, 1], [1, 0.5, 0]) == pytest.approx(0.5)
    assert auc([0, 0.25, 0.5, 0.75, 1], [1, 1, 0, 0, 0]) == pytest.approx(0.25 + 0.125)
    assert list(ranking(np.array([0.1, 0.5, 0.5, -1.0]))) == [1, 2, 0, 3]  # ties by superpixel id
    assert list(hidden_counts(4)) == [0, 1, 2, 3, 4]
    assert list(hidden_counts(10, steps=4)) == [0, 2, 5, 8, 10]  # round(i * 10 / 4)
    assert list(hidden_counts(3, steps=8)) == [0, 1, 2, 3]  # never finer than one superpixel


def test_deletion_and_insertion_equal_hand_computed_curves_on_a_tiny_model():
    clf = toy_classifier()
    image = toy_image()
    seg = segment(image, "grid", rows=2, cols=2)  # M = 4
    engine = PerturbationEngine(image, seg, clf, "mean")
    background = fill_image(image, seg.labels, "mean")
    scores = np.array([0.2, 0.9, 0.2, -0.4])  # order 1, 0, 2, 3 (0 before 2: ties by id)
    label = 2
    out = faithfulness_of(engine, {"m": {label: Scores(label, scores)}}, random_orders=2, seed=5)
    f = out["m"][label]

    def prob(kept: list[int]) -> float:
        keep = np.isin(seg.labels, kept)[..., None]
        return float(clf.predict_proba(np.where(keep, image, background)[None])[0, label])

    order = [1, 0, 2, 3]
    deletion = [prob(order[k:]) for k in range(5)]
    insertion = [prob(order[:k]) for k in range(5)]
    np.testing.assert_allclose(f.deletion, deletion, atol=1e-6)
    np.testing.assert_allclose(f.insertion, insertion, atol=1e-6)
    by_hand = lambda y: (y[0] / 2 + y[1] + y[2] + y[3] + y[4] / 2) / 4  # noqa: E731
    assert f.deletion_auc == pytest.approx(by_hand(deletion), abs=1e-6)
    assert f.insertion_auc == pytest.approx(by_hand(insertion), abs=1e-6)
    # the random baseline: the orders drawn from the seed, by hand
    rng = np.random.default_rng(5)
    orders = [list(rng.permutation(4)) for _ in range(2)]
    rd = np.mean([[prob(o[k:]) for k in range(5)] for o in orders], axis=0)
    np.testing.assert_allclose(f.random_deletion, rd, atol=1e-6)
    assert f.random_deletion_auc == pytest.approx(np.mean([by_hand([prob(o[k:]) for k in range(5)]) for o in orders]),
                                                  abs=1e-6)
    assert f.deletion[0] == f.insertion[-1] and f.deletion[-1] == f.insertion[0]  # all kept / all hidden


def test_the_random_baseline_is_reproducible_per_seed():
    clf, image = toy_classifier(), toy_image()
    seg = segment(image, "grid", rows=3, cols=3)
    results = {"m": {0: Scores(0, np.arange(9.0))}}

    def baseline(seed):
        engine = PerturbationEngine(image, seg, clf, "mean")
        return faithfulness_of(engine, results, seed=seed)["m"][0].random_deletion

    np.testing.assert_array_equal(baseline(3), baseline(3))
    assert not np.allclose(baseline(3), baseline(4))


class _Additive:
    """p_0 = sum_i w_i * (superpixel i shown): an additive model whose true effects are known."""

    def __init__(self, weights, segments):
        self.w, self.segments = np.asarray(weights, np.float64), segments

    def __call__(self, x: np.ndarray) -> np.ndarray:
        shown = np.stack([x[:, 0][:, self.segments == i].mean(axis=1) for i in range(len(self.w))], axis=1)
        p0 = (np.clip(shown, 0, 1) * self.w).sum(axis=1)  # the image is white, the fill black (normalised 1 and 0)
        return np.stack([p0, 1 - p0], axis=1).astype(np.float32)


def test_the_true_order_of_an_additive_model_is_optimal_and_beats_random():
    image = np.full((SIZE, SIZE, 3), 255, np.uint8)
    seg = segment(image, "grid", rows=2, cols=3)  # M = 6
    weights = np.array([0.05, 0.3, 0.1, 0.25, 0.0, 0.2])
    clf = Classifier(_Additive(weights, seg.labels), ["a", "b"], model_id="additive", outputs="probabilities",
                     preprocessing=Preprocessing(crop_size=SIZE, resize_size=SIZE, mean=(0,) * 3, std=(1,) * 3))
    engine = PerturbationEngine(image, seg, clf, "constant")
    results = {"true": {0: Scores(0, weights)}, "reversed": {0: Scores(0, -weights)}}
    out = faithfulness_of(engine, results, random_orders=5)
    true, rev = out["true"][0], out["reversed"][0]
    assert true.deletion_auc < true.random_deletion_auc < rev.deletion_auc
    assert true.insertion_auc > true.random_insertion_auc > rev.insertion_auc
    assert true.deletion_gain > 0 and true.insertion_gain > 0 and rev.deletion_gain < 0
    # no order of the six superpixels does better than the true effects'
    x = np.arange(7) / 6
    best = min(auc(x, [1 - weights[list(p[:k])].sum() - (1 - weights.sum()) for k in range(7)])
               for p in itertools.permutations(range(6)))
    assert true.deletion_auc == pytest.approx(best, abs=1e-6)


def test_rise_pixel_protocol_equals_a_hand_computed_curve():
    clf, image = toy_classifier(), toy_image()
    rng = np.random.default_rng(0)
    saliency = rng.normal(size=(SIZE, SIZE))
    step = 128  # 8 steps on 32 x 32
    pf = rise_curves(clf, image, saliency, 1, step=step)
    x0 = clf.preprocessing.normalise(image[None])
    order = np.argsort(-saliency.ravel(), kind="stable")
    from xai_panel.metrics.faithfulness import _rise_blur

    blurred = _rise_blur(x0)
    expected_del, expected_ins = [], []
    for i in range(9):
        changed = np.zeros(SIZE * SIZE, bool)
        changed[order[: i * step]] = True
        changed = changed.reshape(1, 1, SIZE, SIZE)
        expected_del.append(clf.forward_normalised(np.where(changed, 0, x0).astype(np.float32))[0, 1])
        expected_ins.append(clf.forward_normalised(np.where(changed, x0, blurred).astype(np.float32))[0, 1])
    np.testing.assert_allclose(pf.deletion, expected_del, atol=1e-6)
    np.testing.assert_allclose(pf.insertion, expected_ins, atol=1e-6)
    assert pf.deletion_auc == pytest.approx(auc(np.arange(9) / 8, expected_del), abs=1e-6)
    assert len(pf.x) == 9 and pf.x[-1] == 1.0
    # RISE's blur is a normalised Gaussian: a constant image stays constant away from the border
    flat = np.ones((1, 3, 32, 32), np.float32)
    np.testing.assert_allclose(_rise_blur(flat)[0, :, 12:20, 12:20], 1.0, atol=1e-5)


def _toy_explanation(results: dict, rows=2, cols=2) -> tuple[Explanation, Classifier]:
    clf, image = toy_classifier(), toy_image()
    seg = segment(image, "grid", rows=rows, cols=cols)
    probs = clf.predict_proba(image[None])[0]
    top = tuple(ClassScore(int(i), clf.class_names[int(i)], float(probs[i])) for i in np.argsort(-probs))
    res = Explanation(image=image, model_id=clf.model_id, top=top, segmentation=seg, results=results,
                      settings={"fill": "mean"})
    return res, clf


def _anchor(label: int, segments: tuple[int, ...]) -> AnchorResult:
    none = np.zeros((0, SIZE, SIZE, 3), np.uint8)
    return AnchorResult(label=label, target="top-1", segments=segments, precision=0.97, coverage=0.1,
                        examples=none, counter_examples=none, found=True)


def test_agreement_matrices_by_hand():
    a = {0: Scores(0, np.array([4.0, 3, 2, 1])), 1: Scores(1, np.array([1.0, 2, 3, 4]))}
    b = {0: Scores(0, np.array([1.0, 2, 3, 4])), 1: Scores(1, np.array([1.0, 2, 3, 4]))}
    anchor = {0: _anchor(0, (0, 3))}
    res, _ = _toy_explanation({})
    res = res.with_results(lime=a, shap=b, anchors=anchor)
    agree = agreement(res, k=2, labels=(0, 1))
    a0 = agree[0]
    assert a0.methods == ("lime", "anchors", "shap") and a0.ranked == (True, False, True)
    assert a0.pair("lime", "shap")["spearman"] == pytest.approx(-1.0)
    assert a0.pair("lime", "shap")["iou"] == 0.0  # {0, 1} vs {3, 2}
    assert a0.pair("anchors", "lime")["inside"] == 0.5  # anchor {0, 3}: 0 is in LIME's top 2
    assert a0.pair("anchors", "shap")["inside"] == 0.5 and np.isnan(a0.pair("anchors", "shap")["spearman"])
    assert a0.pair("anchors", "lime")["iou"] == pytest.approx(1 / 3)
    assert agree[1].pair("lime", "shap") == {"spearman": 1.0, "iou": 1.0, "inside": 1.0}
    with pytest.raises(ValueError, match="k must be a positive integer"):
        agreement(res, k=0)


def test_explain_with_metrics_uses_its_engine_and_counts_the_passes():
    clf, image = toy_classifier(), toy_image()
    res = xp.explain(image, clf, methods=("lime", "occlusion", "anchors"), segmentation="grid",
                     segmentation_params={"rows": 3, "cols": 3}, top_k=2,
                     settings={"lime": {"num_samples": 200}, "anchors": {"coverage_samples": 100}},
                     metrics=("faithfulness", "agreement"))
    assert set(res.faithfulness) == {"lime", "occlusion"}  # the anchor ranks nothing
    assert set(res.faithfulness["lime"]) == set(res.labels) and set(res.agreement) == set(res.labels)
    cost = res.costs["faithfulness"]
    m = 9
    # 2 methods x 2 classes x 2 curves x (M + 1) steps + 3 random orders x 2 curves, less what is shared
    assert 0 < cost.forward_passes < (2 * 2 + 3) * 2 * (m + 1) and cost.cache_hits > 0
    # the same scores measured after the fact, on a fresh engine: same curves
    again = faithfulness(res, clf, rise_labels=())
    np.testing.assert_allclose(again["lime"][res.labels[0]].deletion, res.faithfulness["lime"][res.labels[0]].deletion)
    assert res.metric_settings["faithfulness"] == {"steps": None, "random_orders": 3, "seed": 0}
    # new results for a method: its faithfulness and the agreement no longer hold
    replaced = res.with_results(lime=res.results["lime"])
    assert "lime" not in replaced.faithfulness and "occlusion" in replaced.faithfulness and not replaced.agreement
    # a second add_metrics pays nothing for what is there
    same = add_metrics(res, clf, "faithfulness")
    assert same.costs["faithfulness"] == cost


def test_bad_input_to_the_metrics_gets_clear_messages():
    res, clf = _toy_explanation({})
    res = res.with_results(lime={0: Scores(0, np.array([1.0, np.nan, 0, 0]))},
                           anchors={0: _anchor(0, (1,))})
    with pytest.raises(ValueError, match="unknown metric 'faith'; the metrics are faithfulness, rise, agreement"):
        check_metrics(("faith",))
    with pytest.raises(ValueError, match="steps must be None .* or an integer >= 1, got 0"):
        check_metrics("faithfulness", {"steps": 0})
    with pytest.raises(ValueError, match=r"random_orders must be an integer in \[1, 100\], got 0"):
        check_metrics("faithfulness", {"random_orders": 0})
    with pytest.raises(ValueError, match="no metric setting step; they are"):
        check_metrics("faithfulness", {"step": 3})
    with pytest.raises(ValueError, match="its results do not rank superpixels"):
        faithfulness(res, clf, ["anchors"])
    with pytest.raises(ValueError, match="no faithfulness for 'shap': it has no results here"):
        faithfulness(res, clf, ["shap"])
    with pytest.raises(ValueError, match="scores for class 0 are not 4 finite numbers"):
        faithfulness(res, clf, ["lime"], labels=[0])
    other = toy_classifier(seed=1)
    other.model_id = "another-model"
    with pytest.raises(ValueError, match="must be measured on the model that was explained"):
        faithfulness(res, other)
    with pytest.raises(ValueError, match=r"classes \[7\] were not explained"):
        faithfulness(res, clf, ["lime"], labels=[7])
    with pytest.raises(ValueError, match="saliency map .* does not match the view"):
        rise_curves(clf, res.image, np.zeros((5, 5)), 0)
    with pytest.raises(ValueError, match="unknown metric"):
        xp.explain(res.image, clf, methods=("occlusion",), top_k=2, metrics=("sanity",))


@pytest.fixture(scope="module")
def photos_explained(classifier):
    """LIME and SHAP (its estimator on LIME's pool) at a reduced budget on four real photos (the demo
    gallery's), with their faithfulness: the protocol's cost is the point here, the budgets are the benchmark's."""
    from xai_panel.data import open_dataset

    out = []
    for record in list(open_dataset(None))[:4]:
        out.append(xp.explain(record.load(), classifier, methods=("lime", "shap"), top_k=1,
                              settings={"lime": {"num_samples": 250}, "shap": {"estimator": "shared", "nsamples": 16}},
                              metrics="faithfulness", metric_settings={"steps": 10}))
    return out


@pytest.mark.slow
def test_on_real_photos_lime_and_shap_delete_faster_than_chance(photos_explained):
    below = {"lime": 0, "shap": 0}
    for res in photos_explained:
        top = res.labels[0]
        for method in below:
            f = res.faithfulness[method][top]
            assert len(f.hidden) == 11 and f.hidden[-1] == res.segmentation.n_segments
            below[method] += f.deletion_auc < f.random_deletion_auc
    # measured (2026-12-02, 4 photos, LIME 250 samples, SHAP 'shared' on them): 4 of 4 for both
    assert below["lime"] >= 3 and below["shap"] >= 3, below


@pytest.mark.slow
def test_rise_pixel_protocol_on_a_real_photo(photos_explained, classifier):
    res = photos_explained[0]
    out = faithfulness(res, classifier, ["lime"])  # RISE for the top class by default
    pixel = out["lime"][res.labels[0]].pixel
    assert pixel.source == "superpixels" and pixel.step == 224 * 8 and len(pixel.x) == 29
    assert pixel.deletion[0] == pytest.approx(res.top[0].probability, abs=1e-5)
    # the zero substrate (the mean image) and the blurred start hold little of the class
    assert pixel.deletion[-1] < 0.2 * pixel.deletion[0] and pixel.insertion[0] < pixel.insertion[-1]
    assert pixel.deletion_auc < pixel.insertion_auc
