"""Faults while working: a model that raises mid-batch, a model that fails on one image of a
precompute run, a store that is corrupt, locked or full at the moment a run writes to it.

tests/store already pins the store's own behaviour (a non-SQLite file, another app's
database, a newer schema, a lock timeout and a full disk on ``put``). What is added here
is what a user sees around it: the explanation engine after a failed batch, precompute
runs that meet these faults and resume, and the ``xai-panel store`` command's message.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_panel.batch import precompute
from xai_panel.engine.perturbation import PerturbationEngine, uniform_coalitions
from xai_panel.engine.pipeline import explain
from xai_panel.engine.segmentation import segment
from xai_panel.models import Classifier
from xai_panel.store import ExplanationStore, StoreError

REPO = Path(__file__).resolve().parents[2]
XAI_PANEL = REPO / ".venv" / "bin" / "xai-panel"
if not XAI_PANEL.exists():
    XAI_PANEL = Path(sys.executable).with_name("xai-panel")
FAST = dict(methods=("lime",), top_k=1, segmentation="grid", settings={"lime": {"num_samples": 50}})


class ModelCrashed(RuntimeError):
    pass


def flaky(classifier: Classifier, fail_on: int) -> Classifier:
    """The real model behind a runner whose ``fail_on``-th call raises (once)."""
    calls = {"n": 0}

    def runner(x):
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise ModelCrashed(f"the accelerator fell over on call {fail_on}")
        return classifier.forward_normalised(x)

    return Classifier(runner, classifier.class_names, model_id="flaky", preprocessing=classifier.preprocessing,
                      batch_size=16, outputs="probabilities")


@pytest.fixture(scope="module")
def cat():
    from skimage import data

    return data.chelsea()


def test_model_raising_mid_explanation_surfaces_and_a_retry_gives_the_clean_result(classifier, cat):
    reference = explain(cat, classifier, **FAST)
    model = flaky(classifier, fail_on=3)  # call 1: the full image; 2-4: the pool of 50 in batches of 16
    with pytest.raises(ModelCrashed, match="fell over on call 3"):
        explain(cat, model, **FAST)
    retried = explain(cat, model, **FAST)  # same classifier object, now healthy
    label = reference.top[0].index
    assert retried.top[0].index == label
    np.testing.assert_allclose(retried.lime[label].weights, reference.lime[label].weights, rtol=1e-5, atol=1e-6)


def test_engine_memo_keeps_only_finished_rows_after_a_failed_batch(classifier, cat):
    view = classifier.prepare(cat)
    segments = segment(view, "grid", seed=0)
    coalitions = uniform_coalitions(40, segments.n_segments, 0)

    engine = PerturbationEngine(view, segments, flaky(classifier, fail_on=3), "mean", batch_size=8)
    first = engine.evaluate(coalitions[:8])  # call 1
    assert engine.evaluated == 8
    with pytest.raises(ModelCrashed):
        engine.evaluate(coalitions[8:])  # calls 2 and 3 of 4: the request fails as a whole
    assert engine.evaluated == 8  # nothing half-done is remembered
    np.testing.assert_array_equal(engine.evaluate(coalitions[:8]), first)  # old rows intact, served from memo

    retried = engine.evaluate(coalitions)
    clean = PerturbationEngine(view, segments, classifier, "mean", batch_size=8).evaluate(coalitions)
    np.testing.assert_allclose(retried, clean, rtol=1e-5, atol=1e-7)
    assert engine.evaluated == len({c.tobytes() for c in coalitions})


# --- precompute with a model that fails on one image -------------------------------------------


class _RefusesBlankImages(torch.nn.Module):
    """1000 classes from colour statistics; raises on a flat grey image (not on the all-black
    image ``load_classifier`` probes the model with)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(12, 1000)

    def forward(self, x):
        if bool(x.std(dim=(2, 3)).max() < 1e-4) and bool(x.mean() > -1.0):
            raise RuntimeError("this model cannot classify a blank image")
        stats = [x.mean(dim=(2, 3)), x.amax(dim=(2, 3)), x.amin(dim=(2, 3)), x.std(dim=(2, 3))]
        return self.fc(torch.cat(stats, 1))


