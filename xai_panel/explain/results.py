"""Frozen result types shared by the engine, the explainers, the store and the UI.

Everything is plain NumPy so results pickle cheaply (Dask), serialise to the store and
render anywhere. Superpixel-level values are vectors of length M (one per segment);
``paint`` turns them into HxW maps on demand instead of storing both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..models.classifier import ClassScore

__all__ = [
    "ClassScore",
    "Segmentation",
    "MethodCost",
    "LimeResult",
    "AnchorResult",
    "ShapResult",
    "Explanation",
    "paint",
]


def paint(segments: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-superpixel ``values`` (M,) -> per-pixel map (H, W)."""
    return np.asarray(values)[segments]


@dataclass(frozen=True)
class Segmentation:
    """Superpixels of one image: ``labels`` is (H, W) int32 with ids 0..M-1."""

    labels: np.ndarray
    algorithm: str
    params: Mapping[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_segments(self) -> int:
        return int(self.labels.max()) + 1

    def mask(self, segment_ids) -> np.ndarray:
        """Boolean (H, W) mask of the union of ``segment_ids``."""
        keep = np.zeros(self.n_segments, bool)
        keep[list(segment_ids)] = True
        return keep[self.labels]


@dataclass(frozen=True)
class MethodCost:
    """What one method cost: wall time, model passes it caused, and passes it got for free."""

    method: str
    wall_seconds: float
    forward_passes: int
    cache_hits: int
    model_seconds: float
    samples: int

    @property
    def overhead_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.model_seconds)


@dataclass(frozen=True)
class LimeResult:
    """LIME's linear surrogate for one class over the superpixels."""

    label: int
    weights: np.ndarray  # (M,)
    intercept: float
    score: float  # R^2 of the weighted surrogate on its samples
    local_prediction: float

    def top_segments(self, num_features: int = 5, positive_only: bool = True) -> np.ndarray:
        """Segment ids of the ``num_features`` largest weights (by value, or by |value|)."""
        key = -self.weights if positive_only else -np.abs(self.weights)
        order = np.argsort(key, kind="stable")[:num_features]
        if positive_only:
            order = order[self.weights[order] > 0]
        return order

    def mask(self, segments: np.ndarray, num_features: int = 5, positive_only: bool = True) -> np.ndarray:
        """(H, W) int8: +1 where a chosen superpixel supports the class, -1 where it opposes it."""
        chosen = self.top_segments(num_features, positive_only)
        signs = np.zeros(len(self.weights), np.int8)
        signs[chosen] = np.sign(self.weights[chosen]).astype(np.int8)
        return signs[segments]


@dataclass(frozen=True)
class AnchorResult:
    """An anchor: superpixels that, kept, hold the prediction with ``precision``."""

    label: int
    target: str  # "top-1" or "top-k": what "holding the prediction" means for this class
    segments: tuple[int, ...]
    precision: float
    coverage: float
    examples: np.ndarray  # (k, H, W, 3) uint8 perturbed images that keep the prediction
    counter_examples: np.ndarray  # (k, H, W, 3) uint8 perturbed images that do not
    found: bool  # False: no anchor met the precision threshold (best effort returned)
    # (M,) region of each superpixel in the search: perturbations keep or hide whole regions
    # (``AnchorExplainer.regions``); None: every superpixel is a region of its own.
    region_of: np.ndarray | None = None


@dataclass(frozen=True)
class ShapResult:
    """Shapley values for one class: per superpixel, or per pixel (``heatmap``)."""

    label: int
    values: np.ndarray  # (M,) per superpixel; for estimator "partition" the heatmap summed per superpixel
    base_value: float  # f(all superpixels hidden)
    prediction: float  # f(x)
    estimator: str
    heatmap: np.ndarray | None = None  # (H, W) pixel-resolution values (partition estimator)

    @property
    def additivity_error(self) -> float:
        """|sum(values) + base - f(x)|: zero for exact Shapley values."""
        total = float(self.heatmap.sum()) if self.heatmap is not None else float(np.sum(self.values))
        return abs(total + self.base_value - self.prediction)


@dataclass(frozen=True)
class Explanation:
    """Everything ``xai_panel.explain`` found for one image."""

    image: np.ndarray  # (H, W, 3) uint8: the view the model saw (resized, cropped)
    model_id: str
    top: tuple[ClassScore, ...]
    segmentation: Segmentation
    lime: Mapping[int, LimeResult] = field(default_factory=dict)
    anchors: Mapping[int, AnchorResult] = field(default_factory=dict)
    shap: Mapping[int, ShapResult] = field(default_factory=dict)
    costs: Mapping[str, MethodCost] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)
    seed: int = 0
    # Methods whose results are a preview (fitted on fewer samples), to be replaced by the
    # final ones: only ever seen by ``on_method`` callbacks, never returned or stored.
    preview: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(c.index for c in self.top)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m in ("lime", "anchors", "shap") if getattr(self, m))

    @property
    def total_forward_passes(self) -> int:
        return sum(c.forward_passes for c in self.costs.values())
