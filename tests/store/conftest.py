"""Real model, real explanations, real SQLite files in tmp_path: nothing here is mocked."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from xai_panel.data import image_hash, open_dataset

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "imagenet-sample"
# Small budgets: the store's behaviour does not depend on how good an explanation is.
FAST = {"segmentation": "grid", "settings": {"lime": {"num_samples": 60}}}


@pytest.fixture(scope="session")
def classifier():
    from xai_panel.models import load_classifier

    return load_classifier()


@pytest.fixture(scope="session")
def photos():
    """(record, decoded image, image hash) for three real photos (the demo gallery ships with
    the dependencies, so this never needs the shared data)."""
    records = list(open_dataset(None))[:3]
    out = []
    for r in records:
        image = r.load()
        out.append((r, image, image_hash(image)))
    return out


@pytest.fixture(scope="session")
def explained(classifier, photos):
    """(record, image hash, request, Explanation) with LIME for each photo."""
    from xai_panel.engine.pipeline import explain
    from xai_panel.store import ExplainRequest

    out = []
    for record, image, h in photos:
        request = ExplainRequest.create(classifier.model_id, ("lime",), **FAST)
        out.append((record, h, request, explain(image, classifier, **request.explain_kwargs())))
    return out


def copy_images(folder: Path, n: int) -> list[Path]:
    """Copy ``n`` real photos into ``folder``: ImageNet sample files when the shared data is
    there (wnid names give true labels), else the demo photos."""
    folder.mkdir(parents=True, exist_ok=True)
    if SHARED.is_dir():
        sources = sorted(SHARED.glob("*.JPEG"))[:n]
    else:
        sources = [r.path for r in open_dataset(None)][:n]
    return [Path(shutil.copy(src, folder / src.name)) for src in sources]


def same_arrays(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


def errors_in_threads(work, threads: int) -> list[Exception]:
    """Run ``work()`` in ``threads`` threads at once; the exceptions they raised."""
    errors: list[Exception] = []

    def run():
        try:
            work()
        except Exception as exc:  # reported to the caller
            errors.append(exc)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return errors
