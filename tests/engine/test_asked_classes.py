"""``explain(labels=...)``: classes asked for beside the top-k ("why not otterhound?"), on the real model.

The photo is the sample's otterhound, which the embedded model ranks 7th (it says Norfolk
terrier): the class a user of the gallery wants explained is outside the top-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import xai_panel as xp
from xai_panel.engine.request import ExplainRequest, check_labels
from xai_panel.methods.anchors import NO_TARGET, TOP1, TOPK
from xai_panel.methods.base import available_methods

PHOTO = "n02091635_otterhound.JPEG"
TINY = {
    "lime": {"num_samples": 60},
    "anchors": {"batch_size": 10, "coverage_samples": 100, "n_examples": 1, "max_anchor_size": 2, "regions": 6},
    "shap": {"nsamples": 40},
    "integrated_gradients": {"steps": 4, "internal_batch_size": 4},
    "smoothgrad": {"samples": 2, "batch_size": 2},
}


@pytest.fixture(scope="module")
def otterhound(shared_sample):
    return xp.load_image(shared_sample / PHOTO)


@pytest.fixture(scope="module")
def true_class(classifier, otterhound):
    index = classifier.class_names.index("otterhound")
    probs = classifier.predict_proba(classifier.prepare(otterhound)[None])[0]
    rank = int((probs > probs[index]).sum())
    assert rank >= 5, "the photo's own class must be outside the top-5 for these tests to mean anything"
    return index, rank, float(probs[index])


def test_every_method_explains_a_class_outside_the_top_5(classifier, otterhound, true_class):
    index, rank, probability = true_class
    methods = available_methods()
    res = xp.explain(otterhound, classifier, methods=methods, labels=[index], seed=1,
                     settings={m: s for m, s in TINY.items() if m in methods})
    assert len(res.top) == 5 and index not in [c.index for c in res.top]
    (asked,) = res.asked
    assert (asked.index, asked.name) == (index, "otterhound")
    assert asked.probability == pytest.approx(probability, rel=1e-4)
    assert res.labels == (*(c.index for c in res.top), index) and res.classes[-1] == asked
    assert res.settings["labels"] == [index]
    for method in methods:
        assert set(res.results[method]) == set(res.labels), method
        assert res.results[method][index].label == index, method
    # the class's own results, not a copy of the top class's
    top = res.top[0].index
    assert not np.allclose(res.lime[index].weights, res.lime[top].weights)
    assert res.gradcam[index].prediction == pytest.approx(probability, rel=1e-3)
    assert abs(res.shap[index].prediction - probability) < 1e-3
    # anchors: "within the top-5", which the image itself misses, and the pane's note says so
    anchor = res.anchors[index]
    assert anchor.target == TOPK and f"ranked {rank + 1}" in anchor.note and "top 5" in anchor.note
    assert res.anchors[top].target == TOP1 and res.anchors[top].note == ""


def test_asked_classes_leave_the_top_k_results_as_they_are(classifier, otterhound, true_class):
    index = true_class[0]
    kwargs = dict(methods=("lime", "anchors", "shap"), settings=TINY, seed=2, top_k=2)
    plain = xp.explain(otterhound, classifier, **kwargs)
    asked = xp.explain(otterhound, classifier, labels=[index], **kwargs)
    for label in plain.labels:
        np.testing.assert_array_equal(plain.lime[label].weights, asked.lime[label].weights)
        np.testing.assert_array_equal(plain.shap[label].values, asked.shap[label].values)
        assert plain.anchors[label].segments == asked.anchors[label].segments
    assert index in asked.anchors and index not in plain.anchors
    # SHAP's Owen budget is spent on the asked class in a call of its own, so it costs passes
    assert asked.costs["shap"].forward_passes > plain.costs["shap"].forward_passes


def test_top_k_0_explains_only_the_asked_classes_by_name(classifier, otterhound, true_class):
    index = true_class[0]
    predicted = classifier.class_names[classifier.top_k(otterhound, 1)[0].index]
    res = xp.explain(otterhound, classifier, methods=("lime", "anchors"), top_k=0, settings=TINY,
                     labels=["OtterHound", predicted.upper()])
    assert res.top == ()
    assert {c.name for c in res.asked} == {"otterhound", predicted}
    assert set(res.lime) == set(res.anchors) == set(res.labels) == {c.index for c in res.asked}
    top = classifier.class_names.index(predicted)
    assert res.anchors[top].target == TOP1  # still the top class: it stays the top class
    missing = res.anchors[index]  # no top-k to stay within: said, not searched
    assert missing.target == NO_TARGET and not missing.found and missing.segments == ()
    assert "top_k=0" in missing.note and "top_k >= 1" in missing.note


@pytest.mark.parametrize("labels, message", [
    ([1000], "class index 1000 is out of range: the model's classes are 0 to 999"),
    ([-1], "class index -1 is out of range"),
    (["otterhund"], "unknown class 'otterhund'.*did you mean 'otterhound'"),
    (["no such thing at all"], "unknown class 'no such thing at all': not one of the model's class names"),
    ([True], "a class is an index or a class name, not True"),
    ([2.5], "a class is an index or a class name, not 2.5"),
    (["crane"], "class name 'crane' is ambiguous: it names classes"),
])
def test_bad_classes_are_refused_before_any_model_pass(classifier, otterhound, labels, message):
    before = classifier.forward_passes
    with pytest.raises(ValueError, match=message):
        xp.explain(otterhound, classifier, methods=("lime",), labels=labels, settings=TINY)
    assert classifier.forward_passes == before


def test_top_k_0_needs_labels(classifier, otterhound):
    with pytest.raises(ValueError, match=r"top_k must be between 1 and 20 \(or 0 with labels=\), got 0"):
        xp.explain(otterhound, classifier, methods=("lime",), top_k=0)
    with pytest.raises(ValueError, match=r"top_k must be >= 1 \(or 0 with labels=\)"):
        ExplainRequest.create("m", ("lime",), top_k=0)


def test_the_request_keys_the_asked_classes_and_keeps_the_old_keys():
    plain = ExplainRequest.create("m@1", ("lime", "anchors"))
    asked = ExplainRequest.create("m@1", ("lime", "anchors"), labels=[175, 3, 175])
    assert asked.labels == (3, 175) == check_labels([175, 3])
    assert "labels" not in plain.base_config()  # keys stored before labels existed stay valid
    assert asked.result_key("img", "lime") != plain.result_key("img", "lime")
    assert asked.base_key("img") != plain.base_key("img")
    same = ExplainRequest.create("m@1", ("lime", "anchors"), labels=(175, 3))
    assert same.result_key("img", "anchors") == asked.result_key("img", "anchors")
    assert asked.explain_kwargs()["labels"] == (3, 175)
    with pytest.raises(ValueError, match="class 'bus' is a name: give its index"):
        ExplainRequest.create("m@1", ("lime",), labels=["bus"])


def test_a_store_round_trip_keeps_the_asked_classes(classifier, otterhound, true_class, tmp_path):
    from xai_panel.data import image_hash
    from xai_panel.engine.service import explain_cached
    from xai_panel.store import ExplanationStore

    index = true_class[0]
    store = ExplanationStore(tmp_path / "x.sqlite")
    kwargs = dict(methods=("lime", "anchors"), settings=TINY, top_k=2)
    first = explain_cached(otterhound, store, classifier, labels=["otterhound"], **kwargs)
    passes = classifier.forward_passes
    again = explain_cached(otterhound, store, classifier, labels=[index], **kwargs)
    assert classifier.forward_passes == passes  # read from the store: no model pass
    assert again.asked == first.asked and again.asked[0].index == index
    np.testing.assert_array_equal(again.lime[index].weights, first.lime[index].weights)
    assert again.anchors[index].note == first.anchors[index].note != ""
    # the request without the asked class is another key: not answered with these rows
    request = ExplainRequest.create(classifier.model_id, ("lime", "anchors"), settings=TINY, top_k=2)
    assert store.missing(image_hash(otterhound), request) == ("lime", "anchors")
