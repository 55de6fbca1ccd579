"""Precompute with the trust metrics: stored beside the explanations, in process, through the
CLI and on Dask; a rerun measures what was stored without them and explains nothing again;
bad metric arguments stop the run before any work."""

from __future__ import annotations

import pytest

from xai_panel.batch import Precompute, precompute
from xai_panel.cli import main
from xai_panel.cli_store import main_precompute
from xai_panel.data import image_hash, load_image
from xai_panel.store import ExplainRequest, ExplanationStore

from .batch_helpers import FAST, FAST_ARGS

TOP2 = {**FAST, "top_k": 2}
CHEAP = {"steps": 4, "random_orders": 1}  # 5 points per curve: the batch machinery is the point
CHEAP_ARGS = ["--top-k", "2", "--metric-steps", "4", "--metric-orders", "1"]


def _rows(store):
    return sorted((r.key, r.created_at) for r in store.results())


def test_a_rerun_with_metrics_measures_what_was_stored_without_them_and_explains_nothing(tmp_path, images, capsys):
    path = tmp_path / "s.sqlite"
    with ExplanationStore(path) as store:
        first = precompute(tmp_path / "images", store=store, progress=False, **TOP2)
        assert (first.done, first.measured) == (3, 0) and store.info()["measures"] == 0
        explained = _rows(store)

    # The CLI, one image: measured, not explained again.
    code = main_precompute([str(tmp_path / "images"), "--store", str(path), "--limit", "1",
                            *FAST_ARGS, "--metrics", "faithfulness,agreement", *CHEAP_ARGS])
    out = capsys.readouterr().out
    assert code == 0 and "1 images: 1 computed (1 measured), 0 already stored" in out
    assert main(["store", "info", "--store", str(path)]) == 0
    assert "3 results, 0 metrics, 2 trust metrics" in capsys.readouterr().out  # lime's faithfulness, the agreement

    with ExplanationStore(path) as store:
        events = []
        report = precompute(tmp_path / "images", store=store, progress=events.append, metrics=("faithfulness", "agreement"),
                            metric_settings=CHEAP, **TOP2)
        assert (report.done, report.skipped, report.measured, report.failed) == (2, 1, 2, [])
        assert [(e.status, e.measured, e.computed) for e in events if e.status != "skipped"] == [("done", True, ())] * 2
        assert _rows(store) == explained  # no result row was written again
        assert store.info()["measures"] == 3 * 2  # per image: lime's faithfulness and one agreement

        request = ExplainRequest.create(report.model_id, **TOP2)
        decoded = {}
        for p in images:
            got = store.get(image_hash(load_image(p)), request)
            assert set(got.faithfulness) == {"lime"} and set(got.agreement) == set(got.labels)
            assert got.metric_settings["faithfulness"] == {"steps": 4, "random_orders": 1, "seed": 0}
            assert len(got.faithfulness["lime"][got.labels[0]].deletion) == 5
            decoded[p.name] = got.faithfulness["lime"][got.labels[0]].deletion_auc
        # the gallery's sort: the stored AUCs in order, equal to sorting the decoded ones
        rows = store.summaries(sort_by="deletion_auc:lime", descending=True)
        assert [r.image_id for r in rows] == sorted(decoded, key=decoded.get, reverse=True)

        again = precompute(tmp_path / "images", store=store, progress=False, metrics=("faithfulness", "agreement"),
                           metric_settings=CHEAP, **TOP2)
        assert (again.done, again.skipped, again.measured) == (0, 3, 0)
        # other metric settings are other work (and are stored beside the first ones)
        finer = precompute(tmp_path / "images", store=store, progress=False, limit=1, metrics="faithfulness",
                           metric_settings={**CHEAP, "steps": 6}, **TOP2)
        assert (finer.done, finer.measured) == (1, 1) and _rows(store) == explained
        assert store.info()["measures"] == 3 * 2 + 1


def test_a_new_method_is_computed_alone_and_every_method_is_measured(tmp_path, images):
    with ExplanationStore(tmp_path / "s.sqlite") as store:
        precompute(tmp_path / "images", store=store, progress=False, limit=1, **TOP2)
        lime_rows = _rows(store)
        events = []
        both = {**TOP2, "methods": ("lime", "occlusion")}
        report = precompute(tmp_path / "images", store=store, progress=events.append, limit=1,
                            metrics=("faithfulness", "agreement"), metric_settings=CHEAP, **both)
        assert (report.done, report.measured) == (1, 1)
        assert [e.computed for e in events] == [("occlusion",)]
        assert set(lime_rows) <= set(_rows(store))  # lime's row is the one of the first run
        got = store.get(events[0].image_hash, ExplainRequest.create(report.model_id, **both))
        assert set(got.faithfulness) == {"lime", "occlusion"}
        assert all(a.methods == ("lime", "occlusion") for a in got.agreement.values())


@pytest.mark.parametrize(("args", "message"), [
    (["--metrics", "faithfulnes"], "unknown metric 'faithfulnes'; the metrics are faithfulness, rise, agreement"),
    (["--metrics", "faithfulness", "--metric-steps", "0"],
     "--metric-steps must be at least 1, got 0 (leave it out for the default: one step per superpixel)"),
    (["--metrics", "faithfulness", "--metric-orders", "101"], "--metric-orders must be in [1, 100], got 101"),
    (["--metrics", "agreement", "--metric-k", "-1"], "--metric-k must be in [1, 10000], got -1"),
    (["--metrics", ","], "--metrics needs at least one name"),
    (["--metrics", "none", "--metric-steps", "4"], "--metric-steps sets a trust metric's setting, and --metrics none"),
])
def test_bad_metric_arguments_exit_2_before_any_work(tmp_path, capsys, args, message):
    store = tmp_path / "s.sqlite"
    assert main_precompute(["demo", "--store", str(store), *FAST_ARGS, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xai-panel precompute: error: ") and message in err
    assert not store.exists()  # refused before the store was even created


def test_precompute_checks_metrics_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        Precompute("demo", store=tmp_path / "s.sqlite", metrics=("nope",))
    with pytest.raises(ValueError, match="no metric setting orders"):
        Precompute("demo", store=tmp_path / "s.sqlite", metrics="faithfulness", metric_settings={"orders": 2})
    assert not (tmp_path / "s.sqlite").exists()


def test_dask_workers_measure_stored_explanations_they_never_saw(tmp_path, images, dask_client):
    path = tmp_path / "s.sqlite"
    with ExplanationStore(path) as store:
        first = precompute(tmp_path / "images", store=store, progress=False, limit=2, **TOP2)  # in this process
        assert first.done == 2
        explained = _rows(store)
        ran_before = sum(dask_client.run(lambda dask_worker: dask_worker.state.executed_count).values())
        events = []
        report = precompute(tmp_path / "images", store=store, progress=events.append, client=dask_client,
                            metrics=("faithfulness", "agreement"), metric_settings=CHEAP, **TOP2)
        ran = sum(dask_client.run(lambda dask_worker: dask_worker.state.executed_count).values()) - ran_before
        assert (report.done, report.measured, report.failed) == (3, 3, []) and ran == 1 + 3
        assert sorted(e.computed for e in events) == [(), (), ("lime",)]  # two only measured, one explained
        assert set(explained) <= set(_rows(store)) and len(_rows(store)) == 3
        request = ExplainRequest.create(report.model_id, **TOP2)
        for p in images:
            got = store.get(image_hash(load_image(p)), request)
            assert set(got.faithfulness) == {"lime"} and set(got.agreement) == set(got.labels)
