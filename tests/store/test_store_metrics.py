"""The trust metrics in the store: faithfulness (every field, curves included), agreement and
their settings round-trip through the codec; old rows without them still load; merging and
settings never mix them up; summaries sort by a method's stored AUC. Real SQLite, the tiny
fixed model of the method tests (instant)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import numpy as np
import pytest

import xai_panel as xp
from tests.methods.test_shap import SIZE, toy_classifier
from xai_panel.data import image_hash
from xai_panel.engine.service import ExplanationService
from xai_panel.metrics.trust import add_metrics
from xai_panel.store import ExplainRequest, ExplanationStore, export_result
from xai_panel.store.entries import encode_explanation

FAST = {"segmentation": "grid", "segmentation_params": {"rows": 3, "cols": 3}, "top_k": 2,
        "settings": {"lime": {"num_samples": 80}, "anchors": {"coverage_samples": 100}}}
METHODS = ("lime", "occlusion", "anchors")


def assert_same(a, b, where="value"):
    """Equal values, arrays by content (NaN equal to NaN), dataclasses field by field."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def toy():
    clf = toy_classifier()
    images = [np.random.RandomState(s).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8) for s in (1, 2, 3)]
    request = ExplainRequest.create(clf.model_id, METHODS, **FAST)
    plain = [xp.explain(im, clf, **request.explain_kwargs()) for im in images]
    measured = [add_metrics(r, clf, ("faithfulness", "agreement")) for r in plain]
    return clf, request, [image_hash(im) for im in images], plain, measured


def test_metrics_are_stored_with_the_explanation_and_read_back_equal(tmp_path, toy):
    clf, request, hashes, _, measured = toy
    res = add_metrics(measured[0], clf, ("rise",))  # the pixel protocol too: every field of Faithfulness
    assert all(f.pixel is not None for f in res.faithfulness["lime"].values() if f.label == res.labels[0])
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        store.put(res, hashes[0], request=request)
        back = store.get(hashes[0], request)
        assert_same(dict(res.faithfulness), dict(back.faithfulness), "faithfulness")
        assert_same(dict(res.agreement), dict(back.agreement), "agreement")
        assert back.metric_settings == res.metric_settings
        assert set(back.faithfulness) == {"lime", "occlusion"}
        # one method by key (export): its own faithfulness
        (row,) = [r for r in store.results() if r.method == "lime"]
        assert_same(dict(store.load(row.key).faithfulness), {"lime": dict(res.faithfulness["lime"])})
        document = json.loads((export_result(store, row.key, tmp_path / "out") / "result.json").read_text())
        assert {int(k): v["deletion_auc"] for k, v in document["faithfulness"].items()} == {
            k: f.deletion_auc for k, f in res.faithfulness["lime"].items()}
        assert document["metric_settings"]["faithfulness"] == res.metric_settings["faithfulness"]
        assert store.info()["measures"] == 3  # lime, occlusion, one agreement
        # stored again with its metrics: the same rows, nothing doubled
        store.put(res, hashes[0], request=request)
        assert store.info()["measures"] == 3
        # a measured result pays nothing for what the store already had
        again = add_metrics(back, clf, ("faithfulness", "agreement"))
        assert again.costs.get("faithfulness") == back.costs.get("faithfulness")


def test_rows_without_metrics_load_and_storing_again_without_metrics_keeps_them(tmp_path, toy):
    clf, request, hashes, plain, measured = toy
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        store.put(plain[0], hashes[0], request=request)
        back = store.get(hashes[0], request)
        assert back is not None and not back.faithfulness and not back.agreement and not back.metric_settings
        assert set(back.methods) == set(METHODS)
        store.put(measured[0], hashes[0], request=request)
        store.put(plain[0], hashes[0], request=request)  # e.g. a result re-stored from a cache
        kept = store.get(hashes[0], request)
        assert_same(dict(measured[0].faithfulness), dict(kept.faithfulness))
        # only the metrics (methods=()): the results are not rewritten
        before = [(r.key, r.created_at) for r in store.results()]
        store.put(measured[1], hashes[1], request=request, methods=())
        assert [(r.key, r.created_at) for r in store.results()] == before


