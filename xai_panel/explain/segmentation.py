"""Superpixels, computed once per image and settings and shared by every method.

Labels are always contiguous from 0 (alibi #748: slic's labels starting at 1 left a
superpixel that was never perturbed).
"""

from __future__ import annotations

import time

import numpy as np

from .results import Segmentation

__all__ = ["segment", "ALGORITHMS", "DEFAULTS"]

DEFAULTS: dict[str, dict[str, object]] = {
    # lime's own defaults for images
    "quickshift": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2},
    "slic": {"n_segments": 50, "compactness": 10.0, "sigma": 1.0},
    "felzenszwalb": {"scale": 100.0, "sigma": 0.5, "min_size": 50},
    "grid": {"rows": 6, "cols": 6},
}
ALGORITHMS = tuple(DEFAULTS)


def _grid(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    h, w = image.shape[:2]
    r = np.minimum(np.arange(h) * rows // h, rows - 1)
    c = np.minimum(np.arange(w) * cols // w, cols - 1)
    return (r[:, None] * cols + c[None, :]).astype(np.int32)


def segment(image: np.ndarray, algorithm: str = "quickshift", seed: int = 0, **params) -> Segmentation:
    """Segment an HxWx3 uint8 image into superpixels with ``algorithm`` and ``params``."""
    from skimage import segmentation as sk

    if algorithm not in DEFAULTS:
        raise ValueError(f"unknown segmentation {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    unknown = set(params) - set(DEFAULTS[algorithm])
    if unknown:
        raise ValueError(f"{algorithm} takes {sorted(DEFAULTS[algorithm])}, not {sorted(unknown)}")
    settings = {**DEFAULTS[algorithm], **params}
    t0 = time.perf_counter()
    if algorithm == "quickshift":
        labels = sk.quickshift(image, rng=seed, **settings)
    elif algorithm == "slic":
        labels = sk.slic(image, start_label=0, channel_axis=-1, **settings)
    elif algorithm == "felzenszwalb":
        labels = sk.felzenszwalb(image, channel_axis=-1, **settings)
    else:
        if int(settings["rows"]) < 1 or int(settings["cols"]) < 1:
            raise ValueError("grid rows and cols must be >= 1")
        labels = _grid(image, int(settings["rows"]), int(settings["cols"]))
    labels, _, _ = sk.relabel_sequential(np.asarray(labels) + 1)
    return Segmentation(
        labels=(labels - 1).astype(np.int32),
        algorithm=algorithm,
        params=settings,
        seconds=time.perf_counter() - t0,
    )
