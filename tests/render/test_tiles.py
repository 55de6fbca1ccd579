"""The process-wide tile cache: a tile is drawn once, also when two threads ask for it at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xai_panel.render.tiles import TileCache


def test_a_tile_being_drawn_is_waited_for_not_drawn_twice():
    cache, image = TileCache(), np.zeros((8, 8), np.float32)
    started, release, calls = threading.Event(), threading.Event(), []

    def slow():
        calls.append("slow")
        started.set()
        assert release.wait(30)
        return np.full((8, 8, 3), 200, np.uint8)

    urls = {}
    first = threading.Thread(target=lambda: urls.setdefault("first", cache.get([image], "k", slow)))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=lambda: urls.setdefault("second", cache.get(
        [image], "k", lambda: calls.append("again") or np.zeros((8, 8, 3), np.uint8))))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waiting for the first thread's tile
    release.set()
    first.join(30), second.join(30)
    assert calls == ["slow"] and urls["first"] == urls["second"] and urls["first"].startswith("data:image/")
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_failed_drawing_lets_the_waiting_thread_draw_it():
    cache, image = TileCache(), np.zeros((8, 8), np.float32)
    started, release = threading.Event(), threading.Event()

    def failing():
        started.set()
        assert release.wait(30)
        raise ValueError("cannot draw this")

    errors, urls = [], []
    first = threading.Thread(target=lambda: _catch(errors, lambda: cache.get([image], "k", failing)))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=lambda: urls.append(cache.get([image], "k", lambda: np.zeros((8, 8, 3), np.uint8))))
    second.start()
    release.set()
    first.join(30), second.join(30)
    assert [str(e) for e in errors] == ["cannot draw this"] and len(urls) == 1 and len(cache) == 1
    with pytest.raises(ValueError, match="cannot draw"):  # and a failure is not cached
        cache.get([image], "other", failing)


def _catch(errors: list, call) -> None:
    try:
        call()
    except ValueError as exc:
        errors.append(exc)
