"""One explanation service for the UI and batch: memory cache, store, per-method isolation.

``ExplanationService.lookup`` finds an image's explanation for a request in the memory
cache, then in the store; ``compute`` runs the methods still missing through
``xai_panel.explain``, isolating each method's failure ("LIME failed; SHAP and Anchors
shown"), merges them with what was stored, and keeps the result in the cache and the
store. Both are keyed only by the request (``ExplainRequest``) and the image's hash. The
gallery's session calls ``lookup`` in its fast lane and ``compute`` in its compute lane;
``explain_cached`` and precompute call ``explain``, which is both.

Results of custom explainer classes (a user's subclass of a registered method) are kept
in memory under their own key and never written to or read from the store: a stored
result must be reproducible from its key alone.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import numpy as np

from .perturbation import Cancelled
from .request import ExplainRequest, digest
from .results import Explanation, Segmentation

if TYPE_CHECKING:  # the store depends on the engine, not the other way round
    from ..store.sqlite import ExplanationStore

__all__ = ["ExplanationService", "MethodsFailed", "explain_cached", "merge_explanations", "other_preset_requests"]

_log = logging.getLogger(__name__)

_read_from_store: "weakref.WeakValueDictionary[int, Explanation]" = weakref.WeakValueDictionary()
# Result keys being read from a store, each with the lock its reader holds: a second thread that
# wants the same entry (a page's prefetch, a click, another page's prefetch) waits for it and
# finds it in the cache, instead of decoding it again beside the first (they ran three at once).
_reading: dict[str, threading.Lock] = {}
_reading_lock = threading.Lock()
"""The explanations read from a store and kept in a memory cache since: found there again, they
still came from the store (what the page says), not from a computation of this process."""


class MethodsFailed(RuntimeError):
    """Every requested method failed; ``errors`` says why, per method."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{m} failed: {why}" for m, why in self.errors.items()))


def merge_explanations(fresh: Explanation, stored: Explanation | None, request: ExplainRequest) -> Explanation:
    """``fresh`` plus the methods only ``stored`` has (same image, model and settings)."""
    if stored is None:
        return fresh
    extra = [m for m in stored.results if m in stored.costs and m not in fresh.costs]
    if not extra:
        return fresh
    costs = {**{m: stored.costs[m] for m in extra}, **fresh.costs}
    merged = fresh.with_results(costs=costs, **{m: stored.results[m] for m in extra})
    return replace(merged, settings=request.explanation_settings(costs))


def _merge_runs(done: dict[str, Explanation], latest: Explanation | None) -> Explanation:
    """One Explanation holding every finished method (results may come from several runs)."""
    base = latest or next(iter(done.values()))
    costs = dict(base.costs)
    results = {}
    for method, source in done.items():
        results[method] = source.results[method]
        if method in source.costs:
            costs[method] = source.costs[method]
    return replace(base.with_results(costs=costs, **results), preview=())


def _custom_classes(explainers: Mapping | None) -> dict[str, str]:
    from ..methods.base import method_class

    return {m: f"{type(e).__module__}.{type(e).__qualname__}" for m, e in (explainers or {}).items()
            if type(e) is not method_class(m)}


def _refusals(methods, settings: Mapping, classifier) -> dict[str, str]:
    """Why each method of ``methods`` that refuses ``classifier`` (``Explainer.check``) does."""
    from ..methods.base import make_explainer
    from ..models.classifier import ModelError

    refused = {}
    for m in methods:
        try:
            make_explainer(m, settings[m]).check(classifier)
        except ModelError as exc:
            refused[m] = f"{type(exc).__name__}: {exc}"
    return refused


def other_preset_requests(request: ExplainRequest) -> list[tuple[str, ExplainRequest]]:
    """``request`` with each other preset's budget (``xai_panel.presets``): same model, methods, top-k,
    seed and fill; (preset name, request) for every preset whose request is not ``request`` itself."""
    from ..presets import presets

    out = []
    for name, chosen in presets().items():
        other = ExplainRequest.create(
            request.model_id, request.methods, top_k=request.top_k, seed=request.seed,
            segmentation=chosen.segmentation, segmentation_params=chosen.segmentation_params, fill=request.fill,
            settings={m: s for m, s in chosen.settings.items() if m in request.methods}, version=request.version)
        if other.to_json() != request.to_json():
            out.append((name, other))
    return out


