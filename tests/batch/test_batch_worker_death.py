"""A Dask worker process killed (SIGKILL) while precompute runs, on a real LocalCluster.

These tests share a two-worker cluster of their own, not the session's: they kill its
workers (its nannies start new ones). With Dask's default ``allowed-failures`` (3) the
scheduler runs the dead worker's images again on a live worker and the run stores every
image; when Dask gives up on an image (``KilledWorker``, here with the scheduler's
``allowed_failures`` set to 0) precompute reports it as failed, stores the rest, and the
next run does just that image.
"""

from __future__ import annotations

import os
import signal

import distributed
import pytest

from xai_panel.batch import Precompute, precompute
from xai_panel.data import image_hash, load_image
from xai_panel.store import ExplanationStore

from .batch_helpers import FAST, copy_images
from .conftest import start_cluster

IMAGES = 4


@pytest.fixture(scope="module")
def cluster(worker_cache):
    with start_cluster(2, worker_cache) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)  # a worker killed by the previous test is back
        yield client


def _run_killing_a_busy_worker(client, folder, store):
    """Run precompute on ``client``; after the first image is stored, SIGKILL a worker that is
    processing one. Returns (events, report, killed address)."""
    pids = client.run(os.getpid)
    job = Precompute(folder, store=store, client=client, **FAST)
    events, victim = [], None
    for event in job:
        events.append(event)
        if victim is None and event.status == "done":
            busy = [address for address, keys in client.processing().items() if keys]
            assert busy, "no worker had an image in flight after the first one was stored"
            victim = busy[0]
            os.kill(pids[victim], signal.SIGKILL)
    assert victim is not None, [e.status for e in events]
    assert pids[victim] not in client.run(os.getpid).values()  # dead; its nanny started a new process
    return events, job.report, victim


def _stored_hashes(store):
    return sorted(s.image_hash for s in store.summaries())


@pytest.mark.slow
def test_the_images_of_a_killed_worker_are_done_on_another(tmp_path, cluster, client):
    images = copy_images(tmp_path / "images", IMAGES)
    store = ExplanationStore(tmp_path / "s.sqlite")
    suspicious = getattr(cluster.scheduler.task_prefixes.get("run_task"), "suspicious", 0)
    events, report, victim = _run_killing_a_busy_worker(client, tmp_path / "images", store)
    # The scheduler saw tasks die with the worker and ran them again.
    assert cluster.scheduler.task_prefixes["run_task"].suspicious > suspicious
    assert (report.done, report.failed) == (IMAGES, [])
    assert sorted(e.image_id for e in events if e.status == "done") == sorted(p.name for p in images)
    assert _stored_hashes(store) == sorted(image_hash(load_image(p)) for p in images)
    assert store.count(method="lime") == IMAGES


@pytest.mark.slow
def test_an_image_dask_gives_up_on_is_reported_and_done_by_the_next_run(tmp_path, cluster, client, monkeypatch):
    images = copy_images(tmp_path / "images", IMAGES)
    store = ExplanationStore(tmp_path / "s.sqlite")
    # What ``distributed.scheduler.allowed-failures: 0`` gives: the first death of a worker fails its tasks.
    monkeypatch.setattr(cluster.scheduler, "allowed_failures", 0)
    events, report, victim = _run_killing_a_busy_worker(client, tmp_path / "images", store)
    failed = {e.image_id: e.error for e in report.failed}
    assert failed and report.done + len(failed) == IMAGES
    for image_id, error in failed.items():
        assert error.startswith("worker failed: KilledWorker: "), error
        assert victim in error  # KilledWorker names the worker that died
    assert f"{len(failed)} failed" in report.format() and "run again to retry them" in report.format()
    assert len(store.summaries()) == report.done  # the failed images left nothing behind

    again = precompute(tmp_path / "images", store=store, progress=False, **FAST)
    assert (again.done, again.skipped, again.failed) == (len(failed), report.done, [])
    assert _stored_hashes(store) == sorted(image_hash(load_image(p)) for p in images)
