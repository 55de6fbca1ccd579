"""The perturbation engine: superpixel coalitions in, class probabilities out.

Every method draws its model evaluations through one engine per image, so that
coalitions evaluated once are never evaluated again (memoised by their bits), masks are
applied vectorised (one ``np.where`` per batch, no per-sample Python loop), images go
through the model in the classifier's batch size, the next batch is built while the
model runs the current one, and each method's cost is counted.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..models.classifier import Classifier
from ..runtime.cancel import Cancelled
from .results import MethodCost, Segmentation

__all__ = ["PerturbationEngine", "Cancelled", "FILLS", "fill_image", "shared_pool", "uniform_coalitions"]

FILLS = ("mean", "blur", "constant")
Progress = Callable[[str, int, int], None]
"""progress(method, done, total): called after every model batch."""


def _render_pool() -> ThreadPoolExecutor:
    """Threads that build the next model batch while the model runs the current one (they
    start on first use)."""
    return ThreadPoolExecutor(2, thread_name_prefix="xai-panel-render")


_renderers = _render_pool()


def _forget_renderers() -> None:  # a forked child has none of its parent's threads
    global _renderers
    _renderers = _render_pool()


os.register_at_fork(after_in_child=_forget_renderers)


def fill_image(image: np.ndarray, segments: np.ndarray, fill: str = "mean",
               color=(0, 0, 0), blur_sigma: float = 10.0) -> np.ndarray:
    """The image hidden superpixels show through.

    ``"mean"`` is lime's and alibi's choice (each superpixel's mean colour, truncated to
    uint8 exactly as they do), ``"blur"`` a Gaussian blur, ``"constant"`` one colour.
    """
    if fill == "mean":
        n = int(segments.max()) + 1
        counts = np.bincount(segments.ravel(), minlength=n).astype(np.float64)
        means = np.stack(
            [np.bincount(segments.ravel(), weights=image[..., c].ravel().astype(np.float64), minlength=n)
             for c in range(3)], axis=1) / np.maximum(counts, 1)[:, None]
        return means.astype(np.uint8)[segments]
    if fill == "blur":
        import cv2

        return cv2.GaussianBlur(image, (0, 0), sigmaX=blur_sigma, borderType=cv2.BORDER_REFLECT)
    if fill == "constant":
        return np.broadcast_to(np.asarray(color, np.uint8), image.shape).copy()
    raise ValueError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")


def uniform_coalitions(n: int, m: int, seed: int | np.random.RandomState) -> np.ndarray:
    """lime's sampler exactly: ``n`` rows of uniform on/off bits, the first row all on."""
    rs = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
    data = rs.randint(0, 2, n * m).reshape((n, m))
    data[0, :] = 1
    return data.astype(bool)


