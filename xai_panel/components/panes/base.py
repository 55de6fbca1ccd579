"""What every explanation pane shares: the top classes side by side, one captioned tile each.

A pane is one HTML model holding a JPEG tile per class (``strip.py``): a new explanation,
another class to inspect or a display setting changes one string, and each tile is drawn
and encoded once (the process-wide ``TileCache``), in the session's worker thread when the
pane is linked to a session (``prerender``), so the event loop only assembles HTML. The
earlier design, one HoloViews plot per pane, spent about 0.6 s of the event loop and 14 MB
of websocket traffic on every cached click. A pane does not care where results come from:
give it an ``Explanation`` (or a reference to a session's) and it draws what is there, says
so while ``busy``, and shows ``error`` when the method failed.
"""

from __future__ import annotations

import html
from typing import ClassVar

import numpy as np
import panel as pn
import param

from ...engine.results import Explanation
from ...render.tiles import STRIP_CSS, Tile, strip_html, tile_cache

__all__ = ["MethodPane", "OnRequestPane", "pane_class", "method_pane", "shown_classes", "tile_title", "TABLE_CSS"]

_PLACEHOLDER = 244

TABLE_CSS = """
.xp-table { border-collapse: collapse; font-size: 12px; width: 100%; font-variant-numeric: tabular-nums; }
.xp-table th { text-align: right; color: #6b7280; font-weight: 600; border-bottom: 1px solid #e5e7eb; padding: 3px 6px; }
.xp-table th:first-child, .xp-table td:first-child, .xp-table th:nth-child(2), .xp-table td:nth-child(2) { text-align: left; }
.xp-table td { text-align: right; border-bottom: 1px solid #f3f4f6; padding: 3px 6px; }
.xp-good { color: #15803d; } .xp-mid { color: #b45309; } .xp-bad { color: #b91c1c; }
.xp-note { font-size: 12px; color: #4b5563; margin: 2px 0 6px; }
"""
"""The report panes' tables (method and class columns on the left, numbers on the right), verdict colours
and notes: stability, trust and the sanity check."""


def tile_title(rank: int | None, name: str, chosen: bool, extra: str = "") -> str:
    """A tile's caption: "2. tabby" for a top class, "tabby (asked)" for a class asked for (rank None)."""
    named = f"{name} (asked)" if rank is None else f"{rank}. {name}"
    return f"{'▶ ' if chosen else ''}{named}{extra}"


def shown_classes(explanation: Explanation | None, slots: int) -> list:
    """The classes a pane shows, one tile each: up to ``slots`` of the top-k, then every class
    asked for beside them (``explain(labels=...)``)."""
    if explanation is None:
        return []
    return [*explanation.top[:slots], *explanation.asked]


def pane_class(method: str) -> type["MethodPane"] | None:
    """The pane that draws ``method``'s results: the most specific ``MethodPane`` subclass
    whose ``result_type`` the method's result type is (None: the results cannot be drawn)."""
    from ...methods.base import method_class

    result_type = method_class(method).result_type
    best = None
    for cls in param.concrete_descendents(MethodPane).values():
        if cls.result_type is not None and issubclass(result_type, cls.result_type):
            if best is None or issubclass(cls.result_type, best.result_type):
                best = cls
    return best


def method_pane(session, method: str, inspect=None, **params) -> "MethodPane | None":
    """The pane of ``method`` linked to ``session`` (see ``MethodPane.from_session``)."""
    cls = pane_class(method)
    return None if cls is None else cls.from_session(session, method=method, inspect=inspect, **params)


