"""Anchors through alibi's beam search on the engine: exact toy models and the real model.

The toy models are numpy runners wrapped as real ``Classifier``s: a 32x32 image of bright
8x8 cells (a 4x4 grid of superpixels, or 6x6 for the larger one) over a black fill, so
the runner sees exactly which superpixels are kept.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from xai_panel.engine.perturbation import Cancelled, PerturbationEngine, uniform_coalitions
from xai_panel.engine.segmentation import segment
from xai_panel.methods.anchors import TOP1, TOPK, _CoalitionSampler, _RowStore, _search, class_ranks, explain_anchors
from xai_panel.methods.lime import lime_pool
from xai_panel.models import Classifier, Preprocessing
from xai_panel.models.classifier import top_k_of

SIZE = 32


def toy_image(cells: int) -> np.ndarray:
    """Bright, slightly different cells: every kept superpixel is visible against black."""
    step = SIZE // cells
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    for r in range(cells):
        for c in range(cells):
            image[r * step:(r + 1) * step, c * step:(c + 1) * step] = (200, 120 + 5 * r, 120 + 5 * c)
    return image


def toy_classifier(logits_of_kept, n_classes: int, cells: int = 4) -> Classifier:
    """A Classifier whose logits are ``logits_of_kept(kept)`` with kept (n, cells**2) bool."""
    step = SIZE // cells
    centres = np.arange(cells) * step + step // 2

    def runner(x: np.ndarray) -> np.ndarray:
        red = x[:, 0][:, centres][:, :, centres]  # (n, cells, cells); black normalises below 0
        return np.asarray(logits_of_kept(red.reshape(len(x), -1) > 0), np.float32)

    return Classifier(runner, [f"class{i}" for i in range(n_classes)], model_id=f"toy-{cells}x{cells}",
                      preprocessing=Preprocessing(crop_size=SIZE, resize_size=SIZE), batch_size=64)


def toy_engine(classifier: Classifier, cells: int = 4, **kwargs) -> PerturbationEngine:
    image = toy_image(cells)
    return PerturbationEngine(image, segment(image, "grid", rows=cells, cols=cells), classifier, "constant", **kwargs)


def labels_of(engine: PerturbationEngine, k: int) -> list[int]:
    return [c.index for c in top_k_of(engine.predict_full(), engine.classifier.class_names, k)]


def fresh_precision(engine, anchor, label, top_n, *, n=500, p_sample=0.5, seed=12345, region_of=None) -> float:
    """Precision of ``anchor`` on ``n`` new perturbations, predicted by the classifier directly.

    With ``region_of`` the perturbations keep or hide whole regions, as the search did."""
    rng = np.random.default_rng(seed)
    region_of = np.arange(engine.n_segments) if region_of is None else np.asarray(region_of)
    rows = (rng.random((n, region_of.max() + 1)) >= p_sample)[:, region_of]
    rows[:, list(anchor)] = True
    probs = engine.classifier.predict_proba(engine.render(rows))
    return float(np.mean(class_ranks(probs, [label])[:, 0] < top_n))


def assert_valid(engine, results, labels, top_k, threshold=0.95, n=500, p_sample=0.5):
    """Every found anchor holds on fresh samples: >= threshold - alibi's 0.05 margin - 3 sigma."""
    sigma = np.sqrt(0.1 * 0.9 / n)
    for position, label in enumerate(labels):
        r = results[label]
        top_n = 1 if position == 0 else top_k
        assert r.target == (TOP1 if position == 0 else TOPK)
        empirical = fresh_precision(engine, r.segments, label, top_n, n=n, p_sample=p_sample, region_of=r.region_of)
        if r.found:
            assert r.precision >= threshold
            assert empirical >= threshold - 0.05 - 3 * sigma, (label, r.segments, r.precision, empirical)
        assert abs(empirical - r.precision) <= 0.05 + 4 * sigma, (label, r.segments, r.precision, empirical)


# -- exact toy models -------------------------------------------------------------------
def one_cell_model(cell: int):
    """Class 0 wins exactly when ``cell`` is kept; class 1 otherwise; class 2 never."""
    return toy_classifier(lambda kept: np.stack([4.0 * kept[:, cell], np.full(len(kept), 2.0),
                                                 np.zeros(len(kept))], 1), 3)


