"""A label at a glance: every image of one label, each card showing one method's stored explanation.

The LIME notebook among the seeds asks one question: *for a given label, show the explanation
of every image of that label*. ``LabelGrid`` shows the gallery's label (true or predicted, as
the gallery groups; with "All images", the selected image's label) a page at a time. Each card
is the chosen method's map for the image's predicted class (or the label's class), read from
the store without recomputing and drawn by the method's own pane class (the same overlay and
colour scale as its card: a score method's scale spans that image's classes), with the class's
probability and, when stored, its faithfulness (deletion and insertion AUC). Clicking a card
selects the image in the gallery, so the detail panes show it.

``explain_label`` computes what the store lacks for the label's images: every method the
settings request (what a click would compute, so the detail panes then open from the store)
and the trust metrics, in the compute lane, one image per job, so a click's explanation waits
for at most one image; each image is stored as it finishes and its card fills. It can be
cancelled; what finished stays stored.

Cards are small JPEG tiles in one ``ThumbnailGrid`` (no plot per card), drawn off the event
loop, and only while the grid is shown (``active``): a hidden grid costs a click nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import panel as pn
import param
from cachetools import LRUCache
from PIL import Image

from ...data import ImageError, ImageRecord, image_hash
from ...engine.perturbation import Cancelled
from ...engine.request import ExplainRequest
from ...engine.results import Explanation
from ...engine.service import ExplanationService, MethodsFailed, other_preset_requests
from ...methods.base import available_methods, method_label
from ...metrics.trust import METRICS
from ...render.thumbnails import PLACEHOLDER, ThumbnailStore
from ...render.tiles import encode
from ...runtime.cache import decoded_images, default_cache
from ...runtime.jobs import Job, JobRunner, ServerBusy, compute_executor, compute_queue
from ...runtime.jobs import classifier as load_model
from ..panes.base import MethodPane, pane_class
from ..state.session import INTERACTIVE_METRICS, ExplanationSession
from .gallery import ALL, Gallery
from .settings import ExplainerSettings
from .thumbgrid import ThumbnailGrid

__all__ = ["LabelGrid", "TARGETS", "stored_in_another_preset", "stored_result"]

_log = logging.getLogger(__name__)
TARGETS = {"Predicted class": "predicted", "The label's class": "label"}
STATUSES = ("idle", "running", "done", "cancelled", "error")
_PROGRESS_INTERVAL = 0.25  # seconds between progress updates sent to the page
_tiles: LRUCache = LRUCache(maxsize=4096)  # (result key, class, side, how drawn) -> data URL, for every session
_tiles_lock = threading.Lock()
_thumbnails: dict[int, ThumbnailStore] = {}


def stored_result(store, image_hash: str, request: ExplainRequest, method: str) -> Explanation | None:
    """``method``'s stored explanation of this image for ``request`` (None: not stored, or it no longer decodes).

    The one place the grid reads the store: the same request as the gallery's session makes,
    narrowed to one method (its keys do not change), with the trust metrics stored for it.
    Store errors propagate.
    """
    found = store.get(image_hash, request.with_methods([method]))
    return found if found is not None and method in found.costs else None


def stored_in_another_preset(store, image_hash: str, request: ExplainRequest, method: str
                             ) -> tuple[Explanation | None, ExplainRequest | None, str]:
    """When ``request`` itself is not stored: ``method``'s result of another preset (``xai-panel precompute
    --preset thorough``, or the dashboards' settings were changed since), as the gallery's session shows it.
    Returns (explanation, its request, the preset's name); (None, None, "") when no preset has it."""
    for name, other in other_preset_requests(request.with_methods([method])):
        found = stored_result(store, image_hash, other, method)
        if found is not None:
            return found, other, name
    return None, None, ""


def _thumbnail_store(size: int) -> ThumbnailStore:
    if size not in _thumbnails:
        _thumbnails[size] = ThumbnailStore(size)
    return _thumbnails[size]


@dataclass
class _Plan:
    """One run of ``explain_label``: what to do, snapshotted when it was asked for, and how far it got."""

    label: str
    records: list[ImageRecord]
    model: str
    request: dict
    top_k: int
    explainers: dict
    metrics: list
    metric_settings: dict
    position: int = 0
    computed: list[str] = field(default_factory=list)  # images whose explanations were computed
    measured: list[str] = field(default_factory=list)  # images only measured (their explanations were stored)
    failed: dict[str, str] = field(default_factory=dict)


class LabelGrid(pn.viewable.Viewer):
    """Every image of the gallery's label, each with one method's stored map; ``explain_label`` fills the gaps."""

    gallery = param.ClassSelector(class_=Gallery, doc="The gallery whose label is shown and whose selection a click sets.")
    settings = param.ClassSelector(class_=ExplainerSettings, doc=(
        "The dashboards' settings: the grid shows the results stored with them, and explain_label computes with them."))
    store = param.Parameter(default=None, doc="The ExplanationStore read for the cards and written by explain_label.")
    top_k = param.Integer(default=5, bounds=(1, 10), doc="Classes per explanation, as the session's (part of the keys).")
    metrics = param.ListSelector(default=["faithfulness", "agreement"], objects=list(METRICS), doc=(
        "Trust metrics explain_label measures after each image's explanations (as the session does)."))
    metric_settings = param.Dict(default=dict(INTERACTIVE_METRICS), doc="Settings of those metrics, as the session's.")
    method = param.Selector(default=None, objects=[], allow_None=True, doc=(
        "The method whose map each card shows: one of the methods the settings request."))
    target = param.Selector(default="predicted", objects=TARGETS, doc=(
        "The class each card explains: the image's predicted class, or the label's class."))
    page = param.Integer(default=1, bounds=(1, None), doc="Page of the label's images (from 1).")
    page_size = param.Integer(default=12, bounds=(4, 60), doc="Cards per page.")
    thumbnail_size = param.Integer(default=150, bounds=(64, 320), doc="Side of a card's picture in pixels.")
    active = param.Boolean(default=False, doc=(
        "The grid is shown: only then does it follow the gallery, read the store and draw."))

    label = param.String(default="", constant=True, doc="The label shown ('' when none is chosen; read-only).")
    records = param.List(default=[], constant=True, doc="Ids of the label's images, in the gallery's order (read-only).")
    page_count = param.Integer(default=1, constant=True, doc="Pages of the label (read-only).")
    status = param.Selector(default="idle", objects=list(STATUSES), constant=True,
                            doc="Where explain_label is (read-only).")
    progress = param.Number(default=0.0, bounds=(0, 1), constant=True,
                            doc="Share of the label's images explain_label has been through (read-only).")
    done = param.Integer(default=0, constant=True, doc="Images explain_label has been through (read-only).")
    total = param.Integer(default=0, constant=True, doc="Images explain_label goes through (read-only).")
    current = param.String(default="", constant=True, doc="The image being explained (read-only).")
    message = param.String(default="", constant=True, doc="What the last action found or why it failed (read-only).")

    def __init__(self, **params):
        super().__init__(**params)
        self._pages = JobRunner("label-grid")  # the fast lane: hashes, store reads, tiles
        self._explainer = JobRunner("label-explain", queue=compute_queue(), pool=compute_executor)
        self._plan: _Plan | None = None
        self._drawers: dict[str, MethodPane] = {}
        self._grid = ThumbnailGrid(size=self.thumbnail_size, sizing_mode="stretch_width",
                                   empty_text="No images for this label.")
        self._grid.param.watch(self._on_click, "clicked")
        self._methods()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: self.cancel())
        self._follow()

    # -- public ------------------------------------------------------------------------------
    def explain_label(self) -> Job | None:
        """Explain the label's images the store lacks, one image per job in the compute lane.

        Returns the first job (None when there is nothing to do: no store, no images, the
        server busy; ``message`` says which).
        """
        if self.store is None:
            self._set(message="No explanation store: the grid shows only stored results, so there is nothing to fill.")
            return None
        if not self.records:
            self._set(message="This label has no images to explain.")
            return None
        if self.settings is None or not self.settings.request.get("methods"):
            self._set(message="The settings request no method: choose some under Explainer settings.")
            return None
        request = dict(self.settings.request)
        plan = _Plan(label=self.label, records=[self.gallery.dataset.get(i) for i in self.records],
                     model=self.gallery.model, request=request, top_k=int(self.top_k),
                     explainers={m: self.settings.explainer(m) for m in request["methods"]},
                     metrics=list(self.metrics), metric_settings=dict(self.metric_settings))
        self._plan = plan
        self._set(status="running", progress=0.0, done=0, total=len(plan.records), current="", message="")
        return self._continue(plan)

    def cancel(self) -> None:
        """Stop explain_label (the images it finished stay stored)."""
        self._explainer.cancel()
        if self.status == "running":
            plan = self._plan
            done = len(plan.computed) if plan is not None else 0
            self._set(status="cancelled", current="",
                      message=f"Cancelled: {done} image{'s' if done != 1 else ''} explained and stored before.")

    def wait(self, timeout: float | None = 600) -> "LabelGrid":
        """Block until explain_label and the page being drawn are finished (notebooks and tests)."""
        end = None if timeout is None else time.monotonic() + timeout
        left = lambda: None if end is None else max(0.0, end - time.monotonic())  # noqa: E731
        while True:
            job = self._explainer.job
            if job is None or job.future is None:
                break
            job.future.result(timeout=left())
            if self._explainer.job is job:  # the run did not hand over to a next job
                break
        self._pages.wait(left())
        return self

    def items(self) -> list[dict]:
        """The cards shown now (id, src, caption, badge, status, tooltip, detail)."""
        return list(self._grid.items)

    # -- state -------------------------------------------------------------------------------
    def _set(self, **values) -> None:
        with param.edit_constant(self):
            self.param.update(**values)

    @param.depends("settings.request", watch=True)
    def _methods(self) -> None:
        requested = self.settings.request.get("methods", ()) if self.settings is not None else ()
        options = {method_label(m): m for m in available_methods() if m in requested and pane_class(m) is not None}
        if options != self.param.method.names:
            self.param.method.objects = options
        if self.method not in options.values():
            self.method = next(iter(options.values()), None)

    def _current_label(self) -> str:
        g = self.gallery
        if g is None:
            return ""
        if g.label != ALL:
            return g.label
        record = g.selected_record
        return (g.label_of(record) or "") if record is not None else ""

    @param.depends("active", watch=True)
    def _opened(self) -> None:
        if self.active:  # the store may have changed while the grid was hidden: drawn again
            self._follow(force=True)

    @param.depends("gallery.label", "gallery.group_by", "gallery.records", "gallery.selected_record", watch=True)
    def _follow(self, force: bool = False) -> None:
        if self.gallery is not None:
            self._grid.selected = self.gallery.selected
        if not self.active:
            return
        label = self._current_label()
        g = self.gallery
        if not label:
            ids = []
        elif label == g.label:
            ids = list(g.records)
        else:
            ids = [r.id for r in g.dataset if g.label_of(r) == label]
        if label == self.label and ids == self.records and not force:
            return
        self._set(label=label, records=ids)
        self._grid.empty_text = ("No images for this label." if label else
                                 "Choose a label in the sidebar (or select an image) to see its images here.")
        if self.page != 1:
            self.page = 1  # draws the page
        else:
            self._render()

    @param.depends("method", "target", "page", "page_size", "thumbnail_size", "settings.request", "top_k", watch=True)
    def _render(self) -> None:
        self._set(page_count=max(1, math.ceil(len(self.records) / self.page_size)))
        if not self.active:
            return
        if self.page > self.page_count:
            self.page = self.page_count
            return
        start = (self.page - 1) * self.page_size
        records = [self.gallery.dataset.get(i) for i in self.records[start : start + self.page_size]]
        self._grid.size = self.thumbnail_size
        drawer = self._drawer(self.method)
        request = dict(self.settings.request) if self.settings is not None else {}
        self._pages.start(self._render_work, records, request, drawer, self._view())

    def _view(self) -> tuple:
        """What a page of cards depends on besides the store (a card drawn for another view is dropped)."""
        return (self.label, self.method, self.target, self.thumbnail_size, self.gallery.group_by, int(self.top_k))

    def _drawer(self, method: str | None) -> MethodPane | None:
        """The pane that draws ``method``'s maps (one per method and grid, never shown)."""
        if method is None:
            return None
        if method not in self._drawers:
            self._drawers[method] = pane_class(method)(method=method)
        return self._drawers[method]

    # -- cards (in the fast lane) ------------------------------------------------------------
    def _render_work(self, job: Job, records: list[ImageRecord], request: dict, drawer, view: tuple) -> None:
        thumbs = _thumbnail_store(view[3])
        plain = {r.id: thumbs.data_uri(r) for r in records}
        if job.cancelled:
            return
        self._pages.publish(job, lambda: setattr(self._grid, "items", [
            self._plain_card(r, plain[r.id], "looking in the store…") for r in records]))
        try:
            wanted = self._request(request, view[5])
        except Exception as exc:  # the model or the settings: said on the page, the gallery goes on
            message = f"The label's results cannot be looked up: {exc}"
            self._pages.publish(job, lambda: self._set(message=message))
            return
        hashes = self._hashes(records)
        cards = []
        for record in records:
            if job.cancelled:
                return
            cards.append(self._safe_card(record, hashes.get(record.id), wanted, drawer, view, plain[record.id]))
        self._pages.publish(job, lambda: setattr(self._grid, "items", cards))

    def _request(self, request: dict, top_k: int) -> ExplainRequest:
        classifier = load_model(self.gallery.model)
        top_k = min(int(top_k), classifier.num_classes)
        return ExplanationSession._request(classifier.model_id, dict(request, top_k=top_k))

    def _hashes(self, records: list[ImageRecord]) -> dict[str, str | None]:
        """Record id -> hash of its decoded pixels (None: unreadable), remembered in the store per file version."""
        paths = {str(r.path): r for r in records}
        try:
            known = self.store.file_hashes(paths) if self.store is not None else {}
        except Exception:  # a shortcut only: decode instead
            known = {}
        out, fresh = {}, {}
        for path, record in paths.items():
            if path in known:
                out[record.id] = known[path]
                continue
            try:
                out[record.id] = fresh[path] = decoded_images().get(record.path, record.load, image_hash)[1]
            except (ImageError, OSError):
                out[record.id] = None
        if fresh and self.store is not None:
            try:
                self.store.remember_file_hashes(fresh)
            except Exception:  # only a shortcut for the next page
                _log.debug("remembering file hashes failed", exc_info=True)
        return out

    def _class_of_label(self, record: ImageRecord, group_by: str) -> int | None:
        """The class index of the label ``record`` is shown under (None: the label is no class of the model)."""
        if group_by == "label":
            return record.label
        prediction = self.gallery.prediction(record.id)
        return prediction.index if prediction is not None else None

    def _plain_card(self, record: ImageRecord, src: str, detail: str) -> dict:
        p = self.gallery.prediction(record.id)
        badge = f"{p.name} · {p.probability:.0%}" if p is not None else ""
        tooltip = f"{record.id}\ntrue label: {record.label_name or 'none'}\n{detail}"
        return {"id": record.id, "src": src, "caption": record.name, "badge": badge, "status": "pending",
                "tooltip": tooltip, "detail": detail}

    def _safe_card(self, record: ImageRecord, digest: str | None, request: ExplainRequest, drawer, view: tuple,
                   plain: str, explanation: Explanation | None = None) -> dict:
        """``_card``, or the photo with the reason when drawing fails (the other cards still show)."""
        try:
            return self._card(record, digest, request, drawer, view, plain, explanation)
        except Exception as exc:
            _log.exception("drawing the label grid's card of %s failed", record.id)
            return self._plain_card(record, plain, f"could not be drawn ({type(exc).__name__}: {exc})")

    def _card(self, record: ImageRecord, digest: str | None, request: ExplainRequest, drawer, view: tuple,
              plain: str, explanation: Explanation | None = None) -> dict:
        """One image's card: the method's map for the target class when stored, else the photo with why not."""
        _, method, target, size, group_by, _ = view
        preset_name = ""
        if digest is None:
            return self._plain_card(record, PLACEHOLDER, "unreadable image")
        if method is None or drawer is None:
            return self._plain_card(record, plain, "no method requested")
        if explanation is None:
            if self.store is None:
                return self._plain_card(record, plain, "no store")
            try:
                explanation = stored_result(self.store, digest, request, method)
            except Exception as exc:  # a locked or damaged store: this card says so, the others still show
                return self._plain_card(record, plain, f"store unreadable ({type(exc).__name__})")
            if explanation is None:
                try:
                    unreadable = not self.store.missing(digest, request.with_methods([method]))
                    if not unreadable:
                        explanation, other, preset_name = stored_in_another_preset(self.store, digest, request, method)
                except Exception:
                    unreadable = False
                if explanation is None:
                    return self._plain_card(record, plain, "stored result unreadable: explain again" if unreadable
                                            else "not explained yet")
                request = other
        top = explanation.top
        label = top[0].index if target == "predicted" else self._class_of_label(record, group_by)
        scores = {c.index: c for c in top}
        truth = record.label
        status = "unknown" if truth is None else ("match" if truth == top[0].index else "mismatch")
        card = {"id": record.id, "caption": record.name, "status": status, "src": plain}
        if label is None or label not in explanation.results.get(method, {}):
            reason = ("the label is no class of the model" if label is None
                      else f"the label's class is not in its top {len(top)}")
            return {**card, "badge": f"{top[0].name} · {top[0].probability:.0%}", "detail": reason,
                    "tooltip": f"{record.id}\n{method_label(method)}: {reason}"}
        score = scores[label]
        card["src"] = self._tile(drawer, explanation, label, request.result_key(digest, method), size)
        faith = explanation.faithfulness.get(method, {}).get(label)
        detail = (f"deletion {faith.deletion_auc:.2f} · insertion {faith.insertion_auc:.2f}" if faith is not None
                  else "faithfulness not measured")
        if preset_name:  # another preset's result: said on the card, until explain_label computes the current one
            detail += f" · {preset_name} preset"
        tooltip = (f"{record.id}\ntrue label: {record.label_name or 'none'}\n{method_label(method)} for "
                   f"{score.name} ({score.probability:.1%})\n{detail}")
        return {**card, "badge": f"{score.name} · {score.probability:.0%}", "detail": detail, "tooltip": tooltip}

    @staticmethod
    def _tile(drawer: MethodPane, explanation: Explanation, label: int, result_key: str, size: int) -> str:
        key = (result_key, label, size, drawer.picture_key(explanation))
        with _tiles_lock:
            url = _tiles.get(key)
        if url is None:
            picture = Image.fromarray(np.asarray(drawer.picture(explanation, label), np.uint8))
            url = encode(np.asarray(picture.resize((size, size), Image.BILINEAR)), quality=85)
            with _tiles_lock:
                _tiles[key] = url
        return url

    # -- explain_label (in the compute lane) -----------------------------------------------------
    def _continue(self, plan: _Plan) -> Job | None:
        try:
            return self._explainer.start(self._explain_work, plan)
        except ServerBusy as exc:
            self._set(status="error", current="", message=f"{exc} ({len(plan.computed)} images explained so far)")
            return None

    def _explain_work(self, job: Job, plan: _Plan) -> None:
        """Go through the plan's images from where it stopped; after one image computed, hand the
        lane over to the next job (queued behind any click's explanation that came meanwhile)."""
        try:
            classifier = load_model(plan.model)
            request = self._request(plan.request, plan.top_k)
        except Exception as exc:  # the model or the settings
            message = f"The label could not be explained: {exc}"
            self._explainer.publish(job, lambda: self._set(status="error", current="", message=message))
            return
        service = ExplanationService(cache=default_cache(), store=self.store)
        while plan.position < len(plan.records):
            record = plan.records[plan.position]
            try:
                computed = self._explain_one(job, plan, record, classifier, request, service)
            except Cancelled:
                return
            except Exception as exc:  # not one image's failure (those are counted): stop and say why
                _log.exception("the label grid's explain_label failed")
                message = f"Explaining the label stopped at {record.id}: {type(exc).__name__}: {exc}"
                self._explainer.publish(job, lambda: self._set(status="error", current="", message=message))
                return
            plan.position += 1
            done = plan.position
            self._explainer.publish(job, lambda: self._set(done=done, progress=done / len(plan.records)))
            if computed and plan.position < len(plan.records):
                # Started from the event loop, after this job's updates: a job's updates that are
                # still waiting are dropped once a next job is current.
                self._explainer.publish(job, lambda: self._continue(plan))
                return
        self._explainer.publish(job, lambda: self._set(status="done", current="", progress=1.0,
                                                       message=self._summary(plan)))

    def _explain_one(self, job: Job, plan: _Plan, record: ImageRecord, classifier, request: ExplainRequest,
                     service: ExplanationService) -> bool:
        """Explain and store what the store lacks of one image; whether anything was computed."""
        from ...metrics.faithfulness import ranked_methods

        if job.cancelled:
            raise Cancelled()
        try:
            image, digest = decoded_images().get(record.path, record.load, image_hash)
        except (ImageError, OSError) as exc:
            plan.failed[record.id] = str(exc)
            return False
        # From the store itself, not the memory cache: the store is what the grid shows and what is filled.
        stored = ExplanationService(store=self.store).lookup(digest, request, plan.explainers, partial=True)
        missing = stored is None or not set(request.methods) <= set(stored.costs)
        unmeasured = "faithfulness" in plan.metrics and (
            stored is None or any(m not in stored.faithfulness for m in ranked_methods(stored)))
        if not missing and not unmeasured:
            return False
        position, total = plan.position, len(plan.records)
        self._explainer.publish(job, lambda: self._set(current=record.id, progress=position / total))
        last = [0.0]

        def progress(method: str, n: int, of: int) -> None:
            now = time.perf_counter()
            if now - last[0] >= _PROGRESS_INTERVAL:
                last[0] = now
                share = (position + min(1.0, n / max(of, 1))) / total
                self._explainer.publish(job, lambda: self._set(progress=min(share, 1.0)))

        try:
            result = stored
            if missing:
                result = service.compute(classifier.prepare(image), classifier, request, image_hash=digest,
                                         explainers=plan.explainers, stored=stored, record=record, write="each",
                                         progress=progress, cancel=job.cancel)
            if plan.metrics and result is not None:
                result = service.measure(result, classifier, digest, request, plan.metrics,
                                         settings=plan.metric_settings, explainers=plan.explainers, cancel=job.cancel)
        except Cancelled:
            raise
        except MethodsFailed as exc:
            plan.failed[record.id] = str(exc)
            return True
        except Exception as exc:  # this image fails; the label goes on
            _log.exception("explaining %s for the label grid failed", record.id)
            plan.failed[record.id] = f"{type(exc).__name__}: {exc}"
            return True
        errors = {m: why for m, why in result.errors.items() if m not in result.refused}  # refusals: said per click
        if errors:
            plan.failed[record.id] = "; ".join(f"{method_label(m)}: {why}" for m, why in errors.items())
        (plan.computed if missing else plan.measured).append(record.id)
        self._show(job, record, digest, request, result)
        return True

    def _show(self, job: Job, record: ImageRecord, digest: str, request: ExplainRequest, result: Explanation) -> None:
        """Put a freshly explained image's card on the page, if it is shown."""
        view = self._view()
        if record.id not in {item["id"] for item in self._grid.items}:
            return
        plain = _thumbnail_store(view[3]).data_uri(record)
        card = self._safe_card(record, digest, request, self._drawers.get(view[1]), view, plain, explanation=result)

        def update():
            if self._view() != view:  # another method, class or size meanwhile: that page draws its own
                return
            items = [card if item["id"] == record.id else item for item in self._grid.items]
            if items != self._grid.items:
                self._grid.items = items

        self._explainer.publish(job, update)

    @staticmethod
    def _summary(plan: _Plan) -> str:
        computed, total = len(plan.computed), len(plan.records)
        measured = len(plan.measured)
        if not computed and not measured:
            text = f"{plan.label}: every image was explained already; nothing computed."
        else:
            text = f"{plan.label}: {computed} of {total} image{'s' if total != 1 else ''} explained and stored" + (
                f", {measured} measured (their explanations were stored)" if measured else "") + "."
        if plan.failed:
            text += " Failed: " + "; ".join(f"{i}: {why}" for i, why in plan.failed.items())
        return text

    # -- view --------------------------------------------------------------------------------
    def _on_click(self, event) -> None:
        try:
            self.gallery.select(event.new or self._grid.clicked)
        except (KeyError, ValueError) as exc:
            self.gallery.warn(str(exc))

    @param.depends("label", "records", "page", "page_count")
    def _heading(self):
        if not self.label:
            return "No label chosen."
        n = len(self.records)
        return f"**{self.label}** · {n} image{'s' if n != 1 else ''} · page {self.page} of {self.page_count}"

    @param.depends("status", "done", "total", "current", "message")
    def _status_text(self):
        if self.status == "running":
            return f"Explaining {self.done + 1 if self.current else self.done} of {self.total}" + (
                f": {self.current}…" if self.current else "…")
        return self.message

    def __panel__(self):
        running = self.param.status.rx() == "running"
        explain = pn.widgets.Button(name="Explain this label", button_type="primary", width=160,
                                    disabled=running, css_classes=["xp-label-explain"])
        explain.on_click(lambda _e: self.explain_label())
        stop = pn.widgets.Button(name="Cancel", button_type="light", width=90, visible=running,
                                 css_classes=["xp-label-cancel"])
        stop.on_click(lambda _e: self.cancel())
        previous = pn.widgets.Button(name="◀ Previous", button_type="light", width=110,
                                     disabled=self.param.page.rx() <= 1)
        following = pn.widgets.Button(name="Next ▶", button_type="light", width=110,
                                      disabled=self.param.page.rx() >= self.param.page_count.rx())
        previous.on_click(lambda _e: setattr(self, "page", max(1, self.page - 1)))
        following.on_click(lambda _e: setattr(self, "page", min(self.page_count, self.page + 1)))
        return pn.Column(
            pn.Row(
                pn.widgets.Select.from_param(self.param.method, name="Method", width=180),
                pn.widgets.RadioButtonGroup.from_param(self.param.target, name="Explain", button_type="primary",
                                                       button_style="outline", margin=(22, 10)),
                pn.Column(explain, margin=(17, 5)), pn.Column(stop, margin=(17, 5)),
                sizing_mode="stretch_width",
            ),
            pn.Row(pn.pane.Markdown(self._heading, margin=(0, 10)),
                   pn.pane.Markdown(self._status_text, margin=(0, 10), css_classes=["xp-label-status"],
                                    styles={"color": "#374151", "font-size": "13px"}),
                   sizing_mode="stretch_width"),
            pn.indicators.Progress(value=(self.param.progress.rx() * 100).rx.pipe(int), max=100, height=8,
                                   sizing_mode="stretch_width", bar_color="primary", visible=running),
            self._grid,
            pn.Row(previous, pn.pane.Markdown(pn.bind(lambda p, n: f"Page {p} of {n}", self.param.page,
                                                      self.param.page_count), margin=(8, 10)), following,
                   align="center"),
            sizing_mode="stretch_width",
        )