class ExplanationService:
    """The cached, stored, failure-isolated path from (image, request) to an Explanation.

    ``cache`` has ``get(key)``/``put(key, explanation)`` (``MemoryCache``; None: none);
    ``store`` is an ``ExplanationStore`` (None: memory only). A store that fails to read
    or write is logged and the explanation is served anyway.
    """

    def __init__(self, cache=None, store: "ExplanationStore | None" = None):
        self.cache = cache
        self.store = store

    # -- keys and lookups -------------------------------------------------------------------
    @staticmethod
    def key(image_hash: str, request: ExplainRequest, explainers: Mapping | None = None) -> str:
        """The memory cache's key: the image, the whole request, and any custom classes."""
        return digest({"image": image_hash, "request": request.to_json(), "classes": _custom_classes(explainers)})

    def lookup(self, image_hash: str, request: ExplainRequest, explainers: Mapping | None = None,
               *, partial: bool = False) -> Explanation | None:
        """The explanation of every requested method, from the cache or else the store.

        ``partial``: also return what the store has when some methods are missing.
        """
        return self.locate(image_hash, request, explainers, partial=partial)[0]

    def locate(self, image_hash: str, request: ExplainRequest, explainers: Mapping | None = None,
               *, partial: bool = False) -> tuple[Explanation | None, str]:
        """``lookup``, and where the explanation came from: ``"memory"`` (computed by this process),
        ``"store"`` (read from the store now, or earlier and kept in the cache) or ``""``."""
        key = self.key(image_hash, request, explainers)
        hit = self._cached(key)
        if hit is not None:
            return hit
        if self.store is None or _custom_classes(explainers):
            return None, ""
        if self.cache is None:
            return self._read(key, image_hash, request, partial)
        with _reading_lock:
            lock = _reading.setdefault(key, threading.Lock())
        try:
            with lock:
                return self._cached(key) or self._read(key, image_hash, request, partial)
        finally:
            with _reading_lock:
                if _reading.get(key) is lock:
                    del _reading[key]

    def _cached(self, key: str) -> tuple[Explanation, str] | None:
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            return None
        return hit, "store" if _read_from_store.get(id(hit)) is hit else "memory"

    def _read(self, key: str, image_hash: str, request: ExplainRequest, partial: bool) -> tuple[Explanation | None, str]:
        try:
            stored = self.store.get(image_hash, request)
        except Exception:  # a locked, damaged or vanished store: compute instead, and say why in the log
            _log.exception("reading the explanation store failed")
            return None, ""
        if stored is None:
            return None, ""
        complete = set(request.methods) <= set(stored.costs)
        if complete and self.cache is not None:
            _read_from_store[id(stored)] = stored
            self.cache.put(key, stored)
        return (stored, "store") if complete or partial else (None, "")

    def locate_preset(self, image_hash: str, request: ExplainRequest
                      ) -> tuple[Explanation | None, str, ExplainRequest | None, str]:
        """A stored explanation of this image and model with ``request``'s methods, top-k, seed
        and fill but another preset's budget (``xai_panel.presets``), for when ``request``
        itself is not stored: a complete one first, else the one with the most methods.

        Returns (explanation, where it came from, its request, the preset's name); all empty
        (None, "", None, "") when no other preset has anything of it.
        """
        best: tuple = (None, "", None, "")
        for name, other in other_preset_requests(request):
            found, origin = self.locate(image_hash, other, partial=True)
            if found is None or not set(request.methods) & set(found.costs):
                continue
            if set(request.methods) <= set(found.costs):
                return found, origin, other, name
            if best[0] is None or len(set(found.costs) & set(request.methods)) > len(set(best[0].costs) & set(request.methods)):
                best = (found, origin, other, name)
        return best

    def keep(self, result: Explanation, image_hash: str, request: ExplainRequest, explainers: Mapping | None = None,
             *, methods: Iterable[str] | None = None, record=None) -> None:
        """Write ``methods`` of ``result`` (default: all it has) to the store; failures are logged."""
        if self.store is None or _custom_classes(explainers):
            return
        try:
            self.store.put(result, image_hash, request=request, methods=methods, record=record)
        except Exception:  # a full disk or a locked store loses the copy, not the result
            _log.exception("writing to the explanation store failed")

    # -- computing --------------------------------------------------------------------------
    def compute(
        self,
        image: np.ndarray,
        classifier,
        request: ExplainRequest,
        *,
        image_hash: str,
        explainers: Mapping | None = None,
        stored: Explanation | None = None,
        record=None,
        write: str = "each",
        progress: Callable[[str, int, int], None] | None = None,
        cancel=None,
        on_method: Callable[[Explanation], None] | None = None,
        preview: int = 0,
        segments: Segmentation | None = None,
    ) -> Explanation:
        """Run the requested methods ``stored`` lacks; every failure is isolated.

        A failing method is reported in the result's ``errors`` and the others still run
        (the pool's definer is run again with them, so their samples do not change).
        ``on_method`` gets the growing result after each method (merged with ``stored``).
        ``write="each"`` stores each method as it finishes (a cancelled run keeps what it
        finished); ``"end"`` stores the whole result at the end, after the last
        ``on_method``; ``"none"`` leaves it to the caller (``keep``), e.g. after the page
        has the result. ``segments``: the image's superpixels for the request's segmentation,
        already computed (e.g. by the dashboards' fast lane), instead of segmenting again.
        ``Cancelled`` propagates; when every method fails (and nothing was
        stored) ``MethodsFailed`` says why, and a failure before any method ran (decoding,
        the model) propagates as it is.
        """
        from ..methods.base import method_class
        from .pipeline import explain

        if write not in ("each", "end", "none"):
            raise ValueError(f"write must be 'each', 'end' or 'none', got {write!r}")
        missing = [m for m in request.methods if stored is None or m not in stored.costs]
        explainers = dict(explainers or {})
        kwargs = request.explain_kwargs(missing)
        settings = {m: explainers.get(m, kwargs["settings"][m]) for m in kwargs["methods"]}
        todo = list(kwargs["methods"])
        done: dict[str, Explanation] = {}
        errors: dict[str, str] = {}
        refused = _refusals(todo, settings, classifier)  # e.g. gradients of an ONNX file: said, not tried
        errors.update(refused)
        todo = [m for m in todo if m not in refused]
        written: set[str] = set()
        reached = [False]  # the current run got past the top classes (failures before are not a method's)

        def finished(partial: Explanation) -> None:
            reached[0] = True
            for m in partial.results:
                if m in partial.costs and m not in done and m not in partial.preview:
                    done[m] = partial
            merged = replace(merge_explanations(_merge_runs(done, partial) if done else partial, stored, request),
                             errors=dict(errors), preview=partial.preview, refused=tuple(refused))
            if on_method is not None:
                on_method(merged)
            if write == "each" and not partial.preview:
                new = [m for m in done if m in missing and m not in written]
                if new:
                    self.keep(merged, image_hash, request, explainers, methods=new, record=record)
                    written.update(new)

        while todo:
            reached[0] = False
            try:
                explain(image, classifier, methods=todo, top_k=kwargs["top_k"], labels=kwargs["labels"],
                        seed=kwargs["seed"],
                        segmentation=kwargs["segmentation"], segmentation_params=kwargs["segmentation_params"],
                        fill=kwargs["fill"], settings={m: settings[m] for m in todo}, progress=progress,
                        cancel=cancel, on_method=finished, preview=int(preview), segments=segments)
                break
            except Cancelled:
                raise
            except Exception as exc:  # one method's failure must not take the others down
                failed = next((m for m in todo if m not in done), None)
                if failed is None or not reached[0]:  # not a method's failure (the image, the model)
                    raise
                errors[failed] = f"{type(exc).__name__}: {exc}"
                _log.warning("%s failed: %s", failed, errors[failed])
                todo = [m for m in todo if m not in done and m not in errors]
                if todo:  # the pool's definer runs again with them: same seed, same pool
                    todo = [*(m for m in done if method_class(m).defines_pool), *todo]
        if not done:
            if stored is not None:
                return replace(stored, errors=dict(errors), refused=tuple(refused))
            raise MethodsFailed(errors)
        result = replace(merge_explanations(_merge_runs(done, None), stored, request), errors=dict(errors),
                         refused=tuple(refused))
        if set(errors) <= set(refused) and self.cache is not None:  # a refusal stays one: cached with its note
            self.cache.put(self.key(image_hash, request, explainers), result)
        if write == "end":
            self.keep(result, image_hash, request, explainers,
                      methods=[m for m in done if m in missing], record=record)
        return result

    def measure(self, result: Explanation, classifier, image_hash: str, request: ExplainRequest,
                metrics: Iterable[str] | str = ("faithfulness", "agreement"), *, settings: Mapping | None = None,
                explainers: Mapping | None = None, progress: Callable[[str, int, int], None] | None = None,
                cancel=None, write: bool = True) -> Explanation:
        """``result`` with the trust ``metrics`` it lacks (``xai_panel.metrics.trust``), kept.

        Runs after the explanations (it never delays them): a stored or cached result pays
        only for what it lacks. The measured result replaces the unmeasured one in the
        memory cache, and (``write``) the new metrics are written to the store (as rows of
        their own: the stored results are not rewritten). ``Cancelled`` propagates.
        """
        from ..metrics.faithfulness import _engine_for
        from ..metrics.trust import add_metrics

        engine = _engine_for(result, classifier, progress=progress, cancel=cancel)
        measured = add_metrics(result, classifier, metrics, settings=settings, engine=engine)
        changed = [m for m in measured.faithfulness if measured.faithfulness[m] is not result.faithfulness.get(m)]
        if self.cache is not None and not measured.errors:
            self.cache.put(self.key(image_hash, request, explainers), measured)
        covered = [{m for a in r.agreement.values() for m in a.methods} for r in (result, measured)]
        new_agreement = bool(measured.agreement) and (
            covered[0] != covered[1] or result.metric_settings.get("agreement") != measured.metric_settings.get("agreement"))
        if write and (changed or new_agreement):
            self.keep(measured, image_hash, request, explainers, methods=())
        return measured

    def explain(self, image: np.ndarray, classifier, request: ExplainRequest, *, image_hash: str | None = None,
                explainers: Mapping | None = None, record=None, progress=None, cancel=None,
                on_method: Callable[[Explanation], None] | None = None, preview: int = 0) -> Explanation | None:
        """``lookup``, then ``compute`` what is missing: stored methods first (``on_method``)."""
        from ..data import image_hash as hash_of

        key = image_hash or hash_of(np.asarray(image))
        if request.model_id is None:
            request = request.with_model(classifier.model_id)
        stored = self.lookup(key, request, explainers, partial=True)
        if stored is not None and on_method is not None:
            on_method(stored)
        if stored is not None and set(request.methods) <= set(stored.costs):
            return stored
        return self.compute(image, classifier, request, image_hash=key, explainers=explainers, stored=stored,
                            record=record, progress=progress, cancel=cancel, on_method=on_method, preview=preview)