def test_anchor_is_the_one_superpixel_the_decision_depends_on():
    engine = toy_engine(one_cell_model(5))
    labels = labels_of(engine, 2)
    assert labels == [0, 1]
    pool = lime_pool(engine, 1000, 0)
    results = explain_anchors(engine, labels, top_k=2, seed=0, pool=pool)
    top = results[0]
    assert top.segments == (5,) and top.precision == 1.0 and top.found and top.target == TOP1
    assert abs(top.coverage - 0.5) < 0.05  # 2000 coverage samples keep cell 5 half the time
    # examples keep the prediction (cell 5 shown), and there are no counter-examples at precision 1
    assert top.examples.shape == (4, SIZE, SIZE, 3) and top.counter_examples.shape == (0, SIZE, SIZE, 3)
    assert (top.examples[:, 12, 12] == toy_image(4)[12, 12]).all()
    assert (engine.classifier.predict_proba(top.examples).argmax(1) == 0).all()
    assert top.status == "found" and not top.empty and top.note == "" and top.message == ""
    # class 1 stays in the top-2 whatever is hidden: the empty anchor, reported as such
    second = results[1]
    assert second.segments == () and second.found and second.precision == 1.0 and second.coverage == 1.0
    assert second.target == TOPK and second.empty and second.status == "empty"
    # ...with why it says nothing, in this run's terms: its target, the fill, the fills to try
    assert second.note.startswith("empty anchor: the class stays within the top 2 even with every superpixel hidden")
    assert "one flat colour" in second.note and "another fill (mean or blur)" in second.note
    assert "smaller top-k" in second.note and second.message == second.note
    # stored before the note existed (note ""): still empty, with a generic why
    old = dataclasses.replace(second, note="")
    assert old.empty and old.message.startswith("empty anchor:") and "another fill" in old.message


def test_targets_top1_for_the_first_label_and_topk_for_the_others():
    def logits(kept):
        n = len(kept)
        c0 = 4.5 + 3.5 * kept[:, 9]  # 8 with cell 9 (top), else 4.5 (second)
        c1 = np.full(n, 5.0)  # always between c0's two values
        c2 = 4.0 * kept[:, 2]  # 4 with cell 2: third; 0 without: ties c3 and wins on its lower index
        c3 = np.zeros(n)
        return np.stack([c0, c1, c2, c3], 1)

    engine = toy_engine(toy_classifier(logits, 4))
    labels = labels_of(engine, 3)
    assert labels == [0, 1, 2]
    results = explain_anchors(engine, labels, top_k=3, seed=0, pool=lime_pool(engine, 1000, 0))
    # "top-1" for the first label: staying the argmax needs cell 9 (within top-3 it would always hold)
    assert results[0].target == TOP1 and results[0].segments == (9,) and results[0].precision == 1.0
    # class 1 is always within the top 3: empty anchor
    assert results[1].target == TOPK and results[1].segments == () and results[1].found
    # class 2 without cell 2 ties class 3 at 0 and keeps rank 2 (< 3) by its lower index
    assert results[2].target == TOPK and results[2].segments == () and results[2].precision == 1.0
    # with top_k=2, class 1 still needs nothing, while class 2 (below c0 and c1 whatever is
    # kept) can never be in the top-2: no anchor, and the best candidate says found=False
    results = explain_anchors(engine, labels, top_k=2, seed=0, pool=lime_pool(engine, 1000, 0),
                              max_anchor_size=2)
    assert results[1].segments == () and results[1].found
    assert not results[2].found and results[2].precision == 0.0 and len(results[2].segments) >= 1
    assert results[2].status == "best effort" and not results[2].empty


def test_topk_anchor_for_a_non_top_class():
    # c1 stays in the top-2 exactly when cell 3 is kept (5 > 2.5), else it falls behind c2
    engine = toy_engine(toy_classifier(lambda kept: np.stack(
        [np.full(len(kept), 10.0), 5.0 * kept[:, 3], np.full(len(kept), 2.5), np.zeros(len(kept))], 1), 4))
    labels = labels_of(engine, 2)
    assert labels == [0, 1]
    results = explain_anchors(engine, labels, top_k=2, seed=3, pool=lime_pool(engine, 1000, 3))
    assert results[1].target == TOPK and results[1].segments == (3,) and results[1].precision == 1.0
    assert results[0].segments == () and results[0].found  # class 0 always wins
    assert results[0].empty and "stays the top class even with every superpixel hidden" in results[0].note
    assert "smaller top-k" not in results[0].note  # a top-1 target: only the fill can change it
    assert not results[1].empty and results[1].status == "found" and results[1].note == ""


