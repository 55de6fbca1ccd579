"""The shared explanation state every pane follows: one image in, results out, progressively.

Setting ``source`` (an array, a path, encoded bytes or an ``ImageRecord``) starts a job in
two lanes. The fast lane (the shared thread pool) decodes and classifies the image and
looks it up in the cache: ``top`` and, for an image explained before, the whole
explanation appear within milliseconds, never queued behind other sessions' explanations.
Only a cache miss goes on to the compute lane (``compute_executor``, one thread per two
cores by default), admitted through the bounded compute queue, where
``xai_panel.explain`` runs and ``explanation`` is republished after each method (a LIME
preview first). A new source cancels both. Finished explanations go to a per-process
cache keyed by (image content, model id, settings, seed). When the compute queue is full
the request is refused at once with a "server busy" error; nothing is left waiting.

When neither the cache nor the store has the current settings' explanation but the store has
the image explained with another preset (``xai_panel.presets``: e.g. ``xai-panel precompute
--preset thorough``), that one is shown at once (``from_store``, ``shown_preset``,
``refinable``; its missing methods computed with its settings), and ``refine()`` (the status's
"Refine with the current settings" button) computes it with the current settings.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import panel as pn
import param

from ...data import ImageError, ImageRecord, image_hash, load_image
from ...engine.perturbation import Cancelled
from ...engine.pipeline import explain
from ...engine.request import ExplainRequest, check_labels
from ...engine.results import ClassScore, Explanation, Segmentation
from ...engine.segmentation import segment
from ...engine.service import ExplanationService, MethodsFailed, other_preset_requests
from ...methods._gradients import GradientResult, with_superpixels
from ...methods.base import available_methods, make_explainer, method_class
from ...metrics.trust import METRICS, check_metrics
from ...models import ModelError
from ...models.classifier import top_k_of
from ...presets import DASHBOARD_METRIC_SETTINGS, DASHBOARD_METRICS
from ...runtime.cache import ExplanationCache, decoded_images, default_cache
from ...runtime.jobs import Job, JobRunner, ServerBusy, compute_executor, compute_queue, wait_for_foreground_idle
from ...runtime.jobs import classifier as load_model
from ..widgets.settings import ExplainerSettings

__all__ = ["ExplanationSession", "STATUSES", "DEFAULT_MODEL", "PLACEHOLDER_SEGMENTATION"]

DEFAULT_MODEL = "efficientnet_lite0"
_log = logging.getLogger(__name__)
STATUSES = ("idle", "loading", "explaining", "done", "error")
PLACEHOLDER_SEGMENTATION = "pending"
"""The ``algorithm`` of the one-superpixel segmentation the first Grad-CAM maps are published with,
before the image is segmented (their superpixel means follow)."""
_PROGRESS_INTERVAL = 0.25  # seconds between progress updates sent to the page
INTERACTIVE_METRICS = DASHBOARD_METRIC_SETTINGS
"""The dashboards' metric settings (``xai_panel.presets.DASHBOARD_METRIC_SETTINGS``)."""


def _describe(source) -> str:
    if isinstance(source, ImageRecord):
        return source.id
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    if isinstance(source, np.ndarray):
        return f"array {source.shape[1]}x{source.shape[0]}"
    return "uploaded image"


def _decode(source) -> np.ndarray:
    if isinstance(source, ImageRecord):
        return source.load()
    if isinstance(source, np.ndarray):
        image = np.asarray(source)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageError(f"expected an HxWx3 uint8 RGB array, got {image.dtype} {image.shape}")
        return image
    return load_image(source)


