"""Finished explanations kept per process, so revisiting an image is instant.

The dashboards only see the small ``ExplanationCache`` interface (``get``/``put``), so the
SQLite store (``xai_panel.store``) can replace or back the in-memory cache without
touching the components. Keys are the explanation service's (``ExplanationService.key``:
the image's content hash and the whole ``ExplainRequest``), never raw arrays.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..engine.results import Explanation

__all__ = ["ExplanationCache", "MemoryCache", "DecodedImages", "decoded_images", "default_cache",
           "set_default_cache"]


@runtime_checkable
class ExplanationCache(Protocol):
    """Where finished explanations are found again by key."""

    def get(self, key: str) -> Explanation | None: ...

    def put(self, key: str, explanation: Explanation) -> None: ...


class MemoryCache:
    """A thread-safe LRU of finished explanations (one per process by default)."""

    def __init__(self, max_items: int = 128):
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = max_items
        self._items: OrderedDict[str, Explanation] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> Explanation | None:
        with self._lock:
            explanation = self._items.get(key)
            if explanation is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return explanation

    def put(self, key: str, explanation: Explanation) -> None:
        if not isinstance(explanation, Explanation):
            raise TypeError(f"expected an Explanation, got {type(explanation).__name__}")
        with self._lock:
            self._items[key] = explanation
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_default: ExplanationCache = MemoryCache()


def default_cache() -> ExplanationCache:
    """The process-wide cache every session shares unless given its own."""
    return _default


def set_default_cache(cache: ExplanationCache) -> None:
    """Replace the process-wide cache (e.g. with a store-backed one)."""
    global _default
    if not isinstance(cache, ExplanationCache):
        raise TypeError("a cache needs get(key) and put(key, explanation)")
    _default = cache


class DecodedImages:
    """Recently decoded image files and their content digests, by path and file version.

    A revisit in the gallery then neither decodes nor hashes the file again, and every
    session gets the *same* read-only array, so tiles drawn from it (the image pane's) are
    found in the tile cache. An entry is keyed by the file's resolved path, size and
    modification time: a file replaced on disk is decoded again. Thread-safe; least
    recently used first out past ``max_bytes`` of pixels.
    """

    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple, tuple[np.ndarray, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: str | os.PathLike, decode: Callable[[], np.ndarray],
            digest: Callable[[np.ndarray], str]) -> tuple[np.ndarray, str]:
        """``(pixels, digest)`` of the file at ``path``: remembered, or ``decode()``d now."""
        resolved = Path(path).resolve()
        stat = resolved.stat()
        key = (str(resolved), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        image = np.asarray(decode())
        image.flags.writeable = False  # shared by every session that shows it
        entry = (image, digest(image))
        if image.nbytes <= self.max_bytes:
            with self._lock:
                if key not in self._items:
                    self._bytes += image.nbytes
                self._items[key] = entry
                while self._bytes > self.max_bytes:
                    old, _ = self._items.popitem(last=False)[1]
                    self._bytes -= old.nbytes
        return entry

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_decoded = DecodedImages()


def decoded_images() -> DecodedImages:
    """The process-wide ``DecodedImages`` the sessions share."""
    return _decoded
