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


@pytest.fixture(scope="session")
def classifier():
    """The embedded EfficientNet-Lite0, loaded once for the whole test session."""
    from xai_panel.models import load_classifier

    return load_classifier()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A real photo that ships with scikit-image (a tabby cat)."""
    from skimage import data

    return data.chelsea()