def test_no_anchor_within_the_size_limit_is_reported_as_not_found():
    # class 0 wins only with cells 4 AND 7 kept: no single superpixel reaches 0.95
    engine = toy_engine(toy_classifier(lambda kept: np.stack(
        [4.0 * (kept[:, 4] & kept[:, 7]), np.full(len(kept), 2.0)], 1), 2))
    pool = lime_pool(engine, 1000, 0)
    limited = explain_anchors(engine, [0], top_k=1, seed=0, pool=pool, max_anchor_size=1)[0]
    assert not limited.found and limited.segments in ((4,), (7,))
    assert 0.3 < limited.precision < 0.7  # the other cell is kept half the time
    assert len(limited.counter_examples) == 4  # perturbations where the prediction changed
    full = explain_anchors(engine, [0], top_k=1, seed=0, pool=pool)[0]
    assert full.found and sorted(full.segments) == [4, 7] and full.precision == 1.0
    assert abs(full.coverage - 0.25) < 0.05


def test_single_superpixel_image():
    image = toy_image(4)
    seg = segment(image, "grid", rows=1, cols=1)
    assert seg.n_segments == 1
    clf = toy_classifier(lambda kept: np.stack([4.0 * kept[:, 0], np.full(len(kept), 2.0)], 1), 2)
    engine = PerturbationEngine(image, seg, clf, "constant")
    pool = (uniform_coalitions(50, 1, 0), None)
    pool = (pool[0], engine.evaluate(pool[0]))
    r = explain_anchors(engine, [0], top_k=1, seed=0, pool=pool)[0]
    assert r.segments == (0,) and r.found and r.precision == 1.0 and abs(r.coverage - 0.5) < 0.05


def test_cancellation_stops_between_batches():
    cancel = threading.Event()
    engine = toy_engine(one_cell_model(5), cancel=cancel, progress=lambda *_: cancel.set())
    with pytest.raises(Cancelled):
        explain_anchors(engine, [0, 1], top_k=2, seed=0, pool=None)


def test_pool_is_used_only_for_its_own_distribution():
    def run(p_sample, with_pool):
        engine = toy_engine(one_cell_model(5))
        pool = lime_pool(engine, 1000, 0) if with_pool else None
        with engine.track("anchors") as box:
            result = explain_anchors(engine, [0, 1], top_k=2, seed=0, pool=pool, p_sample=p_sample)
        assert result[0].segments == (5,) and result[0].precision == 1.0
        return box["cost"], result

    # p_sample 0.5 is the pool's distribution: the search needs few or no new passes
    assert run(0.5, True)[0].forward_passes < run(0.5, False)[0].forward_passes / 2
    # another p_sample ignores the pool: the same samples as without it (passes may differ only
    # by coalitions that the engine had already evaluated for the pool)
    (with_pool, a), (without, b) = run(0.3, True), run(0.3, False)
    assert with_pool.samples == without.samples > 0
    for label in (0, 1):
        assert (a[label].segments, a[label].precision, a[label].coverage) == \
            (b[label].segments, b[label].precision, b[label].coverage)
    assert abs(a[0].coverage - 0.7) < 0.05  # the anchor is kept with probability 1 - p_sample


def test_through_explain_with_the_shared_pool():
    from xai_panel.engine.pipeline import explain

    result = explain(toy_image(4), one_cell_model(5), methods=("lime", "anchors"), top_k=2, seed=0,
                     segmentation="grid", segmentation_params={"rows": 4, "cols": 4}, fill="constant",
                     settings={"anchors": {"n_examples": 2, "regions": None}})
    assert set(result.anchors) == {0, 1}
    assert result.anchors[0].segments == (5,) and result.anchors[0].examples.shape[0] == 2
    assert result.costs["anchors"].forward_passes < 100  # the pool LIME drew serves almost everything


# -- a harder toy: 36 superpixels, five classes mixing many of them ------------------------
def mixed_model(seed: int = 7):
    weights = np.random.default_rng(seed).normal(0, 1.0, (36, 6))
    weights[:, 0] += 0.5  # the top class leans on many superpixels: its anchor needs a few of them

    return toy_classifier(lambda kept: kept.astype(np.float32) @ weights, 6, cells=6)


