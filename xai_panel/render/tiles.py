"""Pictures for the page: small encoded images in one HTML model, cached by what they show.

The panes show still pictures (an overlay per class), so they are sent as JPEG tiles inside
one HTML model per pane rather than as Bokeh image glyphs: a class's tile is about 20 KB
instead of 200 KB of RGBA, an update is one string property instead of a plot refresh,
and a tile is encoded once (``TileCache``, keyed by the result object drawn and the display
settings). Revisiting an image, or moving the frame to another class, encodes nothing.
"""

from __future__ import annotations

import base64
import html
import io
import threading
from collections import OrderedDict
from typing import Callable, Hashable, Sequence

import numpy as np
from PIL import Image

__all__ = ["TileCache", "Tile", "encode", "strip_html", "colorbar_html", "tile_cache", "STRIP_CSS"]

STRIP_CSS = """
.xp-strip { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: flex-start; }
.xp-tile { margin: 0; width: var(--xp-side); }
.xp-tile img, .xp-tile .xp-empty {
  display: block; width: var(--xp-side); height: var(--xp-side); box-sizing: border-box;
  border: 3px solid transparent; border-radius: 6px; object-fit: contain; background: #f4f4f5;
}
.xp-tile.xp-chosen img { border-color: #2563eb; }
.xp-tile figcaption {
  font: 12px/1.35 system-ui, sans-serif; color: #111827; margin-top: 3px;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
.xp-tile.xp-chosen figcaption { font-weight: 600; color: #1d4ed8; }
.xp-strip-title { font: 12px system-ui, sans-serif; color: #374151; margin: 4px 0; }
.xp-colorbar { display: flex; align-items: center; gap: 8px; font: 11px system-ui, sans-serif; color: #4b5563;
               margin-top: 8px; font-variant-numeric: tabular-nums; }
.xp-colorbar .xp-ramp { height: 10px; width: 260px; border-radius: 3px; border: 1px solid #e5e7eb; }
"""


def encode(image: np.ndarray, quality: int = 90) -> str:
    """An HxWx3 uint8 image as a JPEG data URL (4:4:4, so thin coloured borders stay crisp)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, "JPEG", quality=quality, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class TileCache:
    """Encoded tiles by what they show, least recently used dropped first; thread-safe.

    A key holds the objects a tile is drawn from (``refs``) by identity: the entry is only
    reused while those very objects are alive and the same (an ``id`` alone could be reused
    by a new object after the old one is gone, so the entry keeps them alive itself).
    """

    def __init__(self, size: int = 1024):
        self.size = int(size)
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._drawing: dict = {}  # key -> Event set when the thread drawing that tile is done
        self.hits = self.misses = 0

    def get(self, refs: Sequence[object], extra: Hashable, make: Callable[[], np.ndarray]) -> str:
        """The tile's data URL: cached, or drawn by ``make()`` now. A tile another thread is
        drawing is waited for, not drawn twice (a page's prefetch and the click it prepares
        may ask for the same tiles at the same moment)."""
        key = (tuple(id(r) for r in refs), extra)
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and all(a is b for a, b in zip(entry[0], refs)):
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return entry[1]
                drawing = self._drawing.get(key)
                if drawing is None:
                    drawing = self._drawing[key] = threading.Event()
                    break
            drawing.wait()  # then look again: drawn (a hit), or failed there (drawn here)
        try:
            url = encode(make())  # outside the lock: other sessions' tiles need not wait for this one
            with self._lock:
                self.misses += 1
                self._entries[key] = (tuple(refs), url)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        finally:
            with self._lock:
                del self._drawing[key]
            drawing.set()
        return url

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_tile_cache = TileCache()


def tile_cache() -> TileCache:
    """The process-wide tile cache every pane shares (sessions share explanation objects too)."""
    return _tile_cache


class Tile(tuple):
    """(caption, data URL or None for an empty slot, chosen)."""

    def __new__(cls, caption: str, url: str | None, chosen: bool = False):
        return super().__new__(cls, (caption, url, chosen))


def strip_html(tiles: Sequence[Tile], side: int, title: str = "", css_class: str = "") -> str:
    """Tiles side by side, each with its caption; the chosen one framed."""
    figures = []
    for caption, url, chosen in tiles:
        text = html.escape(caption)
        picture = (f'<img src="{url}" alt="{text}" width="{side}" height="{side}">' if url
                   else '<div class="xp-empty"></div>')
        figures.append(f'<figure class="xp-tile{" xp-chosen" if chosen else ""}" title="{text}">'
                       f'{picture}<figcaption>{text or "&nbsp;"}</figcaption></figure>')
    head = f'<div class="xp-strip-title">{html.escape(title)}</div>' if title else ""
    return (f'{head}<div class="xp-strip {css_class}" style="--xp-side: {int(side)}px">' + "".join(figures)
            + "</div>")


def colorbar_html(cmap, limit: float, label: str, steps: int = 11, low: float | None = None) -> str:
    """A horizontal colour bar from ``low`` (default -limit) to +limit (``cmap`` a Matplotlib colormap)."""
    low = -limit if low is None else low
    stops = ", ".join("rgb({}, {}, {})".format(*(int(round(255 * c)) for c in cmap(i / (steps - 1))[:3]))
                      for i in range(steps))
    return (f'<div class="xp-colorbar"><span>{low:+.3g}</span>'
            f'<div class="xp-ramp" style="background: linear-gradient(to right, {stops})"></div>'
            f'<span>{limit:+.3g}</span><span>{html.escape(label)}</span></div>')