class MethodPane(pn.viewable.Viewer):
    """Base of the explanation panes: one per result type, for every method that returns it.

    A subclass names the ``result_type`` it draws and implements ``_draw``; the method it
    shows is a parameter, so a new method whose results follow a pane's protocol (say
    ``ScoreResult``) is drawn with no pane of its own.
    """

    result_type: ClassVar[type | None] = None
    """The results this pane draws (subclasses included)."""

    method = param.String(default="", constant=True, doc="The registered method whose results are drawn.")

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation to draw (its methods may still be arriving).")
    selected = param.Integer(default=None, allow_None=True, allow_refs=True,
                             doc="Index of the class to inspect (framed in blue).")
    busy = param.Boolean(default=False, allow_refs=True, doc="This method is still being computed.")
    error = param.String(default="", allow_refs=True, doc="Why this method failed, if it did.")
    slots = param.Integer(default=5, bounds=(1, 10), constant=True, doc="Classes shown side by side.")
    plot_size = param.Integer(default=190, bounds=(64, 512), constant=True, doc="Side of each class's image (px).")
    shown = param.ClassSelector(class_=Explanation, default=None, allow_None=True, constant=True,
                                doc="The explanation drawn now (read-only): follows ``explanation`` only when this "
                                    "method's results, the classes or the image change.")
    marked = param.Integer(default=None, allow_None=True, constant=True,
                           doc="The class framed now (read-only): follows ``selected`` only while there are results.")

    @classmethod
    def default_method(cls) -> str:
        """The registered method whose result type is exactly this pane's (for ``method=""``)."""
        from ...methods.base import registry

        for name, explainer in registry().items():
            if explainer.result_type is cls.result_type:
                return name
        raise ValueError(f"no registered method returns {getattr(cls.result_type, '__name__', None)}: name one")

    @property
    def title(self) -> str:
        from ...methods.base import method_class

        return method_class(self.method).label

    @property
    def description(self) -> str:
        from ...methods.base import method_class

        return method_class(self.method).description

    @classmethod
    def from_session(cls, session, inspect=None, method: str = "", **params) -> "MethodPane":
        """A pane linked to an ``ExplanationSession`` (and to a ``TopClasses`` for the class to inspect)."""
        method = method or cls.default_method()
        params["method"] = method
        params.setdefault("explanation", session.param.explanation)
        # Busy while computing, unless a preview of this method is already shown.
        params.setdefault("busy", param.bind(
            lambda pending, status, e: method in pending and status == "explaining"
            and not (e is not None and method in e.preview),
            session.param.pending, session.param.status, session.param.explanation))
        params.setdefault("error", param.bind(lambda errors: errors.get(method, ""), session.param.method_errors))
        params.setdefault("slots", session.top_k)
        if inspect is not None:
            params.setdefault("selected", inspect.param.selected)
        pane = cls(**params)
        session.add_prerender(pane.prerender)  # tiles drawn in the worker, not on the event loop
        return pane

    def __init__(self, **params):
        super().__init__(**params)
        if not self.method:
            with param.edit_constant(self):
                self.method = self.default_method()
        self._shown_key = None
        # No animated loading overlay while busy: the line above the tiles says "Computing…"
        # and the session shows its progress. Three animated overlays cost a browser without
        # GPU compositing most of a core (measured: 3.5 of 8 CPU seconds of a cold click),
        # and would hide a preview.
        self._view = pn.pane.HTML("", stylesheets=[STRIP_CSS], sizing_mode="stretch_width",
                                  css_classes=[f"xp-{self.method}-plots"], margin=(5, 10))
        self._follow()
        self.param.watch(self._redraw, ["shown", "marked", *self._dependencies()])
        self._redraw()

    @param.depends("explanation", "selected", watch=True)
    def _follow(self) -> None:
        # Methods arrive one by one, each as a new Explanation: redraw only when ours changed,
        # and move the frame only where there is something to frame.
        e = self.explanation
        key = None if e is None else (id(e.image), e.top, e.asked, id(e.results.get(self.method)),
                                      self.method in e.preview)
        values = {}
        # Another image's classes: the frame goes to its top class at once, where the class list is
        # about to reset ``selected`` (drawn once, not once with the old class and again).
        new_top = e is not None and self._shown_key is not None and self._shown_key[:2] != key[:2]
        if key != self._shown_key:
            self._shown_key = key
            values["shown"] = e
        if new_top:
            marked = e.labels[0] if self.results(e) and e.labels else None
        elif e is not None and self.selected not in e.labels and self.results(e):
            marked = self.marked  # a class of another image (the class list is ahead of us): wait for its explanation
        else:
            marked = self.selected if self.results(e) else None
        if marked != self.marked:
            values["marked"] = marked
        if values:
            with param.edit_constant(self):
                self.param.update(**values)

    # -- for subclasses ----------------------------------------------------------------------
    def _dependencies(self) -> dict:
        """Extra parameters (display settings) the images depend on."""
        return {}

    def _draw(self, explanation: Explanation, label: int, **extra) -> np.ndarray:
        """The HxWx3 uint8 image for one class that has results."""
        raise NotImplementedError

    def _suffix(self, explanation: Explanation, label: int) -> str:
        """What the caption adds after the class name (a score)."""
        return ""

    def _draw_key(self, explanation: Explanation, **extra) -> tuple:
        """Everything besides the class's result and the image that the drawing depends on."""
        return tuple(sorted(extra.items()))

    def _legend(self, explanation: Explanation | None, **extra) -> str:
        """HTML under the tiles (e.g. a colour bar)."""
        return ""

    def _controls(self) -> list:
        return []

    def _details(self) -> list:
        return []

    # -- shared ----------------------------------------------------------------------------
    def results(self, explanation: Explanation | None = None) -> dict:
        """This method's results of ``explanation`` (default: the one drawn), per class index."""
        explanation = explanation if explanation is not None else self.shown
        return dict(explanation.results.get(self.method, {})) if explanation is not None else {}

    def _extra(self) -> dict:
        return {name: getattr(self, name) for name in self._dependencies()}

    def tiles(self) -> list[tuple[str, np.ndarray]]:
        """What each class's image shows now: (caption, pixels) per slot (notebooks, tests).

        The class being inspected is marked by '▶' in its caption (and a frame on the page).
        """
        explanation, extra = self.shown, self._extra()
        side = explanation.image.shape[0] if explanation is not None else 224
        placeholder = np.full((side, side, 3), _PLACEHOLDER, np.uint8)
        results = self.results(explanation)
        out = []
        classes = shown_classes(explanation, self.slots)
        for slot, caption in enumerate(self._captions(explanation, self.marked)):
            label = classes[slot].index if caption else None
            image = self._draw(explanation, label, **extra) if label in results else placeholder
            out.append((caption, image))
        return out

    def _captions(self, explanation, selected) -> list[str]:
        results = self.results(explanation)
        classes = shown_classes(explanation, self.slots)
        top = len(explanation.top) if explanation is not None else 0
        captions = []
        for slot in range(max(self.slots, len(classes))):
            if slot >= len(classes):
                captions.append("")
                continue
            score = classes[slot]
            suffix = self._suffix(explanation, score.index) if score.index in results else ""
            if suffix and self.method in explanation.preview:
                suffix += " · preview"
            captions.append(tile_title(slot + 1 if slot < min(top, self.slots) else None, score.name,
                                       score.index == selected, suffix))
        return captions

    def picture(self, explanation: Explanation, label: int) -> np.ndarray:
        """``label``'s HxWx3 image as this pane draws it now (its display settings), for other views
        of the same results (the label grid); ``picture_key`` is what it depends on besides the result."""
        return self._draw(explanation, label, **self._extra())

    def picture_key(self, explanation: Explanation) -> tuple:
        return (self.method, self._draw_key(explanation, **self._extra()))

    def _url(self, explanation: Explanation, label: int, **extra) -> str:
        result = self.results(explanation)[label]
        refs = (explanation.image, explanation.segmentation.labels, result)
        return tile_cache().get(refs, (self.method, self._draw_key(explanation, **extra)),
                                lambda: self._draw(explanation, label, **extra))

    def html(self, explanation: Explanation | None = None, selected: int | None = None, **extra) -> str:
        """The pane's picture as HTML: one captioned tile per class (default: as drawn now)."""
        if explanation is None:
            explanation, selected = self.shown, self.marked
        extra = {**self._extra(), **extra}
        results = self.results(explanation)
        classes = shown_classes(explanation, self.slots)
        tiles = []
        for slot, caption in enumerate(self._captions(explanation, selected)):
            if not caption:
                tiles.append(Tile("", None))
                continue
            label = classes[slot].index
            url = self._url(explanation, label, **extra) if label in results else None
            tiles.append(Tile(caption, url, label == selected))
        return strip_html(tiles, self.plot_size) + self._legend(explanation, **extra)

    def prerender(self, explanation: Explanation | None) -> None:
        """Draw and encode ``explanation``'s tiles now (any thread), so showing them costs nothing."""
        if explanation is not None and self.results(explanation):
            self.html(explanation, None)

    def _redraw(self, *_events) -> None:
        self._view.object = self.html()

    def _state(self, explanation, busy, error) -> str:
        muted = "color: #6b7280; font-size: 13px; margin: 0 10px"
        if error:
            return (f'<div class="xp-error" style="color: #991b1b; background: #fef2f2; border: 1px solid #fecaca; '
                    f'border-radius: 6px; padding: 6px 10px"><b>{self.title} failed:</b> {html.escape(error)}</div>')
        if explanation is None and not busy:
            return f'<div style="{muted}">Select an image to see its explanation.</div>'
        if busy:
            return f'<div style="{muted}">Computing {self.title}…</div>'
        if explanation is not None and self.method in explanation.preview:
            return f'<div style="{muted}">A preview from the first samples; refining {self.title}…</div>'
        if explanation is not None and not self.results(explanation):
            return f'<div style="{muted}">{self.title} was not requested for this image.</div>'
        return (f'<div class="xp-{self.method}-ready" style="color: #4b5563; font-size: 12px; margin: 0 10px">'
                f'{html.escape(self.description)}</div>')

    def __panel__(self):
        return pn.Column(
            pn.Row(*self._controls(), sizing_mode="stretch_width"),
            pn.pane.HTML(pn.bind(self._state, self.param.shown, self.param.busy, self.param.error),
                         sizing_mode="stretch_width", margin=(0, 5)),
            self._view,
            *self._details(),
            sizing_mode="stretch_width",
        )