def explain_cached(
    image: np.ndarray,
    store: "ExplanationStore",
    classifier=None,
    methods: Iterable[str] | None = None,
    *,
    image_hash: str | None = None,
    record=None,
    top_k: int = 5,
    seed: int = 0,
    segmentation: str = "quickshift",
    segmentation_params: Mapping | None = None,
    fill: str = "mean",
    settings: Mapping | None = None,
    labels: Iterable[int | str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancel=None,
    on_method: Callable[[Explanation], None] | None = None,
    metrics: Iterable[str] | str | None = None,
    metric_settings: Mapping | None = None,
) -> Explanation:
    """``xai_panel.explain`` through ``store``: same arguments, same result, computed once.

    ``image`` is the decoded HxWx3 uint8 image (``load_image``); its hash is the key unless
    ``image_hash`` is given. ``on_method`` first receives what is stored (if anything),
    then the growing result as each missing method finishes; each of those is stored at
    once (a cancelled run keeps the methods it finished). ``record`` fills the summary.
    A method that fails is named in the result's ``errors``; the others are returned.
    ``metrics`` (with ``metric_settings``) adds the trust metrics after the explanations, as
    ``explain`` does; they are stored too, and a stored result pays only for those it lacks.
    """
    if metrics:
        from ..metrics.trust import check_metrics

        metrics, metric_settings = check_metrics(metrics, metric_settings)  # before any work
    if classifier is None:
        from ..models import load_classifier

        classifier = load_classifier()
    from .request import check_labels

    request = ExplainRequest.create(classifier.model_id, methods, top_k=top_k, seed=seed,
                                    segmentation=segmentation, segmentation_params=segmentation_params,
                                    fill=fill, settings=settings, labels=check_labels(labels, classifier.class_names))
    service = ExplanationService(store=store)
    result = service.explain(image, classifier, request, image_hash=image_hash, record=record, progress=progress,
                             cancel=cancel, on_method=on_method)
    if metrics and result is not None:
        from ..data import image_hash as hash_of

        result = service.measure(result, classifier, image_hash or hash_of(image), request, metrics,
                                 settings=metric_settings, progress=progress, cancel=cancel)
    return result
