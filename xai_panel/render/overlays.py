"""Pixels for the panes: overlays of explanations on the image (NumPy only, no Panel).

Kept apart from the components so notebooks, reports and tests can draw the same
pictures without a server, and so the panes stay thin.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..engine.results import ScoreResult, paint

__all__ = [
    "POSITIVE", "NEGATIVE", "ANCHOR",
    "boundaries", "dim", "grayscale", "lime_overlay", "anchor_overlay", "score_map", "score_overlay", "symmetric_limit",
]

POSITIVE = (34, 197, 94)  # green: supports the class
NEGATIVE = (239, 68, 68)  # red: speaks against it
ANCHOR = (250, 204, 21)  # amber: the anchor's outline


def boundaries(segments: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: pixels on a superpixel border (only borders of ``keep`` ids, if given)."""
    s = np.asarray(segments)
    edge = np.zeros(s.shape, bool)
    edge[:-1, :] |= s[:-1, :] != s[1:, :]
    edge[1:, :] |= s[1:, :] != s[:-1, :]
    edge[:, :-1] |= s[:, :-1] != s[:, 1:]
    edge[:, 1:] |= s[:, 1:] != s[:, :-1]
    if keep is not None:
        chosen = np.zeros(int(s.max()) + 1, bool)
        chosen[np.asarray(list(keep), dtype=np.int64)] = True
        edge &= chosen[s]
    return edge


def grayscale(image: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """The image in grey (as RGB), optionally lifted towards white so colour on top reads well."""
    grey = np.asarray(image, np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    grey = grey * (1 - lift) + 255 * lift
    return np.repeat(grey[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)


def dim(image: np.ndarray, amount: float = 0.65) -> np.ndarray:
    """Greyed and darkened: what the eye should skip over."""
    grey = grayscale(image).astype(np.float32)
    return (grey * (1 - amount) + 40 * amount).astype(np.uint8)


def _tint(image: np.ndarray, mask: np.ndarray, color: Sequence[int], strength: float) -> None:
    image[mask] = (image[mask] * (1 - strength) + np.asarray(color, np.float32) * strength).astype(np.uint8)


def lime_overlay(image: np.ndarray, segments: np.ndarray, result, num_features: int = 5,
                 show_negative: bool = False, show_boundaries: bool = True) -> np.ndarray:
    """The ``num_features`` strongest superpixels for the class on a dimmed image.

    Positive superpixels keep their colours (lightly tinted green); with ``show_negative``
    the strongest opposing ones are tinted red. ``num_features`` counts superpixels of
    each sign, so it is only a filter on the stored weights: nothing is recomputed.
    """
    out = dim(image)
    positive = result.top_segments(num_features, positive_only=True)
    chosen = [positive]
    pos_mask = np.isin(segments, positive)
    out[pos_mask] = image[pos_mask]
    _tint(out, pos_mask, POSITIVE, 0.18)
    if show_negative:
        order = np.argsort(result.weights, kind="stable")[:num_features]
        negative = order[result.weights[order] < 0]
        neg_mask = np.isin(segments, negative)
        out[neg_mask] = image[neg_mask]
        _tint(out, neg_mask, NEGATIVE, 0.45)
        chosen.append(negative)
    if show_boundaries:
        out[boundaries(segments)] = (out[boundaries(segments)] * 0.6 + 255 * 0.4).astype(np.uint8)
        out[boundaries(segments, positive)] = POSITIVE
        if show_negative:
            out[boundaries(segments, chosen[1])] = NEGATIVE
    return out


def anchor_overlay(image: np.ndarray, segments: np.ndarray, anchor) -> np.ndarray:
    """The anchor's superpixels in colour, outlined; everything else dimmed."""
    ids = list(getattr(anchor, "segments", anchor))  # an anchor result, or superpixel ids
    out = dim(image)
    if ids:
        keep = np.isin(segments, ids)
        out[keep] = image[keep]
        out[boundaries(segments, ids)] = ANCHOR
    return out


def score_map(segments: np.ndarray, result: ScoreResult) -> np.ndarray:
    """(H, W) float scores of a per-superpixel result: its pixel heatmap when it has one, else
    its ``values`` painted on the superpixels."""
    if getattr(result, "heatmap", None) is not None:
        return np.asarray(result.heatmap, np.float64)
    return paint(segments, np.asarray(result.values, np.float64))


def symmetric_limit(maps: Iterable[np.ndarray]) -> float:
    """One colour limit for all classes: the largest |value| over every map (never 0)."""
    limit = max((float(np.max(np.abs(m))) for m in maps if np.size(m)), default=0.0)
    return limit if limit > 0 else 1e-6


def score_overlay(image: np.ndarray, values: np.ndarray, limit: float, cmap: str = "RdBu_r",
                  alpha: float = 0.7) -> np.ndarray:
    """``values`` (HxW) coloured on a diverging map from -limit to +limit, over the image in grey."""
    from matplotlib import colormaps  # on first use: matplotlib is slow to import

    grey = grayscale(image, lift=0.35).astype(np.float32)
    scaled = np.clip(np.asarray(values, np.float32) / (2 * limit) + 0.5, 0.0, 1.0)
    colour = colormaps[cmap](scaled, bytes=True)[..., :3].astype(np.float32)
    return (grey * (1 - alpha) + colour * alpha).round().astype(np.uint8)
