"""Payloads: exact round trips, compact images, and no pickle on read."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from xai_panel.engine.results import ClassScore, MethodCost, Segmentation
from xai_panel.methods.anchors import AnchorResult
from xai_panel.methods.shap import ShapResult
from xai_panel.store import CodecError, ExplainRequest, decode_explanation, encode_explanation
from xai_panel.store.codec import decode, encode

from .conftest import errors_in_threads


def test_a_real_explanation_round_trips_exactly(explained):
    _, h, request, explanation = explained[0]
    encoded = encode_explanation(explanation, h, request)
    back = decode_explanation(encoded.base_payload, [(r.method, r.payload) for r in encoded.rows], request)
    assert np.array_equal(back.image, explanation.image)
    assert back.segmentation.labels.dtype == np.int32
    assert np.array_equal(back.segmentation.labels, explanation.segmentation.labels)
    assert back.top == explanation.top and back.costs == explanation.costs and back.settings == explanation.settings
    assert back.lime.keys() == explanation.lime.keys()
    for label, result in explanation.lime.items():
        got = back.lime[label]
        assert np.array_equal(got.weights, result.weights) and got.weights.dtype == result.weights.dtype
        assert (got.intercept, got.score, got.local_prediction) == (result.intercept, result.score, result.local_prediction)


def _anchor_and_shap(view: np.ndarray, labels: np.ndarray):
    rng = np.random.default_rng(0)
    n = int(labels.max()) + 1
    background = np.full_like(view, 90)
    coalitions = rng.random((4, n)) < 0.5
    examples = np.where(coalitions[:, labels][..., None], view[None], background[None]).astype(np.uint8)
    anchor = AnchorResult(label=3, target="top-1", segments=(1, 4), precision=0.97, coverage=0.2,
                          examples=examples, counter_examples=examples[:0], found=True)
    shap = ShapResult(label=3, values=rng.normal(size=n), base_value=0.1, prediction=0.8, estimator="partition",
                      heatmap=rng.normal(size=labels.shape))
    return anchor, shap


def test_anchor_examples_are_stored_relative_to_the_view_losslessly(photos, classifier):
    _, image, _ = photos[0]
    view = classifier.prepare(image)
    labels = (np.arange(224)[:, None] // 32 * 7 + np.arange(224)[None, :] // 32).astype(np.int32)
    anchor, shap = _anchor_and_shap(view, labels)
    plain = encode({"a": anchor})
    compact = encode({"a": anchor}, view=view)
    assert len(compact) < 0.5 * len(plain)
    back = decode(compact, view=view)["a"]
    assert isinstance(back, AnchorResult) and back.segments == (1, 4) and back.found is True
    assert back.examples.dtype == np.uint8 and np.array_equal(back.examples, anchor.examples)
    assert back.counter_examples.shape == (0, 224, 224, 3)
    with pytest.raises(CodecError, match="view"):
        decode(compact)
    shap_back = decode(encode({"s": shap}))["s"]
    assert np.array_equal(shap_back.heatmap, shap.heatmap) and np.array_equal(shap_back.values, shap.values)


def test_values_keep_their_types():
    seg = Segmentation(labels=np.arange(12, dtype=np.int32).reshape(3, 4) * 30, algorithm="grid",
                       params={"rows": 3, "cols": 4}, seconds=0.5)
    value = {"seg": seg, "top": (ClassScore(1, "goldfish", 0.5),), "map": {3: [1.5, None, "x"], 7: True},
             "cost": MethodCost("lime", 1.0, 10, 2, 0.5, 12), "big": np.arange(70000, dtype=np.int64)}
    back = decode(encode(value))
    assert back["seg"].labels.dtype == np.int32 and np.array_equal(back["seg"].labels, seg.labels)
    assert back["top"] == value["top"] and back["cost"] == value["cost"] and back["map"] == value["map"]
    assert back["big"].dtype == np.int64 and np.array_equal(back["big"], value["big"])


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/xai-panel-codec-pwned", "w"))


def test_reading_never_unpickles(tmp_path):
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as z:
        entry = {"$a": "a0", "shape": [1], "dtype": "|O"}
        z.writestr("manifest.json", json.dumps({"format": 1, "value": {"$d": [["x", entry]]}}))
        npy = io.BytesIO()
        np.save(npy, np.array([_Boom()], dtype=object), allow_pickle=True)
        z.writestr("a0.npy", npy.getvalue())
    marker = "/tmp/xai-panel-codec-pwned"
    import os

    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(CodecError):
        decode(payload.getvalue())
    # Same array under a harmless-looking dtype: numpy refuses to unpickle it.
    bad = payload.getvalue().replace(b'"dtype": "|O"', b'"dtype": "<f8"')
    with pytest.raises(CodecError):
        decode(bad)
    assert not os.path.exists(marker)
    with pytest.raises(CodecError, match="cannot store"):
        encode({"x": np.array([object()], dtype=object)})
    with pytest.raises(CodecError, match="cannot store"):
        encode({"x": _Boom()})


@pytest.mark.parametrize("damage", [b"", b"not a zip", None])
def test_damaged_payloads_raise_codec_errors(damage):
    good = encode({"x": np.arange(5)})
    data = good[: len(good) // 2] if damage is None else damage
    with pytest.raises(CodecError):
        decode(data)


def test_unknown_types_are_refused():
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as z:
        z.writestr("manifest.json", json.dumps({"format": 1, "value": {"$d": [["x", {"$c": "os.system", "f": {}}]]}}))
    with pytest.raises(CodecError, match="unknown type"):
        decode(payload.getvalue())


def test_the_request_pins_the_keys_written(explained):
    _, h, request, explanation = explained[0]
    other = ExplainRequest.create(request.model_id, ("lime",), segmentation="grid", settings={"lime": {"num_samples": 60}},
                                  top_k=5)
    assert encode_explanation(explanation, h).rows[0].key == other.result_key(h, "lime")


@pytest.mark.parametrize("array", [
    np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
    np.linspace(0, 1, 7, dtype=np.float32),
    np.zeros((0, 3), dtype=np.int16),
    np.array(3.5),
])
def test_arrays_read_back_exactly_and_writable(array):
    from xai_panel.store.codec import _read_npy

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    back = _read_npy(io.BytesIO(buffer.getvalue()))
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    assert back.flags.writeable
    if array.size:
        with pytest.raises(CodecError, match="truncated"):
            _read_npy(io.BytesIO(buffer.getvalue()[:-1]))


def test_headers_read_in_many_threads_at_once():
    # numpy parses .npy headers with ast.literal_eval, which CPython 3.11 can fail with
    # "AST constructor recursion depth mismatch" when threads race; the reader serialises it.
    payload = encode({"a": np.arange(6).reshape(2, 3), "b": np.ones((4, 4), np.float32)})

    def read():
        for _ in range(300):
            back = decode(payload)
            assert back["a"].shape == (2, 3) and back["b"].dtype == np.float32

    assert not errors_in_threads(read, 6)
