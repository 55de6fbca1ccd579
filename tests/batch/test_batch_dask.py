"""Precompute on a real Dask LocalCluster gives what the in-process run gives."""

from __future__ import annotations

import numpy as np

from xai_panel.batch import precompute
from xai_panel.data import image_hash, load_image
from xai_panel.store import ExplainRequest, ExplanationStore

from .batch_helpers import FAST


def test_two_workers_store_the_same_results_as_one_process(tmp_path, images):
    local = ExplanationStore(tmp_path / "local.sqlite")
    dask = ExplanationStore(tmp_path / "dask.sqlite")
    (tmp_path / "images" / "n01443537_broken.JPEG").write_bytes(b"not an image")
    precompute(tmp_path / "images", store=local, progress=False, **FAST)
    report = precompute(tmp_path / "images", store=dask, progress=False, workers=2, **FAST)
    assert report.done == 3 and [e.image_id for e in report.failed] == ["n01443537_broken.JPEG"]
    assert "LocalCluster, 2 worker" in report.backend
    request = ExplainRequest.create(report.model_id, **FAST)
    for path in images:
        h = image_hash(load_image(path))
        a, b = local.get(h, request), dask.get(h, request)
        assert [(c.index, c.name) for c in a.top] == [(c.index, c.name) for c in b.top]
        np.testing.assert_allclose([c.probability for c in a.top], [c.probability for c in b.top], atol=1e-5)
        for label in a.lime:
            # ONNX Runtime with 1 thread (workers) vs 2 (here): equal up to float rounding.
            np.testing.assert_allclose(a.lime[label].weights, b.lime[label].weights, atol=1e-5)
    # The client wrote everything; a second run skips it all.
    again = precompute(tmp_path / "images", store=dask, progress=False, **FAST)
    assert (again.done, again.skipped) == (0, 3)


def test_an_existing_client_is_used_and_workers_load_the_model_once(tmp_path, images, dask_client):
    client = dask_client
    report = precompute(tmp_path / "images", store=tmp_path / "s.sqlite", progress=False, client=client, **FAST)
    assert report.done == 3
    loaded = client.run(lambda: len(__import__("xai_panel.batch.tasks", fromlist=["_models"])._models))
    assert list(loaded.values()) == [1]
    # The model runs single-threaded on the worker: one worker per core.
    threads = client.run(lambda: __import__("xai_panel.batch.tasks", fromlist=["_models"])
                         ._models[("efficientnet_lite0", 1)]._runner.session.get_session_options()
                         .intra_op_num_threads)
    assert list(threads.values()) == [1]


def test_the_cli_on_a_running_scheduler_stores_what_the_workers_computed(tmp_path, images, dask_client, classifier):
    import subprocess

    from .batch_helpers import FAST_ARGS, PYTHON

    address = dask_client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    store_path = tmp_path / "s.sqlite"
    done_before = sum(dask_client.run(lambda dask_worker: dask_worker.state.executed_count).values())
    result = subprocess.run([PYTHON, "-m", "xai_panel", "precompute", str(tmp_path / "images"), "--store",
                             str(store_path), "--scheduler", address, *FAST_ARGS],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 images: 3 computed, 0 already stored, 0 failed" in result.stdout
    assert f"dask scheduler {address}) -> {store_path}" in result.stdout
    # The cluster's worker ran them: one model-id task plus one task per image.
    done_after = sum(dask_client.run(lambda dask_worker: dask_worker.state.executed_count).values())
    assert done_after - done_before == 1 + 3
    models = dask_client.run(lambda: list(__import__("xai_panel.batch.tasks", fromlist=["_models"])._models))
    assert list(models.values()) == [[("efficientnet_lite0", 1)]]  # one model per worker, whoever asked
    with ExplanationStore(store_path) as store:
        summaries = store.summaries()
        assert sorted(s.image_id for s in summaries) == sorted(p.name for p in images)
        request = ExplainRequest.create(summaries[0].model_id, **FAST)
        assert summaries[0].model_id == classifier.model_id
        image = load_image(images[0])
        got = store.get(image_hash(image), request)
        # Equal to this process's own explanation up to float rounding (1 model thread there).
        from xai_panel import explain

        mine = explain(image, classifier, **request.explain_kwargs())
        assert [c.index for c in got.top] == [c.index for c in mine.top]
        for label in mine.lime:
            np.testing.assert_allclose(got.lime[label].weights, mine.lime[label].weights, atol=1e-5)
