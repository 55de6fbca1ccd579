"""Fixtures for the component tests: small real datasets and quick explanation budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

QUICK = {"lime": {"num_samples": 80}, "shap": {"estimator": "pool"}}
"""A budget that keeps each explanation under a few seconds (LIME pool of 80)."""


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos shipped with scikit-image."""
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket()}


@pytest.fixture
def folder(tmp_path, photos) -> Path:
    """Class folders (cats: 2, coffee: 1), an unlabelled photo and an unreadable file."""
    root = tmp_path / "pictures"
    for rel, name in [("cats/a.png", "chelsea"), ("cats/b.jpg", "chelsea"), ("coffee/c.png", "coffee"),
                      ("loose.png", "rocket")]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photos[name]).save(path)
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="session")
def lime_shap(classifier, photos):
    """One real explanation (LIME + SHAP) of the cat photo, computed once."""
    from xai_panel.engine.pipeline import explain

    return explain(photos["chelsea"], classifier, methods=("lime", "shap"), settings=QUICK, segmentation="slic")


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (for work published from background threads)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
