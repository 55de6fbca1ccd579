"""A store file written outside this checkout (``fixtures/store-schema1.sqlite``, made by
``fixtures/make_old_store.py`` with plain sqlite3 and schema 1's frozen tables) opens,
migrates to today's schema and reads back; files the store cannot take are refused
whole, with a message that says why."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from xai_panel.store import SCHEMA_VERSION, ExplanationStore, StoreError
from xai_panel.store.sqlite import APPLICATION_ID

from .fixtures import make_old_store as old


@pytest.fixture
def old_file(tmp_path):
    return shutil.copy(old.FIXTURE, tmp_path / "old.sqlite")


def _raw(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _set_user_version(path, version):
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def test_the_committed_fixture_is_what_its_script_writes(tmp_path):
    fresh = old.write(tmp_path / "fresh.sqlite")
    for sql in ("SELECT key, config_key, config, anchor_precision FROM results ORDER BY key",
                "SELECT base_key, image_hash FROM bases", "SELECT * FROM images", "SELECT * FROM metrics",
                "SELECT * FROM files", "SELECT * FROM meta ORDER BY key", "PRAGMA user_version",
                "SELECT sql FROM sqlite_master ORDER BY name"):
        assert _raw(fresh, sql) == _raw(old.FIXTURE, sql), sql
    assert _raw(old.FIXTURE, "PRAGMA user_version") == [(1,)]
    assert _raw(old.FIXTURE, "PRAGMA application_id") == [(APPLICATION_ID,)]


def test_a_schema_1_file_opens_migrated_and_its_rows_read_back(old_file):
    with ExplanationStore(old_file) as store:
        info = store.info()
        assert info["schema"] == SCHEMA_VERSION
        assert {k: info[k] for k in ("images", "results", "bases", "metrics", "files")} == {
            "images": 1, "results": 2, "bases": 1, "metrics": 1, "files": 1}
        assert info["meta"]["created_by"] == old.VERSION

        rows = {r.method: r for r in store.results()}
        assert set(rows) == {"lime", "anchors"}
        lime = store.load(rows["lime"].key)
        assert lime.model_id == old.MODEL_ID and np.array_equal(lime.image, old.view())
        assert [(c.index, c.name, c.probability) for c in lime.top] == [tuple(t) for t in old.TOP]
        assert lime.segmentation.n_segments == 4 and lime.costs["lime"].forward_passes == 60
        for label, weights in old.LIME_WEIGHTS.items():
            np.testing.assert_array_equal(lime.lime[label].weights, weights)
        anchor = store.load(rows["anchors"].key).anchors[old.ANCHOR["label"]]
        assert (anchor.segments, anchor.precision, anchor.coverage) == (
            old.ANCHOR["segments"], old.ANCHOR["precision"], old.ANCHOR["coverage"])
        assert np.array_equal(anchor.examples[0], old.view())

        (summary,) = store.summaries()
        assert (summary.image_id, summary.predicted_name, summary.correct) == (old.IMAGE_ID, "tabby", True)
        assert summary.anchor_precision == old.ANCHOR["precision"] and summary.stability == old.STABILITY
        assert summary.methods == ("lime", "anchors")
        # The migrated file takes new writes beside the old rows.
        store.put_metric(old.IMAGE_HASH, old.MODEL_ID, "stability", 0.5)
        assert store.summaries()[0].stability == 0.5
        assert store._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _raw(old_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _raw(old_file, "PRAGMA journal_mode") == [("wal",)]


def test_a_file_from_a_newer_schema_is_refused_and_left_alone(old_file):
    _set_user_version(old_file, SCHEMA_VERSION + 1)
    before = _raw(old_file, "SELECT key FROM results ORDER BY key")
    with pytest.raises(StoreError) as refused:
        ExplanationStore(old_file)
    assert str(refused.value) == (
        f"{old_file} was written by a newer xai-panel (store schema {SCHEMA_VERSION + 1}; this version reads "
        f"up to {SCHEMA_VERSION}). Upgrade xai-panel or use another --store.")
    assert _raw(old_file, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert _raw(old_file, "SELECT key FROM results ORDER BY key") == before


def test_a_file_marked_schema_0_that_already_has_tables_is_refused_unchanged(old_file):
    # Schema 0 means "empty file": the upgrade would create the tables again. It must stop,
    # roll back, and leave every row where it was.
    _set_user_version(old_file, 0)
    before = _raw(old_file, "SELECT key, payload FROM results ORDER BY key")
    with pytest.raises(StoreError, match=rf"^{old_file}: upgrading failed: table meta already exists$"):
        ExplanationStore(old_file)
    assert _raw(old_file, "PRAGMA user_version") == [(0,)]
    assert _raw(old_file, "SELECT key, payload FROM results ORDER BY key") == before


def test_the_schema_2_upgrade_adds_the_metrics_table_and_keeps_every_key(old_file):
    # Schema 1 -> 2 adds ``measures`` (the trust metrics); results, bases and their keys stay as
    # they were, so an upgraded store still finds every result it had, and takes metrics for them.
    from dataclasses import replace

    from xai_panel.engine.request import KEY_SCHEMA
    from xai_panel.metrics.faithfulness import Faithfulness

    before = _raw(old_file, "SELECT key, config_key, base_key, payload FROM results ORDER BY key")
    with ExplanationStore(old_file) as store:
        tables = {r[0] for r in _raw(old_file, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "measures" in tables and store.info()["measures"] == 0
        assert _raw(old_file, "SELECT key, config_key, base_key, payload FROM results ORDER BY key") == before
        lime_row = next(r for r in store.results() if r.method == "lime")
        assert lime_row.config["schema"] == KEY_SCHEMA == 1
        lime = store.load(lime_row.key)
        assert not lime.faithfulness and not lime.agreement
        # The old row's key is still the one today's request computes for it, so metrics attach to it.
        label = old.TOP[0][0]
        curve = np.linspace(0.625, 0.0, 5)
        scored = replace(lime, faithfulness={"lime": {label: Faithfulness(
            label=label, n_segments=4, hidden=np.arange(5), deletion=curve, insertion=curve[::-1].copy(),
            deletion_auc=0.3125, insertion_auc=0.3125, random_deletion=curve, random_insertion=curve[::-1].copy(),
            random_deletion_auc=0.3125, random_insertion_auc=0.3125, random_orders=3, seed=0)}},
            metric_settings={"faithfulness": {"steps": None, "random_orders": 3, "seed": 0}})
        from xai_panel.store import ExplainRequest

        request = ExplainRequest(
            model_id=lime_row.config["model_id"], methods=("lime",), top_k=lime_row.config["top_k"],
            seed=lime_row.config["seed"], segmentation=lime_row.config["segmentation"],
            segmentation_params=lime_row.config["segmentation_params"], fill=lime_row.config["fill"],
            settings={"lime": lime_row.config["settings"]}, pool_size=lime_row.config["pool_size"],
            version=lime_row.config["version"])
        assert request.result_key(old.IMAGE_HASH, "lime") == lime_row.key
        store.put(scored, old.IMAGE_HASH, request=request, methods=())
        back = store.get(old.IMAGE_HASH, request)
        assert back.faithfulness["lime"][label].deletion_auc == 0.3125
        np.testing.assert_array_equal(back.faithfulness["lime"][label].deletion, curve)
        (summary,) = store.summaries(sort_by="deletion_auc:lime")
        assert summary.faithfulness == {"lime": {c: 0.3125 for c in (
            "deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc")}}
        assert store.measured_methods() == ("lime",)
    assert _raw(old_file, "SELECT key, config_key, base_key, payload FROM results ORDER BY key") == before
