"""A precompute killed with SIGKILL resumes without loss or duplicates; readers never see
a half-written image while it writes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
import traceback

from xai_panel.data import image_hash, load_image
from xai_panel.store import ExplainRequest, ExplanationStore

from .batch_helpers import FAST, FAST_ARGS, PYTHON, copy_images

TIMEOUT = 300


def _start(folder, store, *extra):
    return subprocess.Popen([PYTHON, "-m", "xai_panel.batch", str(folder), "--store", str(store), *FAST_ARGS, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(path) -> dict[str, tuple[str, float]]:
    """key -> (image hash, created_at), read with a plain sqlite3 connection."""
    if not os.path.exists(path):
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return {k: (h, t) for k, h, t in conn.execute("SELECT key, image_hash, created_at FROM results")}
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    finally:
        conn.close()


def test_sigkill_mid_run_then_resume_does_every_image_exactly_once(tmp_path):
    images = copy_images(tmp_path / "images", 6)
    store = tmp_path / "s.sqlite"
    proc = _start(tmp_path / "images", store, "--segmentation", "quickshift")  # slower: a wider window to kill in
    deadline = time.monotonic() + TIMEOUT
    before: dict = {}
    while time.monotonic() < deadline and proc.poll() is None:
        before = _rows(store)
        if before:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"precompute ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.communicate()
    before = _rows(store)  # whatever committed up to the kill
    assert 1 <= len(before) < 6

    rerun = _start(tmp_path / "images", store, "--segmentation", "quickshift")
    out, err = rerun.communicate(timeout=TIMEOUT)
    assert rerun.returncode == 0, err
    assert f"{6 - len(before)} computed, {len(before)} already stored" in out

    after = _rows(store)
    assert len(after) == 6
    # Nothing finished was lost or redone: rows from before the kill are untouched.
    assert all(after[k] == v for k, v in before.items())
    with ExplanationStore(store) as s:
        assert s._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        hashes = sorted(image_hash(load_image(p)) for p in images)
        assert sorted(h for h, _ in after.values()) == hashes  # one row per image and method
        for key in after:
            assert len(s.load(key).lime) == 5  # every row decodes, whole
        assert len(s.summaries()) == 6


def test_readers_see_whole_images_while_precompute_writes(tmp_path):
    images = copy_images(tmp_path / "images", 4)
    store_path = tmp_path / "s.sqlite"
    ExplanationStore(store_path).close()
    proc = _start(tmp_path / "images", store_path)
    hashes = [image_hash(load_image(p)) for p in images]
    errors, seen, reads = [], set(), [0]
    stop = threading.Event()

    def read():
        store = ExplanationStore(store_path, timeout=5)
        try:
            while not stop.is_set():
                for summary in store.summaries():
                    request = ExplainRequest.create(summary.model_id, **FAST)
                    got = store.get(summary.image_hash, request)
                    # A summary is written with its rows: the rows must be there, whole.
                    assert got is not None and got.methods == ("lime",), summary
                    assert set(got.lime) == {c[0] for c in summary.top}
                    seen.add(summary.image_hash)
                known = len(seen)  # before counting: the other reader may add to it meanwhile
                assert store.count() >= known
                reads[0] += 1
        except Exception:  # reported by the test thread
            errors.append(traceback.format_exc())
        finally:
            store.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        time.sleep(0.2)
        stop.set()
        for r in readers:
            r.join(timeout=30)
    assert proc.returncode == 0, err
    assert not errors, errors[0]
    assert reads[0] > 10 and seen == set(hashes)
