"""Each method's picture of one class, as a PNG, without a server (reports, downloads, notebooks).

The picture follows the method's result type, as the panes do (``pane_class``): LIME's strongest
superpixels, the anchor, or any per-superpixel score (``ScoreResult``: SHAP, occlusion, the
gradient maps) on one diverging colour scale shared by the method's classes. These are the
panes' own drawings at their default display settings; a pane with other settings draws its
own (``MethodPane.picture``).
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Iterable

import numpy as np
from PIL import Image

from ..engine.results import Explanation, ScoreResult
from .overlays import anchor_overlay, lime_overlay, score_map, score_overlay, symmetric_limit

__all__ = ["drawable", "figure", "on_scale", "figure_files", "method_limit", "png", "safe_name", "zip_files"]


def _lime_type():
    from ..methods.lime import LimeResult

    return LimeResult


def _anchor_type():
    from ..methods.anchors import AnchorResult

    return AnchorResult


def drawable(explanation: Explanation, method: str) -> bool:
    """Whether ``method``'s results in ``explanation`` have a picture here."""
    results = explanation.results.get(method) or {}
    return bool(results) and all(isinstance(r, (_lime_type(), _anchor_type(), ScoreResult)) for r in results.values())


def on_scale(explanation: Explanation, method: str) -> bool:
    """Whether ``method``'s pictures are scores on a colour scale (not LIME's or an anchor's superpixels)."""
    results = (explanation.results.get(method) or {}).values()
    return bool(results) and all(isinstance(r, ScoreResult) and not isinstance(r, _lime_type()) for r in results)


def method_limit(explanation: Explanation, method: str) -> float:
    """The colour scale's half-width of a score method: the largest |score| over its classes."""
    labels = explanation.segmentation.labels
    return symmetric_limit(score_map(labels, r) for r in (explanation.results.get(method) or {}).values()
                           if isinstance(r, ScoreResult))


def figure(explanation: Explanation, method: str, label: int, limit: float | None = None) -> np.ndarray:
    """``method``'s HxWx3 uint8 picture for class ``label`` (``limit``: the score scale, default
    :func:`method_limit`). A KeyError names a class without results; a TypeError a result type
    this module cannot draw."""
    results = explanation.results.get(method) or {}
    if label not in results:
        have = ", ".join(str(k) for k in sorted(results)) or "none"
        raise KeyError(f"{method} has no result for class {label} (classes with results: {have})")
    result, image, segments = results[label], explanation.image, explanation.segmentation.labels
    if isinstance(result, _lime_type()):
        return lime_overlay(image, segments, result)
    if isinstance(result, _anchor_type()):
        return anchor_overlay(image, segments, result)
    if isinstance(result, ScoreResult):
        limit = method_limit(explanation, method) if limit is None else limit
        return score_overlay(image, score_map(segments, result), limit)
    raise TypeError(f"no picture for a {type(result).__name__} ({method})")


def png(image: np.ndarray) -> bytes:
    """An HxWx3 uint8 image as PNG bytes (lossless)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def safe_name(text: str, fallback: str = "image") -> str:
    """``text`` as a file name part: letters, digits, ``.``, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or fallback


def figure_files(explanation: Explanation, methods: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The image and every drawable method's picture per class, by file name
    (``image.png``, ``<method>/<rank>_<class>.png``), in display and class order."""
    files = {"image.png": explanation.image}
    for method in explanation.methods if methods is None else methods:
        if not drawable(explanation, method):
            continue
        limit = method_limit(explanation, method)
        results = explanation.results[method]
        for rank, score in enumerate(explanation.top, 1):
            if score.index in results:
                name = f"{method}/{rank}_{safe_name(score.name, str(score.index))}.png"
                files[name] = figure(explanation, method, score.index, limit)
    return files


def zip_files(files: dict[str, np.ndarray | bytes | str], folder: str = "") -> bytes:
    """A zip of ``files`` (name -> image, bytes or text), under ``folder/`` when given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            data = png(content) if isinstance(content, np.ndarray) else content
            z.writestr(f"{folder}/{name}" if folder else name, data)
    return buffer.getvalue()