def test_precision_holds_on_fresh_samples_and_seed_reproducibility():
    engine = toy_engine(mixed_model(), cells=6)
    labels = labels_of(engine, 3)
    pool = lime_pool(engine, 1000, 0)
    first = explain_anchors(engine, labels, top_k=3, seed=0, pool=pool)
    assert_valid(engine, first, labels, 3)
    again = explain_anchors(toy_engine(mixed_model(), cells=6), labels, top_k=3, seed=0, pool=pool)
    for label in labels:
        a, b = first[label], again[label]
        assert (a.segments, a.precision, a.coverage, a.found) == (b.segments, b.precision, b.coverage, b.found)
        np.testing.assert_array_equal(a.examples, b.examples)
        np.testing.assert_array_equal(a.counter_examples, b.counter_examples)
    other = explain_anchors(engine, labels, top_k=3, seed=1, pool=lime_pool(engine, 1000, 1))
    assert_valid(engine, other, labels, 3)
    assert any(first[c].precision != other[c].precision or first[c].segments != other[c].segments for c in labels)


def test_later_classes_reuse_the_first_class_samples():
    pool_engine = toy_engine(mixed_model(), cells=6)
    labels = labels_of(pool_engine, 5)

    def anchor_passes(labels, share=True):
        engine = toy_engine(mixed_model(), cells=6)
        pool = lime_pool(engine, 1000, 0)
        with engine.track("anchors") as box:
            results = explain_anchors(engine, labels, top_k=5, seed=0, pool=pool, share=share)
        return box["cost"].forward_passes, results

    first, alone = anchor_passes(labels[:1])
    everything, results = anchor_passes(labels)
    assert results[labels[0]].segments == alone[labels[0]].segments
    assert results[labels[0]].precision == alone[labels[0]].precision
    later = everything - first  # the first search is the same run in both
    print(f"class 1: {first} passes, classes 2-5: {later} passes")
    assert first > 200  # the first class does need new samples beyond the pool
    assert later < first, (first, later)  # four more classes cost less than the first one alone
    unshared, _ = anchor_passes(labels, share=False)
    assert everything < unshared / 3, (everything, unshared)  # the pool and the shared rows together


def test_no_row_is_counted_twice_for_a_candidate():
    engine = toy_engine(mixed_model(), cells=6)
    labels = labels_of(engine, 2)
    store = _RowStore(engine, labels, 0.5, np.random.default_rng(0), lime_pool(engine, 300, 0))
    for position in range(2):
        sampler = _CoalitionSampler(store, position, 1 if position == 0 else 2, seed=0, n_covered_ex=4)
        _search(sampler, threshold=0.95, delta=0.1, tau=0.15, batch_size=100, max_anchor_size=None,
                coverage_samples=500)
        state = sampler.beam.state
        assert len(sampler.handed) == state["current_idx"]
        for anchor, idx in state["t_idx"].items():
            ids = [sampler.handed[i] for i in idx]
            assert len(ids) == len(set(ids)), anchor
            # and every counted row really keeps the candidate's superpixels
            assert store.rows[ids][:, list(anchor)].all()


