"""The SQLite store on real files: round trips, summaries, errors a user can act on."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from xai_panel.methods.anchors import AnchorResult
from xai_panel.store import (
    SCHEMA_VERSION,
    ExplainRequest,
    ExplanationStore,
    StoreError,
    StoreFullError,
    StoreLockedError,
    explain_cached,
    export_result,
    find_results,
    package_version,
)
from xai_panel.store.sqlite import APPLICATION_ID

from .conftest import errors_in_threads


@pytest.fixture
def store(tmp_path):
    with ExplanationStore(tmp_path / "store.sqlite") as s:
        yield s


def _fill(store, explained):
    for record, h, request, explanation in explained:
        store.put(explanation, h, request=request, record=record)


def test_put_then_get_gives_the_same_explanation(store, explained):
    record, h, request, explanation = explained[0]
    assert store.get(h, request) is None
    assert store.missing(h, request) == ("lime",)
    keys = store.put(explanation, h, request=request, record=record)
    assert keys == (request.result_key(h, "lime"),)
    got = store.get(h, request)
    assert store.missing(h, request) == ()
    assert np.array_equal(got.image, explanation.image)
    assert got.top == explanation.top and got.settings == explanation.settings and got.costs == explanation.costs
    for label, result in explanation.lime.items():
        assert np.array_equal(got.lime[label].weights, result.weights)
    # Putting the same thing twice keeps one row per key.
    store.put(explanation, h, request=request, record=record)
    assert store.count() == 1


def test_the_file_is_a_versioned_wal_store(store, tmp_path):
    raw = sqlite3.connect(tmp_path / "store.sqlite")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert store.info()["schema"] == SCHEMA_VERSION


def test_a_partial_explanation_stores_its_methods_only(store, explained):
    record, h, _, explanation = explained[0]
    both = ExplainRequest.create(explanation.model_id, ("lime", "shap"), segmentation="grid",
                                 settings={"lime": {"num_samples": 60}})
    store.put(explanation, h, request=both, record=record)
    got = store.get(h, both)
    assert got.methods == ("lime",) and "shap" not in got.costs
    assert store.missing(h, both) == ("shap",)
    assert store.stored_images(both) == {h: frozenset({"lime"})}


def test_other_settings_are_other_rows(store, explained):
    record, h, request, explanation = explained[0]
    store.put(explanation, h, request=request, record=record)
    other = ExplainRequest.create(request.model_id, ("lime",), segmentation="grid", seed=1,
                                  settings={"lime": {"num_samples": 60}})
    assert store.get(h, other) is None


def test_summaries_sort_and_filter(store, explained):
    _fill(store, explained)
    first_record, h0, request, explanation = explained[0]
    # An anchors row (a real AnchorResult, made by hand) and a stability score for one image.
    anchors_request = ExplainRequest.create(request.model_id, ("lime", "anchors"), segmentation="grid",
                                            settings={"lime": {"num_samples": 60}})
    top1 = explanation.top[0].index
    anchor = AnchorResult(top1, "top-1", (0, 2), 0.93, 0.1, np.zeros((0, 224, 224, 3), np.uint8),
                          np.zeros((0, 224, 224, 3), np.uint8), True)
    with_anchor = replace(explanation.with_results(costs={**explanation.costs, "anchors": explanation.costs["lime"]},
                                                   anchors={top1: anchor}),
                          settings=anchors_request.explanation_settings(("lime", "anchors")))
    store.put(with_anchor, h0, request=anchors_request, methods=["anchors"], record=first_record)
    store.put_metric(h0, request.model_id, "stability", 0.75)

    rows = store.summaries(request.model_id, sort_by="confidence", descending=True)
    assert len(rows) == len(explained)
    assert [r.confidence for r in rows] == sorted((r.confidence for r in rows), reverse=True)
    by_hash = {r.image_hash: r for r in rows}
    first = by_hash[h0]
    assert first.anchor_precision == pytest.approx(0.93) and first.stability == 0.75
    assert first.methods == ("lime", "anchors")
    assert first.predicted == explanation.top[0].index and first.image_id == first_record.id
    assert first.correct == (first_record.label == first.predicted)
    for record, h, _, e in explained:
        s = by_hash[h]
        assert (s.label, s.label_name) == (record.label, record.label_name)
        assert s.correct == (None if record.label is None else record.label == e.top[0].index)
    # Missing values sort last whichever the direction.
    for descending in (False, True):
        ordered = store.summaries(sort_by="anchor_precision", descending=descending)
        assert ordered[0].image_hash == h0 and all(r.anchor_precision is None for r in ordered[1:])
    labelled = [r for r in rows if r.label is not None]
    assert store.summaries(label=labelled[0].label_name) == [r for r in rows if r.label_name == labelled[0].label_name]
    assert {r.image_hash for r in store.summaries(correct=True)} == {r.image_hash for r in rows if r.correct}
    with pytest.raises(ValueError, match="sort_by"):
        store.summaries(sort_by="payload; DROP TABLE results")


def test_many_threads_read_one_store(store, explained):
    _fill(store, explained)

    def read():
        for _ in range(20):
            for _, h, request, explanation in explained:
                got = store.get(h, request)
                assert got.lime.keys() == explanation.lime.keys()

    assert not errors_in_threads(read, 4)


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    path = tmp_path / "photo.sqlite"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is a JPEG, not a database" * 40)
    with pytest.raises(StoreError, match=r"photo.sqlite is not an xai-panel store: file is not a database"):
        ExplanationStore(path)


def test_another_applications_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE customers (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"not an xai-panel store: .*customers"):
        ExplanationStore(path)


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    ExplanationStore(tmp_path / "s.sqlite").close()
    raw = sqlite3.connect(tmp_path / "s.sqlite")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="newer xai-panel"):
        ExplanationStore(tmp_path / "s.sqlite")


def test_an_older_schema_is_migrated(tmp_path, explained, monkeypatch):
    # Schema 0 is the empty file; register a next step to check the path runs in order, once.
    from xai_panel.store import sqlite as module

    path = tmp_path / "s.sqlite"
    path.write_bytes(b"")
    ExplanationStore(path).close()
    calls = []

    def add_notes(conn):
        calls.append(1)
        conn.execute("CREATE TABLE notes (text TEXT)")

    step = SCHEMA_VERSION + 1
    monkeypatch.setitem(module.MIGRATIONS, step, add_notes)
    monkeypatch.setattr(module, "SCHEMA_VERSION", step)
    ExplanationStore(path).close()
    ExplanationStore(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == step and calls == [1]
    assert raw.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0


def test_a_locked_store_times_out_with_a_clear_message(tmp_path, explained):
    record, h, request, explanation = explained[0]
    path = tmp_path / "s.sqlite"
    ExplanationStore(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO meta VALUES ('held', 'yes')")
    store = ExplanationStore(path, timeout=0.3)
    with pytest.raises(StoreLockedError, match="locked by another process.*0.3 s"):
        store.put(explanation, h, request=request, record=record)
    assert store.get(h, request) is None  # readers are not blocked by the writer
    blocker.execute("COMMIT")
    store.put(explanation, h, request=request, record=record)
    assert store.count() == 1


def test_a_full_disk_leaves_nothing_half_written(tmp_path, explained):
    path = tmp_path / "s.sqlite"
    with ExplanationStore(path) as s:
        record, h, request, explanation = explained[0]
        s.put(explanation, h, request=request, record=record)
    # Capped at its current size: no room for another image, as on a full disk.
    capped = ExplanationStore(path, max_bytes=path.stat().st_size)
    record, h2, request2, explanation2 = explained[1]
    with pytest.raises(StoreFullError, match="no space left.*nothing of this write was stored"):
        capped.put(explanation2, h2, request=request2, record=record)
    capped.close()
    with ExplanationStore(path) as s:
        info = s.info()
        assert (info["results"], info["bases"], info["images"]) == (1, 1, 1)
        assert s.get(h2, request2) is None and s.get(h, request) is not None
        assert s._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_prune_and_info(store, explained):
    _fill(store, explained)
    record, h, _, explanation = explained[0]
    old = ExplainRequest.create(explanation.model_id, ("lime",), segmentation="grid",
                                settings={"lime": {"num_samples": 60}}, version="0.0.1")
    store.put(explanation, h, request=old, record=record)
    info = store.info()
    assert info["results"] == len(explained) + 1
    assert {g["version"] for g in info["groups"]} == {"0.0.1", package_version()}
    assert store.prune() == 0  # no condition, nothing deleted
    assert store.prune(other_versions=True) == 1
    assert store.count() == len(explained) and store.info()["bases"] == len(explained)
    assert store.prune(method="lime") == len(explained)
    info = store.info()
    assert (info["results"], info["bases"], info["images"]) == (0, 0, 0)


def test_export_writes_json_and_pngs(store, explained, tmp_path):
    _fill(store, explained)
    record, h, request, explanation = explained[0]
    assert find_results(store, h[:10]) == [request.result_key(h, "lime")]
    assert find_results(store, record.id) == [request.result_key(h, "lime")]
    assert find_results(store, "nothing-like-this") == []
    folder = export_result(store, request.result_key(h, "lime"), tmp_path / "out")
    doc = json.loads((folder / "result.json").read_text())
    assert doc["method"] == "lime" and doc["image_id"] == record.id
    assert [t["index"] for t in doc["top"]] == list(explanation.labels)
    label = str(explanation.top[0].index)
    assert doc["results"][label]["weights"] == pytest.approx(explanation.lime[explanation.top[0].index].weights.tolist())
    for name in ("image.png", "segments.png", doc["results"][label]["map"]):
        assert Image.open(folder / name).size == (224, 224)


def test_explain_cached_computes_once(tmp_path, classifier, photos):
    record, image, h = photos[1]
    store = ExplanationStore(tmp_path / "s.sqlite")
    kwargs = dict(methods=("lime",), segmentation="grid", settings={"lime": {"num_samples": 60}}, record=record)
    seen = []
    first = explain_cached(image, store, classifier, on_method=seen.append, **kwargs)
    assert store.count() == 1 and seen[-1].methods == ("lime",)
    passes = classifier.forward_passes
    second = explain_cached(image, store, classifier, **kwargs)
    assert classifier.forward_passes == passes  # served from the store, no model call
    for label in first.lime:
        assert np.array_equal(first.lime[label].weights, second.lime[label].weights)
    assert store.summaries()[0].image_id == record.id


def test_explain_cached_computes_only_the_missing_methods(tmp_path, classifier, photos):
    record, image, h = photos[2]
    store = ExplanationStore(tmp_path / "s.sqlite")
    common = dict(segmentation="grid", settings={"lime": {"num_samples": 60}}, record=record)
    lime_only = explain_cached(image, store, classifier, methods=("lime",), **common)
    [lime_row] = store.results(method="lime")
    seen = []
    both = explain_cached(image, store, classifier, methods=("lime", "shap"), on_method=seen.append, **common)
    assert seen[0].methods == ("lime",)  # what was stored comes first, before any model call
    assert both.methods == ("lime", "shap") and store.count() == 2
    assert store.results(method="lime") == [lime_row]  # not rewritten
    for label in lime_only.lime:
        assert np.array_equal(both.lime[label].weights, lime_only.lime[label].weights)
    # SHAP computed later equals SHAP computed together with LIME (same pool, same key).
    fresh = ExplanationStore(tmp_path / "fresh.sqlite")
    together = explain_cached(image, fresh, classifier, methods=("lime", "shap"), **common)
    for label in together.shap:
        np.testing.assert_allclose(both.shap[label].values, together.shap[label].values, atol=1e-9)
    assert fresh.results(method="shap")[0].key == store.results(method="shap")[0].key


def test_the_default_location_follows_the_environment(tmp_path, monkeypatch):
    from xai_panel.store import default_store_path

    monkeypatch.setenv("XAI_PANEL_STORE", str(tmp_path / "mine.sqlite"))
    assert default_store_path() == tmp_path / "mine.sqlite"
    with ExplanationStore() as s:
        assert s.path == tmp_path / "mine.sqlite" and s.path.exists()
    monkeypatch.delenv("XAI_PANEL_STORE")
    monkeypatch.setenv("XAI_PANEL_CACHE", str(tmp_path / "cache"))
    assert default_store_path() == tmp_path / "cache" / "store.sqlite"
    monkeypatch.delenv("XAI_PANEL_CACHE")
    assert default_store_path().parts[-2:] == ("xai-panel", "store.sqlite")
    with pytest.raises(StoreError, match="is a folder"):
        ExplanationStore(tmp_path)
    with pytest.raises(StoreError, match="no store at"):
        ExplanationStore(tmp_path / "absent.sqlite", create=False)


def test_the_file_hash_memo_forgets_a_file_once_it_is_rewritten(store, tmp_path, photos):
    from xai_panel.data import image_hash, load_image

    (_, cat, _), (_, other, _) = photos[:2]
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(cat).save(a)
    Image.fromarray(other).save(b)
    ha, hb = image_hash(load_image(a)), image_hash(load_image(b))
    store.remember_file_hashes({str(a): ha, str(b): hb})
    assert store.file_hashes([a, b]) == {str(a): ha, str(b): hb}
    # The same file named another way finds the same entry, under the name asked for.
    indirect = tmp_path / "sub" / ".." / "a.png"
    (tmp_path / "sub").mkdir()
    assert store.file_hashes([indirect]) == {str(indirect): ha}

    # New content of another size: forgotten.
    Image.fromarray(other[::2, ::2]).save(a)
    assert store.file_hashes([a, b]) == {str(b): hb}
    # Same size, new bytes and a new mtime (an edit in place): forgotten too.
    before = os.stat(b)
    data = bytearray(b.read_bytes())
    data[-20] ^= 0xFF
    b.write_bytes(bytes(data))
    os.utime(b, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert os.stat(b).st_size == before.st_size
    assert store.file_hashes([a, b]) == {}
    # A file gone is simply unknown.
    b.unlink()
    assert store.file_hashes([b]) == {}

    # Remembering the new hash replaces the old entry (one per file).
    new = image_hash(load_image(a))
    assert new != ha
    store.remember_file_hashes({str(a): new})
    assert store.file_hashes([a]) == {str(a): new}
    assert store.info()["files"] == 2
