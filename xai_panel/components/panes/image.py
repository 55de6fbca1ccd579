"""The image being explained, downscaled for the page, with what is known about it."""

from __future__ import annotations

import html

import numpy as np
import panel as pn
import param
from PIL import Image

from ...render.tiles import STRIP_CSS, tile_cache

__all__ = ["ImagePane", "shrink", "letterbox"]


def shrink(image: np.ndarray, max_side: int = 320) -> np.ndarray:
    """``image`` scaled down so its longer side is at most ``max_side`` (never up)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def letterbox(image: np.ndarray, fill: int = 255) -> np.ndarray:
    """``image`` centred in a square, so the page keeps one size whatever the aspect ratio."""
    h, w = image.shape[:2]
    n = max(h, w)
    canvas = np.full((n, n, 3), fill, np.uint8)
    top, left = (n - h) // 2, (n - w) // 2
    canvas[top : top + h, left : left + w] = image
    return canvas


class ImagePane(pn.viewable.Viewer):
    """Shows ``image`` (any size; sent to the browser at most ``max_side`` pixels wide)."""

    image = param.Array(default=None, allow_None=True, allow_refs=True, doc="HxWx3 uint8 image.")
    title = param.String(default="", allow_refs=True, doc="Caption under the image.")
    max_side = param.Integer(default=300, bounds=(64, 1024), constant=True, doc="Largest side drawn (px).")

    def picture(self, image=None) -> np.ndarray | None:
        """The pixels sent to the page: the image shrunk and letterboxed into a square (None: no image)."""
        image = self.image if image is None else image
        if image is None:
            return None
        return letterbox(shrink(np.asarray(image, np.uint8), self.max_side))

    def html(self, image=None, title=None) -> str:
        image = self.image if image is None else image
        title = self.title if title is None else title
        side = self.max_side
        if image is None:
            picture = f'<div class="xp-empty" style="width: {side}px; height: {side}px"></div>'
        else:
            url = tile_cache().get((image,), ("image", side), lambda: self.picture(image))
            picture = f'<img src="{url}" alt="{html.escape(title)}" width="{side}" height="{side}">'
        return (f'<figure class="xp-tile" style="--xp-side: {side}px">{picture}'
                f'<figcaption>{html.escape(title) or "&nbsp;"}</figcaption></figure>')

    def __panel__(self):
        return pn.pane.HTML(pn.bind(lambda image, title: self.html(image, title), self.param.image, self.param.title),
                            stylesheets=[STRIP_CSS], css_classes=["xp-image"])
