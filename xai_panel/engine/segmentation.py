"""Superpixels, computed once per image and settings and shared by every method.

Labels are always contiguous from 0 (alibi #748: slic's labels starting at 1 left a
superpixel that was never perturbed).
"""

from __future__ import annotations

import time

import numpy as np

from .results import Segmentation

__all__ = ["segment", "merge_regions", "ALGORITHMS", "DEFAULTS"]

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


def merge_regions(image: np.ndarray, labels: np.ndarray, n_regions: int) -> np.ndarray:
    """Group the superpixels ``labels`` of ``image`` into about ``n_regions`` regions.

    Returns the region (contiguous ids from 0) of each superpixel, shape ``(M,)``. A coarse
    slic segmentation with alibi's default settings for images (``n_segments=n_regions``,
    compactness 10, sigma 0.5) is laid over the superpixels and each superpixel joins the
    coarse segment covering most of its pixels, so every region is a union of whole
    superpixels: methods that perturb regions still perturb the shared segmentation.
    With ``n_regions`` or fewer superpixels each superpixel is its own region.
    """
    from skimage import segmentation as sk

    labels = np.asarray(labels)
    m = int(labels.max()) + 1
    if n_regions < 1:
        raise ValueError(f"n_regions must be >= 1, got {n_regions}")
    if m <= n_regions:
        return np.arange(m, dtype=np.int32)
    coarse = sk.slic(image, n_segments=int(n_regions), compactness=10.0, sigma=0.5, start_label=0, channel_axis=-1)
    overlap = np.zeros((m, int(coarse.max()) + 1), np.int64)
    np.add.at(overlap, (labels.ravel(), coarse.ravel()), 1)
    _, region = np.unique(overlap.argmax(axis=1), return_inverse=True)
    return region.astype(np.int32)
