"""The trust metrics on an ``Explanation``: which of its explanations to believe.

``add_metrics(res, classifier, ("faithfulness", "agreement"))`` returns a copy of ``res``
with ``res.faithfulness[method][label]`` and ``res.agreement[label]`` filled (what is
already there is kept, so a stored explanation only pays for what it lacks), and the
model passes counted in ``res.costs["faithfulness"]``. ``explain(..., metrics=...)``
calls it with its own engine, after every method has run (never delaying them).

Names: ``"faithfulness"`` (the superpixel deletion/insertion protocol with random
baselines), ``"rise"`` (adds RISE's pixel protocol for the top class; implies
faithfulness), ``"agreement"`` (no model pass).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterable, Mapping

from ..engine.results import Explanation, MethodCost
from .agreement import AGREEMENT_TOP_K, agreement
from .faithfulness import RANDOM_ORDERS, _engine_for, faithfulness, ranked_methods

__all__ = ["METRICS", "add_metrics", "check_metrics", "METRIC_SETTINGS"]

METRICS = ("faithfulness", "rise", "agreement")
METRIC_SETTINGS = {"steps": None, "random_orders": RANDOM_ORDERS, "seed": 0, "k": AGREEMENT_TOP_K}
"""The metrics' settings and their defaults (``steps``: None is one superpixel per step)."""


def check_metrics(metrics: Iterable[str] | str | None, settings: Mapping | None = None) -> tuple[tuple[str, ...], dict]:
    """``metrics`` de-duplicated and checked, and the settings with their defaults filled in."""
    if metrics is None:
        metrics = ()
    if isinstance(metrics, str):
        metrics = (metrics,)
    names = tuple(dict.fromkeys(metrics))
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; the metrics are {', '.join(METRICS)}")
    if "rise" in names and "faithfulness" not in names:
        names = ("faithfulness", *names)
    settings = dict(settings or {})
    unknown = set(settings) - set(METRIC_SETTINGS)
    if unknown:
        raise ValueError(f"no metric setting {', '.join(sorted(unknown))}; they are {', '.join(METRIC_SETTINGS)}")
    merged = {**METRIC_SETTINGS, **settings}
    steps = merged["steps"]
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ValueError(f"steps must be None (one superpixel per step) or an integer >= 1, got {steps!r}")
    for key, low, high in (("random_orders", 1, 100), ("k", 1, 10_000), ("seed", 0, 2**32 - 1)):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return names, merged


def add_metrics(explanation: Explanation, classifier, metrics: Iterable[str] | str = ("faithfulness", "agreement"),
                *, settings: Mapping | None = None, engine=None) -> Explanation:
    """``explanation`` with the trust ``metrics`` added (see the module's docstring)."""
    names, merged = check_metrics(metrics, settings)
    result = explanation
    if "faithfulness" in names:
        kept = dict(explanation.faithfulness)
        if explanation.metric_settings.get("faithfulness", _faith_settings(merged)) != _faith_settings(merged):
            kept = {}  # measured with other steps or baselines: not comparable, measured again
        want_rise = "rise" in names
        todo = [m for m in ranked_methods(explanation)
                if m not in kept or (want_rise and not any(f.pixel for f in kept[m].values()))]
        if todo:
            engine = engine or _engine_for(explanation, classifier)
            t0 = time.perf_counter()
            with engine.track("faithfulness") as box:
                fresh = faithfulness(explanation, classifier, todo, steps=merged["steps"],
                                     random_orders=merged["random_orders"], seed=merged["seed"],
                                     rise_labels=None if want_rise else (), engine=engine)
            costs = dict(result.costs)
            before = costs.get("faithfulness")
            cost = replace(box["cost"], wall_seconds=time.perf_counter() - t0)
            if before is not None:  # a second pass (methods that arrived later) adds to the first
                cost = MethodCost("faithfulness", before.wall_seconds + cost.wall_seconds,
                                  before.forward_passes + cost.forward_passes, before.cache_hits + cost.cache_hits,
                                  before.model_seconds + cost.model_seconds, before.samples + cost.samples)
            costs["faithfulness"] = cost
            result = replace(result, faithfulness={**kept, **fresh}, costs=costs,
                             metric_settings={**result.metric_settings, "faithfulness": _faith_settings(merged)})
    if "agreement" in names:
        result = replace(result, agreement=agreement(result, k=merged["k"]),
                         metric_settings={**result.metric_settings, "agreement": {"k": merged["k"]}})
    return result


def _faith_settings(merged: Mapping) -> dict:
    return {"steps": merged["steps"], "random_orders": merged["random_orders"], "seed": merged["seed"]}


def stored_settings(merged: Mapping) -> dict[str, dict]:
    """Per metric, the settings its results depend on, as ``res.metric_settings`` records them
    (``merged``: the settings of :func:`check_metrics`); the store keys its metrics by them."""
    return {"faithfulness": _faith_settings(merged), "agreement": {"k": merged["k"]}}