@pytest.fixture
def picky_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_PANEL_CACHE", str(tmp_path / "cache"))  # its (failed) ONNX export stays here
    path = tmp_path / "picky.ts"
    torch.jit.script(_RefusesBlankImages()).save(str(path))
    return str(path)


@pytest.fixture
def folder(tmp_path, cat):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(cat).save(images / "cat.png")
    Image.fromarray(cat[:, ::-1]).save(images / "cat_mirrored.png")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(images / "blank.png")
    return images


@pytest.mark.filterwarnings("ignore:ONNX Runtime backend unavailable")
def test_precompute_stores_the_others_reports_the_failure_and_resumes(tmp_path, folder, picky_model):
    store = ExplanationStore(tmp_path / "s.sqlite")
    report = precompute(folder, store=store, model=picky_model, progress=False, **FAST)
    assert (report.done, report.skipped) == (2, 0) and store.count() == 2
    assert [(e.image_id, e.status) for e in report.failed] == [("blank.png", "failed")]
    assert "RuntimeError" in report.failed[0].error and "cannot classify a blank image" in report.failed[0].error
    text = report.format()
    assert "2 computed, 0 already stored, 1 failed" in text and "blank.png: " in text

    again = precompute(folder, store=store, model=picky_model, progress=False, **FAST)
    assert (again.done, again.skipped, len(again.failed)) == (0, 2, 1)  # nothing recomputed

    # The user replaces the file; the next run computes only it.
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "blank.png")
    fixed = precompute(folder, store=store, model=picky_model, progress=False, **FAST)
    assert (fixed.done, fixed.skipped, fixed.ok) == (1, 2, True) and store.count() == 3


# --- the store fails under a run ----------------------------------------------------------------


def test_precompute_into_a_locked_store_stops_with_a_clear_error_then_resumes(tmp_path, folder, classifier):
    path = tmp_path / "s.sqlite"
    ExplanationStore(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO meta VALUES ('held', 'yes')")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            precompute(folder, store=ExplanationStore(path, timeout=0.3), progress=False, **FAST)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    report = precompute(folder, store=ExplanationStore(path), progress=False, **FAST)
    assert report.done + report.skipped == 3 and report.ok


def test_precompute_into_a_full_store_stops_and_keeps_whole_images(tmp_path, folder, classifier):
    path = tmp_path / "s.sqlite"
    first = precompute(folder, store=ExplanationStore(path), progress=False, limit=1, **FAST)
    assert first.done == 1
    capped = ExplanationStore(path, max_bytes=path.stat().st_size)
    with pytest.raises(StoreError, match="no space left"):
        precompute(folder, store=capped, progress=False, **FAST)
    capped.close()
    with ExplanationStore(path) as store:
        assert store.count() == 1
        assert store._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    resumed = precompute(folder, store=ExplanationStore(path), progress=False, **FAST)
    assert (resumed.done, resumed.skipped) == (2, 1)


def _store_cli(*args):
    return subprocess.run([str(XAI_PANEL), "store", *map(str, args)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0 a photo, not a database" * 40), r"is not an xai-panel store"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84 + os.urandom(3996)), r"is not an xai-panel store"),
    (lambda p: None, r"no store at"),
    (lambda p: p.mkdir(), r"is a folder"),
], ids=["not-sqlite", "corrupt-sqlite-header", "missing", "folder"])
def test_store_info_on_an_unusable_file_exits_2_with_one_line(tmp_path, make, message):
    _check_store_cli(tmp_path, make, message, ["info"])


@pytest.mark.parametrize("command", [["export", "abcdef"], ["prune", "--all"]])
def test_store_export_and_prune_on_a_corrupt_file_exit_2_with_one_line(tmp_path, command):
    _check_store_cli(tmp_path, lambda p: p.write_bytes(b"garbage" * 600), r"is not an xai-panel store", command)


def _check_store_cli(tmp_path, make, message, command):
    path = tmp_path / "corrupt.sqlite"
    make(path)
    result = _store_cli(*command, "--store", path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"xai-panel store {command[0]}: error: ") and len(result.stderr.splitlines()) == 1
    assert str(path) in result.stderr
    assert re.search(message, result.stderr), result.stderr
