"""Frozen result types shared by the engine, the explainers, the store and the UI.

Everything is plain NumPy so results pickle cheaply (Dask), serialise to the store and
render anywhere. Superpixel-level values are vectors of length M (one per segment);
``paint`` turns them into HxW maps on demand instead of storing both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import ClassVar, Mapping

import numpy as np

from ..models.classifier import ClassScore

__all__ = [
    "ClassScore",
    "Segmentation",
    "MethodCost",
    "ScoreResult",
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
    """What one method cost: wall time, model passes it caused, and passes it got for free.

    ``backward_passes`` counts the gradients the gradient methods took (one per class and
    input image differentiated); the perturbation methods make none.
    """

    method: str
    wall_seconds: float
    forward_passes: int
    cache_hits: int
    model_seconds: float
    samples: int
    backward_passes: int = 0

    @property
    def overhead_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.model_seconds)


class ScoreResult:
    """The protocol of per-superpixel results: ``values`` is an (M,) score per superpixel for
    the class (higher: more evidence for it). Panes, stability and the trust metrics read
    results through it, whatever the method. Results that are a set of superpixels rather
    than scores (an anchor) set ``ranked = False`` and override ``vector`` and ``top_set``.
    """

    ranked: ClassVar[bool] = True
    """Whether the scores order the superpixels (so rank correlations apply)."""

    def vector(self, n_segments: int) -> np.ndarray:
        """The (M,) float64 score vector."""
        return np.asarray(self.values, np.float64)

    def top_set(self, k: int) -> frozenset[int]:
        """The ``k`` superpixels with the highest scores (ties by id)."""
        return frozenset(int(i) for i in np.argsort(-self.vector(0), kind="stable")[:k])


@dataclass(frozen=True)
class Explanation:
    """Everything ``xai_panel.explain`` found for one image.

    ``results[method][label]`` holds each method's result per class; a registered method's
    name also reads as an attribute (``res.lime``, ``res.shap``: read-only views, ``{}`` when
    the method did not run). The classes explained are ``top`` (the top-k) and ``asked``
    (classes asked for with ``explain(labels=...)`` that are not in the top-k), ``classes``
    both, in that order.
    """

    image: np.ndarray  # (H, W, 3) uint8: the view the model saw (resized, cropped)
    model_id: str
    top: tuple[ClassScore, ...]
    segmentation: Segmentation
    results: Mapping[str, Mapping[int, object]] = field(default_factory=dict)
    costs: Mapping[str, MethodCost] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)
    seed: int = 0
    # Methods whose results are a preview (fitted on fewer samples), to be replaced by the
    # final ones: only ever seen by ``on_method`` callbacks, never returned or stored.
    preview: tuple[str, ...] = ()
    # Per method that failed, why (the other methods' results are still here); not stored.
    errors: Mapping[str, str] = field(default_factory=dict)
    # The methods of ``errors`` that refused the model before running (``Explainer.check``:
    # gradients of an ONNX file): a lasting fact, so the result is still cached; not stored.
    refused: tuple[str, ...] = ()
    # The trust metrics (``xai_panel.metrics.trust``): faithfulness[method][label] (a
    # ``Faithfulness``), agreement[label] (an ``Agreement``), and the settings they used.
    faithfulness: Mapping[str, Mapping[int, object]] = field(default_factory=dict)
    agreement: Mapping[int, object] = field(default_factory=dict)
    metric_settings: Mapping[str, Mapping] = field(default_factory=dict)
    # Classes asked for beside the top-k (``explain(labels=...)``) that are not in it, in class
    # index order, with their probability on the image.
    asked: tuple[ClassScore, ...] = ()

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: a method name reads its results.
        if name.startswith("_") or name == "results":
            raise AttributeError(name)
        from ..methods.base import registry

        if name in self.results:
            return MappingProxyType(dict(self.results[name]))
        if name in registry():
            return MappingProxyType({})
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r} (and no method of that name)")

    def with_results(self, costs: Mapping[str, MethodCost] | None = None, **results) -> "Explanation":
        """A copy with ``results`` (method -> {label: result}) added or replaced.

        The metrics of a replaced method's results, and the agreement, no longer hold and are dropped.
        """
        faithfulness = {m: f for m, f in self.faithfulness.items() if m not in results}
        return replace(self, results={**self.results, **results},
                       costs=dict(self.costs) if costs is None else dict(costs),
                       faithfulness=faithfulness, agreement={} if results else self.agreement)

    @property
    def classes(self) -> tuple[ClassScore, ...]:
        """Every class explained: the top-k, then the asked ones."""
        return (*self.top, *self.asked)

    @property
    def labels(self) -> tuple[int, ...]:
        """The indices of ``classes``."""
        return tuple(c.index for c in self.classes)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods with results, in the registry's display order."""
        from ..methods.base import registry

        return tuple(m for m in registry() if self.results.get(m))

    @property
    def total_forward_passes(self) -> int:
        return sum(c.forward_passes for c in self.costs.values())