def test_each_methods_metrics_are_kept_when_explanations_merge(tmp_path, toy):
    clf, request, hashes, plain, _ = toy
    lime_only = request.with_methods(("lime",))
    occl_only = request.with_methods(("occlusion",))
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        service = ExplanationService(store=store)
        a = plain[0]
        one = add_metrics(replace_methods(a, ("lime",)), clf, "faithfulness")
        two = add_metrics(replace_methods(a, ("occlusion",)), clf, "faithfulness")
        store.put(one, hashes[0], request=lime_only)
        store.put(two, hashes[0], request=occl_only)
        both = store.get(hashes[0], request.with_methods(("lime", "occlusion")))
        assert set(both.faithfulness) == {"lime", "occlusion"}
        assert_same(dict(one.faithfulness["lime"]), dict(both.faithfulness["lime"]))
        assert_same(dict(two.faithfulness["occlusion"]), dict(both.faithfulness["occlusion"]))
        # the agreement of lime+occlusion was never computed: not read from a one-method row
        assert not both.agreement
        measured = service.measure(both, clf, hashes[0], request.with_methods(("lime", "occlusion")))
        assert measured.costs.get("faithfulness") == both.costs.get("faithfulness")  # nothing measured again
        assert set(store.get(hashes[0], request.with_methods(("lime", "occlusion"))).agreement) == set(a.labels)


def replace_methods(res, methods):
    return dataclasses.replace(res, results={m: res.results[m] for m in methods},
                               costs={k: v for k, v in res.costs.items() if k in methods or k not in METHODS},
                               settings={k: v for k, v in res.settings.items() if k in methods or k not in METHODS})


def test_metrics_of_other_settings_are_not_mixed_with_the_current_ones(tmp_path, toy):
    clf, request, hashes, plain, measured = toy
    coarse = add_metrics(plain[0], clf, "faithfulness", settings={"steps": 3, "random_orders": 2})
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        store.put(measured[0], hashes[0], request=request)
        store.put(coarse, hashes[0], request=request)  # the newest: its settings are read
        back = store.get(hashes[0], request)
        assert back.metric_settings["faithfulness"] == {"steps": 3, "random_orders": 2, "seed": 0}
        assert all(len(f.hidden) == 4 for per in back.faithfulness.values() for f in per.values())
        # lime measured again with the default settings: read alone, occlusion's coarse one is not mixed in
        fine_lime = add_metrics(replace_methods(plain[0], ("lime",)), clf, "faithfulness")
        store.put(fine_lime, hashes[0], request=request, methods=())
        back = store.get(hashes[0], request)
        assert back.metric_settings["faithfulness"] == {"steps": None, "random_orders": 3, "seed": 0}
        assert set(back.faithfulness) == {"lime", "occlusion"}  # the first default-settings occlusion row is there
        assert all(len(f.hidden) == 10 for per in back.faithfulness.values() for f in per.values())
        # a result computed with other method settings does not pick up these metrics
        other = request.with_methods(METHODS)
        other = ExplainRequest.create(clf.model_id, METHODS, **{**FAST, "settings": {"lime": {"num_samples": 90}}})
        lime90 = xp.explain(np.random.RandomState(1).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8), clf,
                            **other.explain_kwargs())
        store.put(lime90, hashes[0], request=other)
        assert "lime" not in store.get(hashes[0], other).faithfulness


