"""The image being explained, downscaled for the page, with what is known about it."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param
from PIL import Image

from .method_pane import CANVAS

__all__ = ["ImagePane", "shrink"]


def shrink(image: np.ndarray, max_side: int = 320) -> np.ndarray:
    """``image`` scaled down so its longer side is at most ``max_side`` (never up)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


class ImagePane(pn.viewable.Viewer):
    """Shows ``image`` (any size; sent to the browser at most ``max_side`` pixels wide)."""

    image = param.Array(default=None, allow_None=True, allow_refs=True, doc="HxWx3 uint8 image.")
    title = param.String(default="", allow_refs=True, doc="Caption above the image.")
    max_side = param.Integer(default=300, bounds=(64, 1024), constant=True, doc="Largest side drawn (px).")

    def __init__(self, **params):
        super().__init__(**params)
        self._plot = hv.DynamicMap(pn.bind(self._rgb, self.param.image, self.param.title))

    def _rgb(self, image, title):
        side = self.max_side
        opts = {**CANVAS, "xaxis": None, "yaxis": None, "toolbar": None, "default_tools": [], "fontsize": {"title": 10},
                "frame_width": side, "frame_height": side, "title": title}
        if image is None:
            return hv.RGB(np.full((8, 8, 3), 243, np.uint8), bounds=(0, 0, 1, 1)).opts(**opts)
        small = shrink(np.asarray(image, np.uint8), side)
        h, w = small.shape[:2]
        # Letterbox into a square so the plot keeps one size whatever the aspect ratio.
        n = max(h, w)
        canvas = np.full((n, n, 3), 255, np.uint8)
        top, left = (n - h) // 2, (n - w) // 2
        canvas[top : top + h, left : left + w] = small
        return hv.RGB(canvas, bounds=(0, 0, 1, 1)).opts(**opts)

    def __panel__(self):
        return pn.pane.HoloViews(self._plot, linked_axes=False, css_classes=["xp-image"])