def test_regions_search_whole_regions_and_hold_on_fresh_region_samples():
    engine = toy_engine(mixed_model(), cells=6)
    labels = labels_of(engine, 3)
    # 9 regions of 2x2 cells on the 6x6 grid
    region_of = (np.arange(36) // 6 // 2) * 3 + (np.arange(36) % 6) // 2
    assert sorted(set(region_of)) == list(range(9))
    with engine.track("anchors") as box:
        results = explain_anchors(engine, labels, top_k=3, seed=0, pool=lime_pool(engine, 1000, 0), region_of=region_of)
    for r in results.values():
        np.testing.assert_array_equal(r.region_of, region_of)
        kept = set(r.segments)
        for region in set(region_of[list(kept)]):  # an anchor is a union of whole regions
            assert set(np.flatnonzero(region_of == region)) <= kept
        if r.examples.size:  # examples keep or hide whole regions
            hidden = (r.examples == 0).all(axis=-1)  # the toy fill is black
            bright = (engine.image > 0).any(axis=-1)  # (the grid's last rows and columns are black anyway)
            for region in range(9):
                cells = engine.segmentation.mask(tuple(np.flatnonzero(region_of == region))) & bright
                per_example = hidden[:, cells]
                assert (per_example.all(axis=1) | ~per_example.any(axis=1)).all()
    assert_valid(engine, results, labels, 3)
    per_superpixel = toy_engine(mixed_model(), cells=6)
    with per_superpixel.track("anchors") as unregioned:
        explain_anchors(per_superpixel, labels, top_k=3, seed=0, pool=None)
    assert box["cost"].forward_passes < unregioned["cost"].forward_passes / 2


def test_bad_region_maps_are_refused():
    engine = toy_engine(one_cell_model(5))
    with pytest.raises(ValueError, match="one region id per superpixel"):
        explain_anchors(engine, [0], top_k=1, seed=0, pool=None, region_of=np.zeros(3, int))


def test_merge_regions_groups_whole_superpixels():
    from skimage import data

    from xai_panel.engine.segmentation import merge_regions

    image = data.chelsea()[:224, :224]
    fine = segment(image, "quickshift")
    region_of = merge_regions(image, fine.labels, 10)
    m = fine.labels.max() + 1
    assert region_of.shape == (m,) and 2 <= region_of.max() + 1 <= 12
    assert sorted(set(region_of)) == list(range(region_of.max() + 1))  # contiguous ids
    np.testing.assert_array_equal(merge_regions(image, fine.labels, 10), region_of)  # deterministic
    np.testing.assert_array_equal(merge_regions(image, fine.labels, m + 5), np.arange(m))
    with pytest.raises(ValueError):
        merge_regions(image, fine.labels, 0)


# -- the real embedded model on a real photo ---------------------------------------------
def test_real_model_empty_anchor_on_consomme_says_the_class_needs_no_region(classifier, shared_sample):
    """The gallery's case: with the mean fill the consomme photo stays "consomme" with every
    superpixel hidden, so its top-1 anchor is empty (about 100 passes); the note says so, and the
    photo with everything hidden, predicted by the classifier directly, bears it out."""
    from xai_panel.data import load_image

    view = classifier.prepare(load_image(shared_sample / "n07584110_consomme.JPEG"))
    engine = PerturbationEngine(view, segment(view, "slic", seed=0, n_segments=25), classifier, "mean")
    label = labels_of(engine, 1)[0]
    r = explain_anchors(engine, [label], top_k=1, seed=0, pool=None, n_examples=2)[label]
    assert r.found and r.segments == () and r.coverage == 1.0 and r.precision >= 0.95
    assert r.empty and r.status == "empty" and r.message == r.note
    all_hidden = engine.render(np.zeros((1, engine.n_segments), bool))
    assert classifier.predict_proba(all_hidden).argmax(1)[0] == label
    assert r.note.startswith("empty anchor: the class stays the top class even with every superpixel hidden")
    assert "each superpixel's mean colour" in r.note and "another fill (blur or constant)" in r.note


@pytest.mark.slow
def test_real_model_anchors_hold_on_fresh_samples(classifier, shared_sample):
    """Top-2 of a real photo on 26 SLIC superpixels: the pool's 1,000 passes and about 130 more
    (on quickshift's 35 the search needs about 1,800 more; other photos and lower classes can need 10^4)."""
    from xai_panel.data import load_image

    view = classifier.prepare(load_image(shared_sample / "n02123045_tabby.JPEG"))
    engine = PerturbationEngine(view, segment(view, "slic", seed=0, n_segments=25), classifier, "mean")
    labels = labels_of(engine, 2)
    pool = lime_pool(engine, 1000, 0)
    with engine.track("anchors") as box:
        results = explain_anchors(engine, labels, top_k=2, seed=0, pool=pool)
    print(f"{engine.n_segments} superpixels; {box['cost']}")
    assert all(r.found for r in results.values())
    assert_valid(engine, results, labels, 2, n=300)
    top = results[labels[0]]
    assert top.target == TOP1 and 1 <= len(top.segments) < engine.n_segments
    assert top.examples.shape[1:] == view.shape and top.examples.dtype == np.uint8
    # the examples keep the anchor's superpixels exactly as in the photo
    keep = engine.segmentation.mask(top.segments)
    assert len(top.examples) and (top.examples[:, keep] == view[keep]).all()


@pytest.mark.slow
def test_real_model_region_anchors_for_five_classes_hold_on_fresh_samples(classifier, shared_sample):
    """The default search (about 10 regions): five classes for a few hundred passes."""
    from xai_panel.data import load_image
    from xai_panel.methods import AnchorExplainer

    view = classifier.prepare(load_image(shared_sample / "n02123045_tabby.JPEG"))
    engine = PerturbationEngine(view, segment(view, "quickshift", seed=0), classifier, "mean")
    labels = labels_of(engine, 5)
    with engine.track("anchors") as box:
        # No pool: the region search draws its own samples (the uniform pool fits superpixels, not regions).
        results = AnchorExplainer().compute(engine, labels, seed=0, pool=None, top_k=5)
    print(f"{engine.n_segments} superpixels; {box['cost']}")
    assert box["cost"].forward_passes < 3000
    assert sum(r.found for r in results.values()) >= 3
    assert_valid(engine, results, labels, 5, n=300)