def shared_pool(engine: "PerturbationEngine", size: int, seed: int,
                first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The shared uniform pool: (coalitions (n, M) bool, probabilities (n, C)).

    lime's sampler seeded by ``seed`` (``uniform_coalitions``), so the pool is exactly the
    samples lime itself would draw. ``first``: only the pool's first rows (a smaller sample
    of the same law; the engine's memo makes them free when the whole pool follows).
    """
    coalitions = uniform_coalitions(size, engine.n_segments, seed)[:first]
    return coalitions, engine.evaluate(coalitions)


@dataclass
class _Tally:
    passes: int = 0
    backward: int = 0
    hits: int = 0
    samples: int = 0
    model_seconds: float = 0.0


class PerturbationEngine:
    """Evaluates superpixel coalitions of one (prepared) image with one classifier."""

    def __init__(
        self,
        image: np.ndarray,
        segmentation: Segmentation,
        classifier: Classifier,
        fill: str = "mean",
        *,
        fill_color=(0, 0, 0),
        batch_size: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ):
        if image.shape[:2] != segmentation.labels.shape:
            raise ValueError(f"image {image.shape[:2]} and segments {segmentation.labels.shape} differ in size")
        self.image = np.ascontiguousarray(image, dtype=np.uint8)
        self.segmentation = segmentation
        self.segments = segmentation.labels
        self.n_segments = segmentation.n_segments
        self.classifier = classifier
        self.fill = fill
        self.background = fill_image(self.image, self.segments, fill, fill_color)
        normalise = classifier.preprocessing.normalise
        self._image_nchw = normalise(self.image[None])  # (1, 3, H, W) float32
        self._background_nchw = normalise(self.background[None])
        self.batch_size = batch_size or classifier.batch_size
        self.progress = progress
        self.cancel = cancel
        self._index: dict[bytes, int] = {}
        self._probs = np.empty((0, classifier.num_classes), np.float32)
        self._tally = _Tally()
        self._method = "engine"

    # -- images -------------------------------------------------------------------------
    def render(self, coalitions: np.ndarray) -> np.ndarray:
        """(n, M) bool -> (n, H, W, 3) uint8: kept superpixels from the image, others from the fill."""
        keep = np.asarray(coalitions, bool)[:, self.segments]  # (n, H, W)
        return np.where(keep[..., None], self.image[None], self.background[None])

    def render_normalised(self, coalitions: np.ndarray) -> np.ndarray:
        """(n, M) bool -> (n, 3, H, W) float32 model input, built in one pass."""
        keep = np.asarray(coalitions, bool)[:, None, self.segments]  # (n, 1, H, W)
        return np.where(keep, self._image_nchw, self._background_nchw)

    # -- evaluation ---------------------------------------------------------------------
    @property
    def evaluated(self) -> int:
        """Distinct coalitions evaluated so far."""
        return len(self._index)

    def check_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("explanation cancelled")

    def evaluate(self, coalitions: np.ndarray) -> np.ndarray:
        """Probabilities (n, C) for (n, M) coalitions; each distinct coalition runs once."""
        coalitions = np.asarray(coalitions, bool).reshape(-1, self.n_segments)
        keys = [k.tobytes() for k in np.packbits(coalitions, axis=1)]
        rows = np.empty(len(keys), np.int64)
        base, pending = len(self._index), {}  # key -> (row id, first position in request)
        for i, key in enumerate(keys):
            hit = self._index.get(key)
            if hit is None:
                hit = pending.setdefault(key, (base + len(pending), i))[0]
            rows[i] = hit
        self._tally.samples += len(keys)
        self._tally.hits += len(keys) - len(pending)
        if pending:
            self._run(coalitions[[first for _, first in pending.values()]])
            self._index.update({key: row for key, (row, _) in pending.items()})
        return self._probs[rows]

    def _run(self, coalitions: np.ndarray) -> None:
        total = len(coalitions)
        out = np.empty((total, self.classifier.num_classes), np.float32)
        starts = range(0, total, self.batch_size)
        ahead = None
        for k, start in enumerate(starts):
            self.check_cancelled()
            chunk = coalitions[start : start + self.batch_size]
            batch = ahead.result() if ahead is not None else self.render_normalised(chunk)
            ahead = None
            if k + 1 < len(starts):  # built while the model runs (NumPy and the runtime release the GIL)
                following = coalitions[start + self.batch_size : start + 2 * self.batch_size]
                ahead = _renderers.submit(self.render_normalised, following)
            t0 = time.perf_counter()  # timed here, not from the classifier's counters: those are shared by threads
            out[start : start + len(chunk)] = self.classifier.forward_normalised(batch, cancel=self.cancel)
            self._tally.model_seconds += time.perf_counter() - t0
            self._tally.passes += len(chunk)
            if self.progress is not None:
                self.progress(self._method, start + len(chunk), total)
        self._probs = np.concatenate([self._probs, out]) if len(self._probs) else out

    def charge(self, passes: int, model_seconds: float, *, backward_passes: int = 0) -> None:
        """Count model passes made outside ``evaluate`` (e.g. shap's Partition explainer, or the
        gradient methods' forward and ``backward_passes`` on the torch module)."""
        self._tally.passes += int(passes)
        self._tally.samples += int(passes)
        self._tally.backward += int(backward_passes)
        self._tally.model_seconds += float(model_seconds)

    @property
    def model_input(self) -> np.ndarray:
        """The view as the model takes it: (1, 3, H, W) float32, normalised (read-only)."""
        view = self._image_nchw.view()
        view.flags.writeable = False
        return view

    def predict_full(self) -> np.ndarray:
        """Probabilities of the unperturbed image (all superpixels kept)."""
        return self.evaluate(np.ones((1, self.n_segments), bool))[0]

    # -- accounting ---------------------------------------------------------------------
    @contextmanager
    def track(self, method: str) -> Iterator[dict]:
        """Attribute the passes, hits and time inside the block to ``method``.

        Yields a dict that receives ``cost`` (a ``MethodCost``) when the block ends.
        """
        before, previous = _Tally(**vars(self._tally)), self._method
        self._method = method
        box: dict = {}
        t0 = time.perf_counter()
        try:
            yield box
        finally:
            self._method = previous
            now = self._tally
            box["cost"] = MethodCost(
                method=method,
                wall_seconds=time.perf_counter() - t0,
                forward_passes=now.passes - before.passes,
                cache_hits=now.hits - before.hits,
                model_seconds=now.model_seconds - before.model_seconds,
                samples=now.samples - before.samples,
                backward_passes=now.backward - before.backward,
            )
