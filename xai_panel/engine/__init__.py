"""The engine: segmentation, the shared perturbation engine, the request, the results, the
service, and ``explain`` (every registered method on one engine). Pure core: no Panel.

Layers: ``perturbation``, ``segmentation`` and ``results`` import nothing above them; the
methods (``xai_panel.methods``) build on those; ``pipeline`` (``explain``), ``request`` and
``service`` build on the methods, so they load on first use here.
"""

import importlib

from .perturbation import FILLS, Cancelled, PerturbationEngine, fill_image, shared_pool, uniform_coalitions
from .results import ClassScore, Explanation, MethodCost, ScoreResult, Segmentation, paint
from .segmentation import ALGORITHMS, segment

_LAZY = {"explain": "pipeline", "DEFAULT_POOL_SIZE": "pipeline", "ExplainRequest": "request",
         "ExplanationService": "service", "MethodsFailed": "service", "explain_cached": "service"}

__all__ = [
    "ALGORITHMS", "Cancelled", "ClassScore", "Explanation", "FILLS", "MethodCost", "PerturbationEngine",
    "ScoreResult", "Segmentation", "fill_image", "paint", "segment", "shared_pool", "uniform_coalitions", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