def _carried_from(shown: tuple[Explanation | None, str], digest: str, classifier, request: ExplainRequest,
                  probs: np.ndarray) -> Explanation | None:
    """What the panes keep showing while classes asked for are explained: the explanation shown
    (with the digest of its image), when it is of the same image, model and request but for the
    asked classes (``request.labels``), with the new asked classes, whose tiles wait for their
    results. None otherwise (the panes are cleared for the new image or settings).

    The top-k's results do not depend on the asked classes (``explain`` runs those in a call of
    their own), so keeping them is exact, not a stale preview.
    """
    explanation, shown_digest = shown
    if explanation is None or explanation.preview or shown_digest != digest \
            or explanation.model_id != classifier.model_id:
        return None
    try:
        before = ExplainRequest.from_explanation(explanation)
    except (KeyError, ValueError):
        return None
    if replace(before, labels=(), version=request.version) != replace(request, labels=()):
        return None
    top = {c.index for c in explanation.top}
    asked = tuple(ClassScore(c, classifier.class_names[c], float(probs[c])) for c in request.labels if c not in top)
    kept = {m: {k: v for k, v in r.items() if k in top} for m, r in explanation.results.items()}
    return replace(explanation, asked=asked, results=kept, faithfulness={}, agreement={}, metric_settings={},
                   errors={})


def _with_carry(partial: Explanation, carry: Explanation | None) -> Explanation:
    """``partial`` with the carried results of the methods it does not have yet (for display only;
    drawn on the same superpixels, or else the carried explanation as it is)."""
    if carry is None:
        return partial
    if not np.array_equal(partial.segmentation.labels, carry.segmentation.labels):
        return carry  # the quick lane's maps on their placeholder superpixels: the carried ones still show
    missing = {m: r for m, r in carry.results.items() if r and not partial.results.get(m)}
    if not missing:
        return partial
    return replace(partial, results={**partial.results, **missing})


