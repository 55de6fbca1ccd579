"""Shared fixtures: the real embedded model, real photos, and the shared ImageNet sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# One served app (and one Chromium) for the isolation and browser tests: see tests/served.py.
from .served import browser, page, pytest_runtest_makereport, served_app  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SAMPLE_DIR = SHARED_DATA / "imagenet-sample"


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    """The 802-photo ImageNet sample beside the checkout (never committed)."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"shared ImageNet sample not found at {SAMPLE_DIR} (only present beside the dev checkout and in CI)")
    return SAMPLE_DIR


CACHE_ENV = "XAI_PANEL_CACHE"  # ONNX exports, thumbnails, predictions and the default store file


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """An empty cache for the session-, module- and class-scoped fixtures (the shared model,
    a module's CLI run), set before any of them: nothing reads or writes the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("session-cache")
        mp.setenv(CACHE_ENV, str(folder))
        mp.delenv("XAI_PANEL_STORE", raising=False)  # the default store then lives in that cache
        yield folder


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test starts with its own empty cache (tests of the cache set their own on top).

    Every reader of ``$XAI_PANEL_CACHE`` (``onnx_cache_dir``, ``cache_folder``,
    ``default_store_path``) looks it up at each call, so setting it here is enough; a
    subprocess a test starts inherits it.
    """
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("XAI_PANEL_STORE", raising=False)


@pytest.fixture(scope="session")
def classifier(_session_cache):
    """The embedded EfficientNet-Lite0, loaded once for the whole test session.

    Its ONNX export lands in an empty cache, so export and the check against torch run in
    every session (tests/models checks that path on its own, with ``cache=False``).
    """
    from xai_panel.models import load_classifier

    return load_classifier()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A real photo that ships with scikit-image (a tabby cat)."""
    from skimage import data

    return data.chelsea()