class OnRequestPane(pn.viewable.Viewer):
    """A pane whose result is computed on request (stability, the sanity check): in the compute
    lane's bounded queue like any explanation, with progress, cancel and the failure shown.

    A subclass calls :meth:`_start` with its work, ``work(job, progress, *args)``, which returns
    the parameters to set when it is done (e.g. ``{"report": report}``) and calls
    ``progress(done, total)`` as it goes; a new image should call :meth:`_runner.cancel`.
    """

    job_name: ClassVar[str] = "on-request"

    status = param.Selector(default="idle", objects=["idle", "running", "done", "cancelled", "error"], constant=True,
                            doc="Where the computation is (read-only).")
    progress = param.Number(default=0.0, bounds=(0, 1), constant=True, doc="Share of the work done (read-only).")
    error = param.String(default="", constant=True, doc="Why it failed (read-only).")

    def __init__(self, **params):
        from ...runtime.jobs import JobRunner, compute_executor, compute_queue

        super().__init__(**params)
        # K explanations: they wait for a compute slot like any explanation (the bounded queue).
        self._runner = JobRunner(self.job_name, queue=compute_queue(), pool=compute_executor)

    def _set(self, **values) -> None:
        with param.edit_constant(self):
            self.param.update(**values)

    def _start(self, work, *args):
        """Run ``work`` in the compute lane (cancels a previous run); None when the server is busy."""
        from ...runtime.jobs import ServerBusy

        try:
            return self._runner.start(self._guarded, work, *args)
        except ServerBusy as exc:
            self._set(status="error", error=str(exc))
            return None

    def _guarded(self, job, work, *args) -> None:
        from ...engine.perturbation import Cancelled

        def progress(done: int, total: int) -> None:
            self._runner.publish(job, lambda: self._set(progress=done / max(total, 1)))

        try:
            values = work(job, progress, *args)
        except Cancelled:
            return
        except Exception as exc:  # shown in the pane; the app keeps serving
            # The message is made now: Python unbinds ``exc`` when the except block ends, before
            # the event loop runs the published callback.
            message = f"{type(exc).__name__}: {exc}"
            self._runner.publish(job, lambda: self._set(status="error", error=message))
            return
        self._runner.publish(job, lambda: self._set(**values, status="done", progress=1.0))

    def cancel(self) -> None:
        self._runner.cancel()
        if self.status == "running":
            self._set(status="cancelled")

    def wait(self, timeout: float | None = 600):
        self._runner.wait(timeout)
        return self
