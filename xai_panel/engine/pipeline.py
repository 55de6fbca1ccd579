"""``xai_panel.explain``: the top-k picture of one image, every method on one engine."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Iterable, Mapping

import numpy as np

from ..methods.base import (
    DEFAULT_POOL_SIZE,
    Explainer,
    check_methods,
    default_methods,
    draw_shared_pool,
    make_explainer,
    pool_size_of,
    run_order,
)
from ..models.classifier import Classifier, ModelError, top_k_of
from .perturbation import PerturbationEngine
from .perturbation import shared_pool as draw_pool
from .request import check_labels
from .results import ClassScore, Explanation, MethodCost, Segmentation
from .segmentation import segment

__all__ = ["explain", "apply_preset", "DEFAULT_POOL_SIZE"]


def _default_classifier() -> Classifier:
    from ..models import load_classifier

    return load_classifier()


def apply_preset(preset: str | None, methods, segmentation: str | None, segmentation_params, settings) -> tuple:
    """(methods, segmentation, segmentation_params, settings) of ``explain`` with ``preset``
    filled in under what was given explicitly (see ``explain``)."""
    if preset is None:
        return methods, segmentation or "quickshift", segmentation_params, settings
    from ..presets import preset as named

    chosen = named(preset)
    if segmentation is None or segmentation == chosen.segmentation:
        segmentation_params = {**chosen.segmentation_params, **dict(segmentation_params or {})}
    merged: dict = {m: dict(s) for m, s in chosen.settings.items()}
    for m, given in dict(settings or {}).items():
        merged[m] = given if isinstance(given, Explainer) else {**merged.get(m, {}), **dict(given or {})}
    return (chosen.methods if methods is None else methods, segmentation or chosen.segmentation,
            segmentation_params, merged)


def _compute(explainer: Explainer, engine: PerturbationEngine, groups, **kwargs) -> dict:
    """``explainer``'s results for the top-k, then for the asked classes in a call of their own:
    a method that shares work between the classes of one call (the Anchors' samples, SHAP's
    Owen budget) gives the top-k the results it gives them without asked classes."""
    output: dict = {}
    for labels in groups:
        output.update(explainer.compute(engine, labels, **kwargs))
    return output


def explain(
    image: np.ndarray,
    classifier: Classifier | None = None,
    methods: Iterable[str] | None = None,
    *,
    top_k: int = 5,
    labels: Iterable[int | str] | None = None,
    seed: int = 0,
    segmentation: str | None = None,
    segmentation_params: Mapping[str, object] | None = None,
    fill: str = "mean",
    segments: Segmentation | None = None,
    settings: Mapping[str, Mapping | Explainer] | None = None,
    preset: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel=None,
    on_method: Callable[[Explanation], None] | None = None,
    preview: int = 0,
    metrics: Iterable[str] | str = (),
    metric_settings: Mapping[str, object] | None = None,
) -> Explanation:
    """Explain the ``top_k`` classes of ``image``, and any ``labels``, with ``methods``, sharing model passes.

    ``image`` is any HxWx3 uint8 RGB array; the classifier's own resize/crop gives the view
    that is segmented and perturbed. One pool of uniform coalitions (lime's sampler, seeded
    by ``seed``) feeds LIME, SHAP ('pool' estimator) and the Anchor search; the engine
    memoises every coalition, so no coalition is ever evaluated twice; ``seed`` seeds the
    sampling (the segmentation does not depend on it). ``settings`` maps a
    method to its parameters (see ``LimeExplainer``, ``AnchorExplainer``, ``ShapExplainer``).
    ``on_method`` receives the Explanation so far after each method (for progressive UIs);
    ``cancel`` is a ``threading.Event`` checked between model batches. ``segments`` reuses a
    segmentation of the view (e.g. across seeds) instead of computing one. ``preview`` > 0
    (with ``on_method``): LIME is first fitted on the pool's first ``preview`` samples and
    passed to ``on_method`` with ``preview=("lime",)``, then fitted on the whole pool (the
    preview's passes are not repeated); the result does not depend on it.
    ``methods`` defaults to ``xai_panel.methods.default_methods()``; any registered method
    (``available_methods()``) may be named. Same inputs and seed, same result.

    ``labels`` asks for classes beside the top-k ("why not bus?"): class indices or names
    of ``classifier.class_names`` (case-insensitive); every method explains them too, after
    the top-k and in a call of its own (so the top-k's results are the same with or without them). Those not in the
    top-k are ``res.asked`` (their probabilities, in index order); ``res.classes`` is the
    top-k then them. ``top_k=0`` with ``labels`` explains only them. An index out of range
    or an unknown name is a ``ValueError`` before any model pass. For a class outside the
    top-k, the Anchors' target is "within the top-k" (``AnchorExplainer``).

    ``metrics`` (``"faithfulness"``, ``"rise"``, ``"agreement"``: ``xai_panel.metrics.trust``)
    are computed after every method, on the same engine (passes the methods made are free),
    into ``res.faithfulness[method][label]`` and ``res.agreement[label]``;
    ``metric_settings`` sets ``steps``, ``random_orders``, ``seed`` (of the random orders)
    and ``k`` (the agreement's top-k).

    ``preset`` (``"interactive"``, ``"thorough"``: ``xai_panel.presets``) gives the methods,
    the superpixels and each method's settings; what is passed explicitly overrides it
    (``methods``; ``segmentation``, whose parameters then are ``segmentation_params`` only;
    ``segmentation_params``; ``settings``, parameter by parameter, or a whole explainer).
    Without a preset, ``segmentation`` is ``"quickshift"`` (the ``thorough`` preset's). A
    method of the preset (not named in ``methods``) that the classifier refuses (Grad-CAM on
    an ONNX file) is left out and named in ``res.errors`` and ``res.refused``.
    """
    implied = preset is not None and methods is None  # the preset's methods: one the model refuses is left out
    methods, segmentation, segmentation_params, settings = apply_preset(
        preset, methods, segmentation, segmentation_params, settings)
    classifier = classifier or _default_classifier()
    methods = run_order(default_methods() if methods is None else methods)
    settings = dict(settings or {})
    check_methods(settings)  # a typo in a method's name must not pass silently
    explainers = {m: make_explainer(m, settings.get(m)) for m in methods}
    for m in set(settings) - set(methods):  # checked too: a typo in a setting must not pass silently
        make_explainer(m, settings[m])
    asked = check_labels(labels, classifier.class_names)
    if not (0 if asked else 1) <= int(top_k) <= min(classifier.num_classes, 20):
        raise ValueError(f"top_k must be between 1 and {min(classifier.num_classes, 20)} "
                         f"(or 0 with labels=), got {top_k}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if not isinstance(preview, (int, np.integer)) or preview < 0:
        raise ValueError(f"preview must be an integer >= 0, got {preview!r}")
    from ..metrics.trust import add_metrics, check_metrics  # metrics sit above the pipeline's layer

    metrics, metric_settings = check_metrics(metrics, metric_settings)
    refused: dict[str, str] = {}
    for method, explainer in list(explainers.items()):  # e.g. the gradient methods refuse an ONNX file, before any pass
        try:
            explainer.check(classifier)
        except ModelError as exc:
            if not implied:
                raise
            refused[method] = f"{type(exc).__name__}: {exc}"
            del explainers[method]

    t0 = time.perf_counter()
    view = classifier.prepare(np.asarray(image))
    if segments is None:
        # The superpixels belong to the image and the segmentation settings, not to the
        # sampling: quickshift's tie-breaking noise is seeded with 0 whatever ``seed`` is, so
        # explanations with different seeds are comparable superpixel by superpixel.
        segments = segment(view, segmentation, seed=0, **dict(segmentation_params or {}))
    elif segments.labels.shape != view.shape[:2]:
        raise ValueError(f"segments {segments.labels.shape} do not match the model's view {view.shape[:2]}")
    engine = PerturbationEngine(view, segments, classifier, fill, progress=progress, cancel=cancel)
    with engine.track("top-k") as box:
        probs = engine.predict_full()
    top = tuple(top_k_of(probs, classifier.class_names, int(top_k)))
    extra = tuple(ClassScore(c, classifier.class_names[c], float(probs[c])) for c in asked
                  if c not in {t.index for t in top})
    groups = [g for g in ([c.index for c in top], [c.index for c in extra]) if g]
    costs: dict[str, MethodCost] = {"top-k": replace(box["cost"], wall_seconds=time.perf_counter() - t0)}
    result = Explanation(
        image=view, model_id=classifier.model_id, top=top, segmentation=segments, costs=costs,
        settings={"segmentation": segments.algorithm, "segmentation_params": dict(segments.params), "fill": fill,
                  "top_k": int(top_k), **({"labels": list(asked)} if asked else {}),
                  **{m: e.settings() for m, e in explainers.items()}},
        seed=int(seed), errors=refused, refused=tuple(refused), asked=extra,
    )
    if on_method is not None:
        on_method(result)

    pool = None
    pool_size = pool_size_of(explainers)
    for method, explainer in explainers.items():  # in run order: the pool's definer first
        with engine.track(method) as box:
            if pool is None and explainer.needs_pool():
                if explainer.defines_pool and on_method is not None and 0 < preview < pool_size:
                    first = draw_pool(engine, pool_size, seed, first=int(preview))
                    early = _compute(explainer, engine, groups, seed=seed, pool=first, top_k=int(top_k))
                    on_method(replace(result.with_results(**{method: early}), preview=(method,)))
                pool = draw_shared_pool(explainers, engine, [c for g in groups for c in g], seed)
            output = _compute(explainer, engine, groups, seed=seed, pool=pool, top_k=int(top_k))
        costs[method] = box["cost"]
        result = result.with_results(costs=costs, **{method: output})
        if on_method is not None:
            on_method(result)
    if metrics:
        result = add_metrics(result, classifier, metrics, settings=metric_settings, engine=engine)
    return result
