"""Keys: equal inputs give equal keys, any input that changes a result changes its key."""

from __future__ import annotations

import pytest

from xai_panel.engine.pipeline import DEFAULT_POOL_SIZE
from xai_panel.store import ExplainRequest, canonical_json, digest

MODEL = "efficientnet_lite0@579344248a93"
H = "ab" * 32


def req(**kw):
    kw.setdefault("methods", ("lime", "anchors", "shap"))
    return ExplainRequest.create(MODEL, **kw)


def test_defaults_spelled_out_give_the_same_key():
    implicit = req()
    explicit = req(settings={"lime": {"num_samples": 1000, "kernel_width": 0.25}, "anchors": {"threshold": 0.95}},
                   segmentation_params={"kernel_size": 4, "max_dist": 200, "ratio": 0.2})
    for m in ("lime", "anchors", "shap"):
        assert implicit.result_key(H, m) == explicit.result_key(H, m)
    assert implicit.base_key(H) == explicit.base_key(H)


def test_numbers_are_keyed_by_value():
    assert canonical_json({"b": 1.0, "a": [2, 0.5]}) == '{"a":[2,0.5],"b":1}'
    assert req(settings={"anchors": {"threshold": 1}}).result_key(H, "anchors") == \
        req(settings={"anchors": {"threshold": 1.0}}).result_key(H, "anchors")


@pytest.mark.parametrize("change", [
    {"seed": 1}, {"top_k": 3}, {"fill": "blur"}, {"segmentation": "slic"},
    {"segmentation_params": {"kernel_size": 6}}, {"settings": {"lime": {"kernel_width": 0.5}}},
])
def test_every_input_that_changes_lime_changes_its_key(change):
    assert req(**change).result_key(H, "lime") != req().result_key(H, "lime")


def test_image_model_method_and_version_are_in_the_key():
    base = req()
    assert base.result_key(H, "lime") != base.result_key("cd" * 32, "lime")
    assert base.result_key(H, "lime") != base.result_key(H, "shap")
    assert base.result_key(H, "lime") != base.with_model("resnet18@f37072fd").result_key(H, "lime")
    other = ExplainRequest.create(MODEL, ("lime",), version="0.0.1")
    assert other.result_key(H, "lime") != ExplainRequest.create(MODEL, ("lime",)).result_key(H, "lime")


def test_settings_of_one_method_do_not_touch_the_others_keys():
    a, b = req(), req(settings={"anchors": {"threshold": 0.9}})
    assert a.result_key(H, "lime") == b.result_key(H, "lime")
    assert a.result_key(H, "anchors") != b.result_key(H, "anchors")


def test_the_pool_size_is_part_of_shap_and_anchor_keys():
    # SHAP ('pool') and Anchors draw on LIME's pool: LIME's sample count changes them.
    small = req(settings={"lime": {"num_samples": 500}})
    assert small.pool_size == 500
    assert small.result_key(H, "shap") != req().result_key(H, "shap")
    alone = ExplainRequest.create(MODEL, ("shap",))
    assert alone.pool_size == DEFAULT_POOL_SIZE
    assert alone.result_key(H, "shap") == req().result_key(H, "shap")  # default lime pool == default pool


def test_narrowing_a_request_keeps_its_keys_and_recomputes_with_lime():
    full = req(settings={"lime": {"num_samples": 300}})
    shap_only = full.with_methods(["shap"])
    assert shap_only.methods == ("shap",)
    assert shap_only.result_key(H, "shap") == full.result_key(H, "shap")
    kwargs = shap_only.explain_kwargs()
    assert kwargs["methods"] == ("lime", "shap")  # LIME builds the pool the key assumes
    assert kwargs["settings"]["lime"]["num_samples"] == 300


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown method 'deeplift'; the methods are lime, anchors, shap"):
        ExplainRequest.create(MODEL, ("deeplift",))
    with pytest.raises(ValueError, match="at least one method"):
        ExplainRequest.create(MODEL, ())
    with pytest.raises(ValueError, match="no setting"):
        ExplainRequest.create(MODEL, ("lime",), settings={"lime": {"samples": 3}})
    with pytest.raises(ValueError, match="segmentation"):
        ExplainRequest.create(MODEL, ("lime",), segmentation="watershed")
    with pytest.raises(ValueError, match="model_id"):
        ExplainRequest.create(None, ("lime",)).result_key(H, "lime")


def test_keys_refuse_values_without_a_stable_spelling():
    with pytest.raises(ValueError):
        digest({"x": float("nan")})
    with pytest.raises(TypeError):
        digest({"x": object()})


def test_a_request_is_recovered_from_its_explanation(explained):
    _, h, request, explanation = explained[0]
    again = ExplainRequest.from_explanation(explanation)
    assert again.result_key(h, "lime") == request.result_key(h, "lime")
    assert again.base_key(h) == request.base_key(h)
