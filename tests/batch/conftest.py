"""Fixtures of the batch tests."""

from __future__ import annotations

import logging

import pytest

from .batch_helpers import copy_images


@pytest.fixture
def images(tmp_path):
    return copy_images(tmp_path / "images", 3)


@pytest.fixture(scope="session")
def worker_cache(tmp_path_factory):
    """XAI_PANEL_CACHE of the Dask workers: empty at the start of the session, then shared,
    so the model is exported to ONNX once for every cluster of the session."""
    return tmp_path_factory.mktemp("dask-worker-cache")


def start_cluster(workers: int, worker_cache, **kwargs):
    """A real LocalCluster on loopback: ``workers`` single-threaded worker processes."""
    import distributed

    return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None, silence_logs=logging.ERROR,
                                    env={"XAI_PANEL_CACHE": str(worker_cache)}, **kwargs)


@pytest.fixture(scope="session")
def dask_cluster(worker_cache):
    """One LocalCluster (one worker) shared by the Dask tests that leave it as they found it:
    starting it and loading the model on its worker is paid once per session. Tests that
    kill workers or need another shape start their own."""
    with start_cluster(1, worker_cache) as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster):
    import distributed

    with distributed.Client(dask_cluster) as client:
        yield client