class ExplanationSession(pn.viewable.Viewer):
    """One image, its top classes and its explanation: the state all panes link to."""

    source = param.Parameter(default=None, allow_refs=True, doc=(
        "What to explain: an HxWx3 uint8 array, a file path, encoded image bytes or an ImageRecord."))
    source_name = param.String(default="", allow_refs=True, doc="A display name for the source (optional).")
    model = param.String(default=DEFAULT_MODEL, allow_refs=True,
                         doc="Classifier: efficientnet_lite0 (embedded), a torchvision name or a model file.")
    settings = param.ClassSelector(class_=ExplainerSettings, allow_refs=True, doc="What to compute and how.")
    top_k = param.Integer(5, bounds=(1, 10), doc="How many classes to explain.")
    labels = param.List(default=[], item_type=int, doc=(
        "Classes to explain beside the top-k (class indices; ``ask`` adds one by name): \"why not bus?\". "
        "Cleared when another image or model is chosen."))
    preview = param.Integer(100, bounds=(0, None), doc=(
        "Show LIME fitted on the first this many samples while the rest are computed (0: no preview)."))
    cache = param.Parameter(default=None, doc="An ExplanationCache (get/put); None: the process-wide one.")
    store = param.Parameter(default=None, doc=(
        "An ExplanationStore (SQLite) read before computing and written after: results precomputed with "
        "`xai-panel precompute` and the same settings show at once, new ones are kept. None: memory only."))
    metrics = param.ListSelector(default=list(DASHBOARD_METRICS), objects=list(METRICS), doc=(
        "Trust metrics measured after the explanations (never delaying them), cached and stored with them."))
    metric_settings = param.Dict(default=dict(INTERACTIVE_METRICS), doc=(
        "Settings of the metrics (xai_panel.metrics.trust.METRIC_SETTINGS); the dashboards' default measures "
        "deletion and insertion in 10 steps, not one per superpixel."))

    image = param.Array(default=None, allow_None=True, constant=True, doc="The decoded image (read-only).")
    image_name = param.String(default="", constant=True, doc="Name of the image shown (read-only).")
    requested = param.String(default="", constant=True,
                             doc="Name of the image asked for last, shown or still loading (read-only).")
    image_digest = param.String(default="", constant=True, doc="SHA-256 of the decoded pixels (read-only).")
    model_id = param.String(default="", constant=True, doc="Id of the classifier used (read-only).")
    top = param.List(default=[], item_type=ClassScore, constant=True,
                     doc="The top classes, most probable first (read-only).")
    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, constant=True,
                                      doc="The explanation so far: methods appear as they finish (read-only).")
    status = param.Selector(default="idle", objects=list(STATUSES), constant=True, doc="Where the job is (read-only).")
    running = param.String(default="", constant=True, doc="The method being computed (read-only).")
    progress = param.Number(default=0.0, bounds=(0, 1), constant=True,
                            doc="Fraction of the running method's model passes done (read-only).")
    pending = param.List(default=[], constant=True, doc="Methods requested but not finished yet (read-only).")
    method_errors = param.Dict(default={}, constant=True, doc="Per method, why it failed (read-only).")
    error = param.String(default="", constant=True, doc="Why the image could not be explained (read-only).")
    from_cache = param.Boolean(default=False, constant=True, doc="The explanation came from the cache (read-only).")
    from_store = param.Boolean(default=False, constant=True, doc=(
        "The explanation came from the SQLite store, not the memory cache nor a computation (read-only)."))
    shown_preset = param.String(default="", constant=True, doc=(
        "The preset (xai_panel.presets) the explanation shown was computed with, 'custom' for other settings, "
        "'' before one is shown (read-only)."))
    refinable = param.Boolean(default=False, constant=True, doc=(
        "The explanation shown is another preset's, found in the store because the current settings' result "
        "is not there: refine() computes it with the current settings (read-only)."))
    timings = param.Dict(default={}, constant=True,
                         doc="Seconds from the request to: 'top', each method, 'done', 'trust' (read-only).")
    measuring = param.Boolean(default=False, constant=True,
                              doc="The trust metrics of the explanation shown are being measured (read-only).")
    metrics_error = param.String(default="", constant=True,
                                 doc="Why the trust metrics could not be measured (read-only).")

    def __init__(self, **params):
        params.setdefault("settings", ExplainerSettings())
        super().__init__(**params)
        self._runner = JobRunner("explain")  # the fast lane: decode, top classes, cache
        self._compute = JobRunner("explain-compute", queue=compute_queue(), pool=compute_executor)
        self._lanes = threading.Lock()  # the fast job hands over to the compute lane, or a refresh cancels it
        self._prerenders: list = []
        self._prefetcher = JobRunner("prefetch")  # background: yields to every visitor's job
        self._asked_for = (None if self.source is None else id(self.source), self.model)
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: (self.cancel(), self._prefetcher.cancel()))
        if self.source is not None:
            self.refresh()

    # -- public API ----------------------------------------------------------------------
    def ask(self, label) -> int:
        """Explain the class ``label`` (an index, or a name of the model's classes, case-insensitive)
        beside the top-k; returns its index. A bad name or index is a ``ValueError`` saying why,
        and nothing changes."""
        (index,) = check_labels([label], self.classifier.class_names)
        if index not in self.labels:
            self.labels = sorted([*self.labels, index])
        return index

    @param.depends("source", "model", "settings", "settings.request", "top_k", "labels", "metrics",
                   "metric_settings", watch=True)
    def refresh(self) -> None:
        """(Re)start the job for the current source, model and settings.

        When the store lacks the current settings' explanation but holds one of another preset
        for the same image and model, that one is shown (``shown_preset``, ``refinable``)."""
        self._start(other_presets=True)

    def refine(self) -> None:
        """Explain the image with the current settings, even when another preset's
        explanation of it is stored (the one ``refinable`` says is shown)."""
        self._start(other_presets=False)

    def _start(self, other_presets: bool) -> None:
        if self.source is None:
            self._asked_for = (None, self.model)
            self.cancel()
            self._set(image=None, image_name="", requested="", image_digest="", top=[], explanation=None, status="idle",
                      running="", progress=0.0, pending=[], method_errors={}, error="", from_cache=False, timings={},
                      measuring=False, metrics_error="", from_store=False, shown_preset="", refinable=False)
            return
        # The classes asked for belong to one image and model (asked before the first image: kept for it).
        asked_for = (id(self.source), self.model)
        if asked_for != self._asked_for and self._asked_for[0] is not None and self.labels:
            with param.parameterized.discard_events(self):
                self.labels = []
        self._asked_for = asked_for
        request = dict(self.settings.request, top_k=int(self.top_k), labels=tuple(self.labels))
        shown = (self.explanation, self.image_digest)
        # Snapshots of the explainers (custom subclasses included): later edits of the
        # settings must not change a computation that is already running.
        explainers = {m: self.settings.explainer(m) for m in request["methods"]}
        name = self.source_name or _describe(self.source)
        # Cancelled before the page's update, so the previous image's passes give the cores back at
        # once; again below, with the fast job's replacement, in case it handed over meanwhile.
        with self._lanes:
            self._compute.cancel()
        self._set(status="loading", requested=name, error="", running="", progress=0.0, from_cache=False,
                  pending=list(request["methods"]), method_errors={}, measuring=False, metrics_error="",
                  from_store=False, refinable=False)
        with self._lanes:
            self._compute.cancel()
            self._runner.start(self._work, self.source, name, self.model, request, explainers, other_presets, shown)

    def prefetch(self, records) -> None:
        """Read the stored explanations of ``records`` (``ImageRecord``s: the gallery's page) with
        the current settings, or another preset's (what a click would show), into the memory cache
        and draw their tiles, in the background: a click on a precomputed image then costs what a
        revisit costs. Each image waits while a visitor's job runs, but not for pages being
        built (which hold the model's background batches back): the click it prepares may come
        at any moment after the page is shown. An image the store has nothing of is skipped
        without being read, known by its file's hash (``ExplanationStore.file_hashes``,
        remembered by precompute and the label grid). A later call replaces a running one;
        nothing happens without a store."""
        records = [r for r in records if isinstance(r, ImageRecord)]
        if self.store is None or not records:
            self._prefetcher.cancel()
            return
        request = dict(self.settings.request, top_k=int(self.top_k), labels=())
        explainers = {m: self.settings.explainer(m) for m in request["methods"]}
        self._prefetcher.start(self._prefetch_work, records, self.model, request, explainers, interactive=False)

    def wait_prefetched(self, timeout: float | None = 60) -> "ExplanationSession":
        """Block until the running ``prefetch`` is done (tests, scripts)."""
        self._prefetcher.wait(timeout)
        return self

    def _prefetch_work(self, job: Job, records: list, model: str, request: dict, explainers: dict) -> None:
        store = self.store
        known = store.file_hashes(str(r.path) for r in records)
        if not known:  # none of these files was ever explained into this store: no model needed
            return
        classifier = load_model(model)  # the warm-up may still be loading it: this pool thread waits
        wanted = self._request(classifier.model_id, {**request, "top_k": min(int(request["top_k"]),
                                                                              classifier.num_classes)})
        stored: set[str] = set()
        for other in (wanted, *(r for _, r in other_preset_requests(wanted))):
            stored.update(store.stored_images(other))
        service = ExplanationService(cache=self.cache if self.cache is not None else default_cache(), store=store)
        for record in records:
            if known.get(str(record.path)) not in stored:
                continue
            if not wait_for_foreground_idle(jobs_only=True, cancel=job.cancel):
                return
            try:
                image, digest = decoded_images().get(record.path, lambda record=record: _decode(record), image_hash)
            except (ImageError, OSError):  # a click says why
                continue
            found, _origin = service.locate(digest, wanted, explainers)
            if found is None:
                found = service.locate_preset(digest, wanted)[0]
            for render in self._prerenders if found is not None else ():
                try:
                    render(found)
                except Exception:  # drawn again on the click, where the error is reported
                    _log.exception("prerendering a prefetched explanation failed")

    def add_prerender(self, render) -> None:
        """Call ``render(explanation)`` in the worker before each explanation is published.

        Panes draw their pictures there (off the event loop), so publishing costs the page
        almost nothing; a failing renderer is logged and the explanation still goes out.
        """
        self._prerenders.append(render)

    def cancel(self) -> None:
        """Stop the running job (its partial results stay)."""
        with self._lanes:
            self._runner.cancel()
            self._compute.cancel()
        if self.status in ("loading", "explaining"):
            self._set(status="idle", running="", pending=[])

    def wait(self, timeout: float | None = 120) -> "ExplanationSession":
        """Block until the current job is finished (notebooks, scripts, tests)."""
        self._runner.wait(timeout)  # the fast lane starts the compute job, if any, before it ends
        self._compute.wait(timeout)
        return self

    @property
    def classifier(self):
        """The session's classifier (loaded once per process)."""
        return load_model(self.model)

    # -- the job -------------------------------------------------------------------------
    def _set(self, **values) -> None:
        with param.edit_constant(self):
            self.param.update(**values)

    def _publish(self, job: Job, **values) -> None:
        runner = self._compute if job.name == self._compute.name else self._runner
        explanation = values.get("explanation")
        if explanation is not None and runner.is_current(job):
            for render in self._prerenders:
                try:
                    render(explanation)
                except Exception:  # drawing is retried on the page, where the error is reported
                    _log.exception("prerendering an explanation failed")
        runner.publish(job, lambda: self._set(**values))

    def _work(self, job: Job, source, name: str, model: str, request: dict, explainers: dict,
              other_presets: bool = True, shown: tuple = (None, "")) -> None:
        timings: dict[str, float] = {}
        try:
            if isinstance(source, (ImageRecord, str, os.PathLike)):  # a file: decoded once per version
                path = source.path if isinstance(source, ImageRecord) else source
                image, digest = decoded_images().get(path, lambda: _decode(source), image_hash)
            else:
                image = _decode(source)
                digest = None
        except (ImageError, OSError) as exc:
            self._publish(job, status="error", error=str(exc), image=None, top=[], explanation=None, pending=[])
            return
        try:
            classifier = load_model(model)
        except (ModelError, ValueError, OSError) as exc:
            self._publish(job, status="error", error=f"model {model!r} could not be loaded: {exc}", pending=[])
            return
        request = {**request, "top_k": min(int(request["top_k"]), classifier.num_classes)}  # a model of 3 classes
        view = classifier.prepare(image)
        digest = digest or image_hash(image)
        cache: ExplanationCache = self.cache if self.cache is not None else default_cache()  # an empty cache is falsy
        service = ExplanationService(cache=cache, store=self.store)
        try:
            check_labels(request.get("labels", ()), classifier.class_names)  # in range for this model
            wanted = self._request(classifier.model_id, request)
        except ValueError as exc:  # settings that cannot be explained (checked again here, to say so)
            self._publish(job, status="error", error=str(exc), pending=[])
            return
        cached, origin = service.locate(digest, wanted, explainers)
        preset_name = self._preset_of(wanted)
        if cached is None and other_presets:
            found, found_origin, other, other_name = service.locate_preset(digest, wanted)
            if found is not None:
                self._adopt(job, found, found_origin, other, other_name, image, name, digest, view, classifier,
                            service, timings, source)
                return
        if cached is not None:
            timings["top"] = timings["done"] = job.elapsed()
            unmeasured = self._unmeasured(cached)
            self._publish(job, image=image, image_name=name, image_digest=digest, model_id=classifier.model_id,
                          top=list(cached.top), explanation=cached, status="done", pending=[], running="",
                          progress=1.0, from_cache=True, from_store=origin == "store", shown_preset=preset_name,
                          refinable=False, timings=timings, measuring=unmeasured)
            if unmeasured:
                with self._lanes:
                    if self._runner.is_current(job):
                        try:
                            self._compute.start(self._measure_work, cached, classifier, service, wanted, explainers,
                                                timings, job.started, digest, interactive=False)
                        except ServerBusy as exc:
                            self._publish(job, measuring=False, metrics_error=str(exc))
            return
        probs = classifier.predict_proba(view[None])[0]
        top = top_k_of(probs, classifier.class_names, int(request["top_k"]))
        timings["top"] = job.elapsed()
        methods = list(wanted.methods)
        # The top classes go out on their own, before the panes are reset for the new image.
        self._publish(job, image=image, image_name=name, image_digest=digest, model_id=classifier.model_id,
                      top=top, status="explaining" if methods else "done", pending=methods, timings=dict(timings),
                      shown_preset=preset_name, refinable=False)
        carry = _carried_from(shown, digest, classifier, wanted, probs)
        self._publish(job, explanation=carry)
        if not methods:
            return
        try:
            early, segments = self._quick(job, view, classifier, wanted, explainers, timings, carry)
        except Cancelled:
            return
        with self._lanes:  # hand over to the compute lane, unless a newer request came meanwhile
            if not self._runner.is_current(job):
                return
            try:
                self._compute.start(self._compute_work, view, classifier, service, wanted, explainers, timings,
                                    job.started, digest, source if isinstance(source, ImageRecord) else None, early,
                                    segments, carry)
            except ServerBusy as exc:
                self._publish(job, status="error", error=str(exc), pending=[])

    @staticmethod
    def _preset_of(request: ExplainRequest) -> str:
        from ...presets import matching_preset

        return matching_preset(request.segmentation, request.segmentation_params,
                               {m: request.settings[m] for m in request.methods}) or "custom"

    def _adopt(self, job: Job, found: Explanation, origin: str, request: ExplainRequest, preset_name: str, image,
               name: str, digest: str, view, classifier, service: ExplanationService, timings: dict, source) -> None:
        """Show another preset's explanation of the image (found in the store, or in memory after
        that): at once, with a way to refine it. Methods it lacks are computed with its
        preset's settings in the compute lane, on its stored superpixels, so the panes agree."""
        timings["top"] = job.elapsed()
        missing = [m for m in request.methods if m not in found.costs]
        if not missing:
            timings["done"] = timings["top"]
        unmeasured = not missing and self._unmeasured(found)
        self._publish(job, image=image, image_name=name, image_digest=digest, model_id=classifier.model_id,
                      top=list(found.top), explanation=found, status="explaining" if missing else "done",
                      pending=missing, running=missing[0] if missing else "", progress=0.0 if missing else 1.0,
                      from_cache=True, from_store=origin == "store", shown_preset=preset_name, refinable=True,
                      timings=dict(timings), measuring=unmeasured)
        if not missing and not unmeasured:
            return
        with self._lanes:
            if not self._runner.is_current(job):
                return
            try:
                if missing:
                    self._compute.start(self._compute_work, view, classifier, service, request, {}, timings,
                                        job.started, digest, source if isinstance(source, ImageRecord) else None,
                                        found, found.segmentation)
                else:
                    self._compute.start(self._measure_work, found, classifier, service, request, {}, timings,
                                        job.started, digest, interactive=False)
            except ServerBusy as exc:
                self._publish(job, measuring=False, metrics_error=str(exc), **(
                    {"status": "error", "error": str(exc), "pending": []} if missing else {}))

    def _quick(self, job: Job, view, classifier, request: ExplainRequest, explainers: dict,
               timings: dict, carry: Explanation | None = None) -> tuple[Explanation | None, Segmentation | None]:
        """The request's quick methods (``Explainer.quick``: Grad-CAM, one forward and one backward
        pass) computed here in the fast lane and published at once, so a click shows an
        explanation right after its top classes instead of after the compute lane's admission
        and the perturbation methods' set-up; the compute lane then runs only the rest. A method
        the classifier refuses (an ONNX file has no gradients) or that fails is left to the
        compute lane, which reports it with the others.

        Their pixel maps need no superpixels: they are computed on a placeholder segmentation
        (one superpixel) and published before the image is segmented (the segmentation took
        most of the first pane's time: 0.29 of 0.34 s); then the image is segmented here,
        the maps' superpixel means follow, and the segmentation goes on to the compute lane.
        Returns (the quick methods' explanation, the segmentation), each None if not made."""
        kwargs = request.explain_kwargs()
        settings = {m: explainers.get(m, kwargs["settings"][m]) for m in kwargs["methods"]}
        quick = []
        for m in kwargs["methods"]:
            if not method_class(m).quick or not issubclass(method_class(m).result_type, GradientResult):
                continue
            try:
                make_explainer(m, settings[m]).check(classifier)
            except ModelError:
                continue
            quick.append(m)
        if not quick:
            return None, None
        placeholder = Segmentation(np.zeros(view.shape[:2], np.int32), PLACEHOLDER_SEGMENTATION)
        try:
            early = explain(view, classifier, methods=quick, top_k=kwargs["top_k"], labels=kwargs["labels"],
                            seed=kwargs["seed"],
                            segments=placeholder, fill=kwargs["fill"], settings={m: settings[m] for m in quick},
                            cancel=job.cancel)
        except Cancelled:
            raise
        except Exception:  # the compute lane runs it again and reports the failure with the others
            _log.exception("the quick methods failed in the fast lane")
            return None, None
        for m in quick:
            timings[m] = job.elapsed()
        remaining = [m for m in request.methods if m not in early.costs]
        self._publish(job, explanation=_with_carry(early, carry), pending=remaining,
                      running=remaining[0] if remaining else "", timings=dict(timings))
        segments = segment(view, kwargs["segmentation"], seed=0, **dict(kwargs["segmentation_params"] or {}))
        if job.cancel.is_set():
            raise Cancelled()
        early = replace(early.with_results(costs=early.costs, **{m: with_superpixels(early.results[m], segments.labels)
                                                                  for m in quick}),
                        segmentation=segments, settings={**early.settings, "segmentation": segments.algorithm,
                                                         "segmentation_params": dict(segments.params)})
        self._publish(job, explanation=_with_carry(early, carry))
        return early, segments

    @staticmethod
    def _request(model_id: str, request: dict) -> ExplainRequest:
        return ExplainRequest.create(model_id, request["methods"], top_k=int(request["top_k"]),
                                     seed=int(request["seed"]), segmentation=request["segmentation"],
                                     segmentation_params=request["segmentation_params"], fill=request["fill"],
                                     settings=request["settings"], labels=request.get("labels", ()))

    def _compute_work(self, job: Job, view, classifier, service: ExplanationService, request: ExplainRequest,
                      explainers: dict, timings: dict, started: float, digest: str,
                      record: ImageRecord | None, early: Explanation | None = None,
                      segments: Segmentation | None = None, carry: Explanation | None = None) -> None:
        job.started = started  # timings count from the click, not from the admission
        methods = list(request.methods)
        shown: set[str] = set(early.costs) & set(methods) if early is not None else set()
        last = [0.0]
        names = set(available_methods())

        def progress(method: str, n: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] >= _PROGRESS_INTERVAL and method in names:
                last[0] = now
                self._publish(job, running=method, progress=min(1.0, n / max(total, 1)))

        def on_method(partial: Explanation) -> None:
            for m in partial.methods:
                if m not in shown and m not in partial.preview:
                    shown.add(m)
                    timings[m] = job.elapsed()
            errors = dict(partial.errors)
            remaining = [m for m in methods if m not in shown and m not in errors]
            self._publish(job, explanation=_with_carry(partial, carry), pending=remaining,
                          running=remaining[0] if remaining else "", progress=0.0, timings=dict(timings),
                          method_errors=errors)

        try:
            # Kept in the memory cache even if another image was asked for meanwhile: finished
            # work is not lost. Stored only after the page has it (below).
            result = service.compute(view, classifier, request, image_hash=digest, explainers=explainers,
                                     stored=early, record=record, write="none", progress=progress, cancel=job.cancel,
                                     on_method=on_method, preview=int(self.preview), segments=segments)
        except Cancelled:
            return
        except MethodsFailed as exc:
            result, errors = None, exc.errors
        except Exception as exc:  # not one method's failure: the image or the model
            _log.exception("explaining failed")
            self._publish(job, status="error", error=f"{type(exc).__name__}: {exc}", pending=[], running="")
            return
        else:
            errors = dict(result.errors)
        if self._compute.is_current(job):
            timings["done"] = job.elapsed()
            self._publish(job, explanation=result, status="done", pending=[], running="", progress=1.0,
                          method_errors=errors, timings=dict(timings))
        if result is not None and set(errors) <= set(result.refused):  # after the page has it: a slow store delays nothing
            service.keep(result, digest, request, explainers, record=record)
        if result is not None and self._compute.is_current(job) and self._unmeasured(result):
            self._measure(job, result, classifier, service, request, explainers, timings, digest)

    # -- the trust metrics, after the explanations -------------------------------------------
    def _unmeasured(self, result: Explanation) -> bool:
        """Whether ``result`` lacks a requested metric (or has it with other settings)."""
        from ...metrics.faithfulness import ranked_methods

        if not self.metrics:
            return False
        try:
            names, merged = check_metrics(self.metrics, self.metric_settings)
        except ValueError:
            return True  # measuring says why, in ``metrics_error``
        if "faithfulness" in names:
            settings = {k: merged[k] for k in ("steps", "random_orders", "seed")}
            if result.metric_settings.get("faithfulness") != settings and ranked_methods(result):
                return True
            if any(m not in result.faithfulness for m in ranked_methods(result)):
                return True
        return "agreement" in names and not result.agreement and len(result.methods) > 1

    def _measure_work(self, job: Job, result, classifier, service, request, explainers, timings, started, digest):
        """The trust metrics of an explanation shown from the cache or the store: measured once
        the page has it (no visitor's job running, nor its result being sent and drawn), so its
        passes do not take the cores from the click that showed it (they made a revisit 0.3-0.4 s
        against 0.2 s); a click meanwhile cancels them, as it does the explanations' work."""
        job.started = started
        if not wait_for_foreground_idle(cancel=job.cancel):
            return
        self._measure(job, result, classifier, service, request, explainers, timings, digest)

    def _measure(self, job: Job, result, classifier, service: ExplanationService, request: ExplainRequest,
                 explainers: dict, timings: dict, digest: str) -> None:
        self._publish(job, measuring=True, metrics_error="")
        try:
            measured = service.measure(result, classifier, digest, request, self.metrics,
                                       settings=self.metric_settings, explainers=explainers, cancel=job.cancel)
        except Cancelled:
            return
        except Exception as exc:  # the explanations stay; the trust pane says why
            _log.exception("measuring the trust metrics failed")
            self._publish(job, measuring=False, metrics_error=f"{type(exc).__name__}: {exc}")
            return
        timings["trust"] = job.elapsed()
        self._publish(job, explanation=measured, measuring=False, timings=dict(timings))

    # -- view ------------------------------------------------------------------------------
    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(pn.bind(self._status_text, self.param.status, self.param.running,
                                     self.param.requested, self.param.error, self.param.from_cache,
                                     self.param.timings, self.param.from_store, self.param.shown_preset,
                                     self.param.refinable), margin=(0, 5)),
            pn.widgets.Button(name="Refine with the current settings", button_type="primary", button_style="outline",
                              on_click=lambda _event: self.refine(), visible=self.param.refinable, margin=(0, 5),
                              description="Compute this image's explanation with the settings chosen now "
                                          "(the one shown is another preset's, from the store)"),
            pn.indicators.Progress(value=(self.param.progress.rx() * 100).rx.pipe(int), max=100, height=8,
                                   sizing_mode="stretch_width", bar_color="primary",
                                   visible=self.param.status.rx() == "explaining"),
            sizing_mode="stretch_width",
        )

    @staticmethod
    def _status_text(status, running, name, error, from_cache, timings, from_store=False, shown_preset="",
                     refinable=False) -> str:
        if status == "idle":
            return "Select an image to explain it."
        if status == "error":
            return f"**Could not explain {name or 'this image'}:** {error}"
        if status == "loading":
            return f"Loading {name}…"
        if status == "explaining":
            return f"Explaining **{name}**: {running or 'preparing'}…"
        total = timings.get("done", 0.0)
        named = f" ({shown_preset} preset)" if shown_preset and shown_preset != "custom" else ""
        if from_store:
            return f"**{name}** explained in {total:.2f} s, from the store{named}"
        if from_cache and refinable:
            return f"**{name}** explained in {total:.2f} s (from cache){named}"
        return f"**{name}** explained in {total:.2f} s" + (" (from cache)" if from_cache else "")