def test_summaries_sort_by_a_methods_stored_auc_and_unmeasured_images_go_last(tmp_path, toy):
    clf, request, hashes, plain, measured = toy
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        store.put(measured[0], hashes[0], request=request, image_id="a")
        store.put(measured[1], hashes[1], request=request, image_id="b")
        store.put(plain[2], hashes[2], request=request, image_id="c")
        assert store.measured_methods() == ("lime", "occlusion")
        decoded = {h: store.get(h, request) for h in hashes}
        for column in ("deletion_auc", "insertion_auc", "random_deletion_auc"):
            for descending in (False, True):
                rows = store.summaries(sort_by=f"{column}:lime", descending=descending)
                values = {r.image_hash: getattr(decoded[r.image_hash].faithfulness["lime"][r.predicted], column)
                          for r in rows if decoded[r.image_hash].faithfulness}
                expected = sorted(values, key=values.get, reverse=descending)
                assert [r.image_hash for r in rows] == [*expected, hashes[2]]
                assert [r.score(f"{column}:lime") for r in rows[:2]] == [values[h] for h in expected]
        assert store.summaries(sort_by="deletion_auc:lime")[-1].faithfulness == {}
        for bad in ("deletion_auc:nope", "auc:lime", "deletion_auc:lime; DROP TABLE results", "nope"):
            with pytest.raises(ValueError, match="sort_by"):
                store.summaries(sort_by=bad)
        # pruning a method's rows takes its metrics with them
        store.prune(method="lime")
        assert store.measured_methods() == ("occlusion",)
        assert not store.get(hashes[0], request).agreement


def test_a_bad_metric_payload_is_skipped_and_the_explanation_still_loads(tmp_path, toy):
    clf, request, hashes, _, measured = toy
    path = tmp_path / "s.sqlite"
    with ExplanationStore(path) as store:
        store.put(measured[0], hashes[0], request=request)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE measures SET payload = x'00' WHERE method = 'lime'")
    raw.commit()
    with ExplanationStore(path) as store:
        back = store.get(hashes[0], request)
        assert set(back.methods) == set(METHODS) and set(back.faithfulness) == {"occlusion"}
        assert set(back.agreement) == set(back.labels)
        # a damaged key list or another row's payload in its place: skipped too, never raised
        raw.execute("UPDATE measures SET result_keys = 'not json' WHERE kind = 'agreement'")
        raw.execute("UPDATE measures SET payload = (SELECT payload FROM results LIMIT 1) WHERE method = 'occlusion'")
        raw.commit()
        back = store.get(hashes[0], request)
        assert set(back.methods) == set(METHODS) and not back.faithfulness and not back.agreement
        # measured again when asked, and stored over the damaged rows
        fixed = ExplanationService(store=store).measure(back, clf, hashes[0], request)
        assert set(fixed.faithfulness) == {"lime", "occlusion"}
        assert set(store.get(hashes[0], request).faithfulness) == {"lime", "occlusion"}
    raw.close()


def test_measures_are_encoded_without_pickle(toy):
    _, request, hashes, _, measured = toy
    encoded = encode_explanation(measured[0], hashes[0], request)
    assert {m.kind for m in encoded.measures} == {"faithfulness", "agreement"}
    for m in encoded.measures:
        assert m.payload[:2] == b"PK"  # the codec's zip + npy
    lime = next(m for m in encoded.measures if m.method == "lime")
    top = measured[0].faithfulness["lime"][measured[0].labels[0]]
    assert lime.top == (top.deletion_auc, top.insertion_auc, top.random_deletion_auc, top.random_insertion_auc)


def test_explain_cached_with_metrics_stores_them_and_pays_once(tmp_path, toy):
    clf, request, hashes, _, measured = toy
    image = np.random.RandomState(1).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    kwargs = dict(methods=METHODS, **FAST, metrics=("faithfulness", "agreement"))
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        first = xp.store.explain_cached(image, store, clf, **kwargs)
        assert set(first.faithfulness) == {"lime", "occlusion"} and first.costs["faithfulness"].forward_passes > 0
        assert_same(dict(first.faithfulness), dict(measured[0].faithfulness))  # what explain(metrics=) gives
        calls = []
        again = xp.store.explain_cached(image, store, clf, progress=lambda *a: calls.append(a), **kwargs)
        assert_same(dict(again.faithfulness), dict(first.faithfulness))
        assert_same(dict(again.agreement), dict(first.agreement))
        assert "faithfulness" not in again.costs and calls == []  # read back: no model pass, nothing measured
        with pytest.raises(ValueError, match="unknown metric"):
            xp.store.explain_cached(image, store, clf, **{**kwargs, "metrics": ("faith",)})
