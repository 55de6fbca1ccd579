"""``explain_cached``: stored results at once, the missing methods computed and stored.

This is the gallery's click handler without the UI: look the image up, hand back what is
stored (instantly), compute only what is missing, store each method as it finishes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Mapping

import numpy as np

from ..explain.results import Explanation
from .keys import ExplainRequest
from .sqlite import ExplanationStore

__all__ = ["explain_cached", "merge_explanations"]


def merge_explanations(fresh: Explanation, stored: Explanation | None, request: ExplainRequest) -> Explanation:
    """``fresh`` plus the methods only ``stored`` has (same image, model and settings)."""
    if stored is None:
        return fresh
    extra = [m for m in ("lime", "anchors", "shap") if m in stored.costs and m not in fresh.costs]
    if not extra:
        return fresh
    costs = {**{m: stored.costs[m] for m in extra}, **fresh.costs}
    methods = [m for m in ("lime", "anchors", "shap") if m in costs]
    return replace(fresh, **{m: getattr(stored, m) for m in extra}, costs=costs,
                   settings=request.explanation_settings(methods))


def explain_cached(
    image: np.ndarray,
    store: ExplanationStore,
    classifier=None,
    methods: Iterable[str] = ("lime", "anchors", "shap"),
    *,
    image_hash: str | None = None,
    record=None,
    top_k: int = 5,
    seed: int = 0,
    segmentation: str = "quickshift",
    segmentation_params: Mapping | None = None,
    fill: str = "mean",
    settings: Mapping | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel=None,
    on_method: Callable[[Explanation], None] | None = None,
) -> Explanation:
    """``xai_panel.explain`` through ``store``: same arguments, same result, computed once.

    ``image`` is the decoded HxWx3 uint8 image (``load_image``); its hash is the key unless
    ``image_hash`` is given. ``on_method`` first receives what is stored (if anything),
    then the growing result as each missing method finishes; each of those is stored at
    once (a cancelled run keeps the methods it finished). ``record`` fills the summary.
    """
    from ..data import image_hash as hash_of
    from ..explain import explain

    if classifier is None:
        from ..models import load_classifier

        classifier = load_classifier()
    request = ExplainRequest.create(classifier.model_id, methods, top_k=top_k, seed=seed,
                                    segmentation=segmentation, segmentation_params=segmentation_params,
                                    fill=fill, settings=settings)
    key = image_hash or hash_of(np.asarray(image))
    stored = store.get(key, request)
    missing = [m for m in request.methods if stored is None or m not in stored.costs]
    if stored is not None and on_method is not None:
        on_method(stored)
    if not missing:
        return stored

    written: set[str] = set()

    def keep(partial: Explanation) -> None:
        new = [m for m in missing if m in partial.costs and m not in written]
        store.put(partial, key, request=request, methods=new, record=record)
        written.update(new)
        if on_method is not None:
            on_method(merge_explanations(partial, stored, request))

    fresh = explain(image, classifier, progress=progress, cancel=cancel, on_method=keep,
                    **request.explain_kwargs(missing))
    return merge_explanations(fresh, stored, request)
