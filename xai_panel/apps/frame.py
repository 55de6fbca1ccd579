"""What the dashboards share: the configured data and model, the URL state, the page frame.

``xai-panel serve --data DIR --model NAME`` (or ``panel serve`` with ``XAI_PANEL_DATA`` /
``XAI_PANEL_MODEL`` set) decides what the dashboards show; the URL carries the selected
image, label and grouping so a view can be shared. Every URL value is checked: ids go
through ``Dataset.resolve``, unknown labels and groupings are refused with a message.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

import numpy as np
import panel as pn
import param
from panel.io.resources import CDN_DIST, get_dist_path, use_cdn
from panel.theme.fast import Fast

from ..components.state.session import DEFAULT_MODEL, ExplanationSession
from ..components.widgets.gallery import ALL, Gallery
from ..components.widgets.settings import ExplainerSettings
from ..config import config
from ..data import Dataset, DatasetError, open_dataset
from ..runtime.jobs import classifier, executor, foreground, stopping, unfinished_jobs

__all__ = ["DATA_ENV", "MODEL_ENV", "SETTINGS_ENV", "configured_model", "configured_dataset", "configured_settings",
           "UrlState", "configured_store", "warm_up", "lazy_card", "notify", "page", "follow", "CSS", "LocalFast",
           "FONT", "extension", "after_load", "hold_background_until_loaded", "PAGE_HOLD", "rehearse_pages",
           "REHEARSAL_JOBS", "REHEARSAL_WAIT"]

_log = logging.getLogger(__name__)
DATA_ENV = "XAI_PANEL_DATA"
MODEL_ENV = "XAI_PANEL_MODEL"
_datasets: dict[str | None, Dataset] = {}
_lock = threading.Lock()

CSS = """
.bk-panel-models-layout-Card { border-radius: 10px; }
"""

# The fonts every desktop already has: the page asks no font server (Panel's Fast design
# would fetch Open Sans from fonts.googleapis.com on every load, which offline fails).
FONT = ("system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Liberation Sans', 'Helvetica Neue', Arial, "
        "sans-serif")


class LocalFast(Fast):
    """Panel's Fast design with every resource from the server: no Google font.

    ``Fast._resources['font']`` names ``https://fonts.googleapis.com/css?family=Open+Sans``;
    Panel adds it to every page's ``<link>`` tags (``pn.extension(design=...)`` and the
    template's own resources). The rest is Fast's, with its relative script spelled as
    the bundled file it is (a relative path would resolve under this class's name).
    """

    _resources = {
        **{k: v for k, v in Fast._resources.items() if k != "font"},
        "js_modules": {**Fast._resources["js_modules"], "fast-design": f"{CDN_DIST}bundled/fast/js/fast_design.js"},
    }


def extension(*names: str) -> None:
    """``pn.extension`` as both dashboards load it: notifications, the local Fast design,
    and the named extensions (the explorer's ``filedropper``)."""
    pn.extension(*names, notifications=True, design=LocalFast)


def _local_stylesheets() -> None:
    """Point the session's component stylesheets at the server, not at cdn.holoviz.org.

    Panel rewrites them to the server's ``/static`` only when it renders the page over HTTP
    (``doc._template_variables['dist_url']``). A session Bokeh re-creates when the page's
    websocket connects (the first one was discarded as unused: a page slower to load than
    ``--unused-session-lifetime``) never passes there, and every stylesheet of its page
    would come from Panel's CDN, which offline fails.
    """
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None and not use_cdn():
        doc._template_variables.setdefault("dist_url", get_dist_path(cdn=False))


def configured_model() -> str:
    """``$XAI_PANEL_MODEL`` or the embedded default."""
    return config().model or DEFAULT_MODEL


def configured_dataset() -> tuple[Dataset, str]:
    """The dataset named by ``$XAI_PANEL_DATA`` (default: the demo gallery), opened once per process.

    Returns the dataset and a problem to show ('' if none): an unusable folder falls back
    to the demo gallery instead of leaving an empty page.
    """
    path = config().data or None
    with _lock:
        if path in _datasets:  # the problem too: every page of an unusable folder says so, not only the first
            return _datasets[path]
        try:
            dataset = open_dataset(path)
            problem = ""
        except DatasetError as exc:
            _log.error("xai-panel: the data folder cannot be used: %s", exc)
            dataset, problem = open_dataset(None), f"The data folder cannot be used: {exc} The demo gallery is " \
                                                   "shown instead."
        _datasets[path] = dataset, problem
        return dataset, problem


_store: list = []


def configured_store():
    """The explanation store the dashboards read and write, opened once per process:
    ``$XAI_PANEL_STORE``, else the default store file (the one ``xai-panel precompute`` fills).

    Returns (store or None, problem): a store that cannot be opened (not a store, locked,
    unwritable folder) is reported, and the dashboards keep results in memory only.
    """
    from ..store import ExplanationStore

    with _lock:
        if not _store:
            try:
                _store.append((ExplanationStore(), ""))
            except Exception as exc:  # shown on the page; the app works without a store
                _store.append((None, f"The explanation store could not be opened ({exc}); results are kept "
                                     "in memory only."))
        return _store[0]


SETTINGS_ENV = "XAI_PANEL_SETTINGS"


def configured_settings(default: dict | None = None) -> tuple[dict, str]:
    """Explainer settings from ``$XAI_PANEL_SETTINGS`` (JSON, as ``ExplainerSettings.from_dict``).

    Returns (settings, problem); a malformed value is refused with a message and the
    default is used.
    """
    settings = config().settings  # malformed JSON is reported by config_problems()
    if settings is None:
        return dict(default or {}), ""
    try:
        ExplainerSettings.from_dict(settings)  # checks names and bounds
    except (ValueError, TypeError) as exc:
        return dict(default or {}), f"{SETTINGS_ENV} was ignored: {exc}"
    return settings, ""


def config_problems() -> list[str]:
    """The ``XAI_PANEL_*`` variables that were ignored, and why (for the page's notifications)."""
    return list(config().problems)


def warm_up(model: str):
    """Load the model and run its first batches in the background, so that the first click
    waits for neither; then freeze what start-up built out of the garbage collector's reach.

    A full collection walks every tracked object: about 0.3 s in a started server (half a
    million objects: torch, Panel, the model), during which no page is served. Panel
    collects a few seconds after each closed page, and Python itself when enough long-lived
    objects pile up; after ``gc.freeze`` those collections skip the start-up objects, which
    live as long as the process anyway. Once per model and process (the dashboards call it
    on every page load); returns the background job's future.
    """

    def job():
        from ..engine.perturbation import Cancelled

        t0 = time.perf_counter()
        # ONNX Runtime's first batches: made here (waiting while a visitor's click is served)
        # unless another caller was first; a torch model is warmed here in any case.
        loaded = classifier(model, pause=_yield_to_visitors)
        if loaded.backend != "onnxruntime" and not loaded.warmed:
            loaded.warm_up(pause=_yield_to_visitors)
        try:
            rehearse(loaded, cancel=stopping, pause=_yield_to_visitors)
        except Cancelled:  # the server is stopping
            return
        gc.collect()
        gc.freeze()
        _log.info("xai-panel: %s warmed up in %.1f s; %d start-up objects frozen", model,
                  time.perf_counter() - t0, gc.get_freeze_count())

    with _warm_lock:
        future = _warmed.get(model)
        if future is None or (future.done() and future.exception() is not None):
            future = _warmed[model] = executor().submit(job)
        return future


REHEARSAL_JOBS = ("thumbnails", "prefetch")
"""The background jobs of a rehearsed page the server waits for before it listens: its first page
of thumbnails (drawn into the disk cache) and of stored explanations (read into memory)."""

REHEARSAL_WAIT = 20.0
"""Seconds the server's start-up waits at most for ``REHEARSAL_JOBS`` and the model's warm-up
(``xai_panel.runtime.warmup``; a first install's ONNX export takes longer: the server then
listens without them)."""


def rehearse_pages(*apps, wait: float = REHEARSAL_WAIT) -> None:
    """Build each app's page once, outside any session, into a throwaway Bokeh document, and wait
    (until ``wait`` s after the call at most) for the background jobs among ``REHEARSAL_JOBS``
    those pages started; the server's start-up script calls it before the server listens.

    A process's first build of a page pays for first calls: param's and Panel's per-class set-up,
    the template, the first Bokeh model of each kind. Measured on two cores: the gallery page took
    0.87 s to build the first time and 0.22 s the next; its method cards (built on the event loop
    right after the page is drawn) 0.24 s and then 0.05 s. The first visitor's page paid it, and
    a click that came as the page appeared waited for the cards. The throwaway gallery also draws
    its first page's thumbnails and reads its stored explanations into the process's cache (which
    waits for the model's load), where the first visitor's page and click find them: left running
    after the server listened, they took the cores and the pool's threads from the first click,
    which read and drew its stored explanation itself (0.55 s against 0.15 s for the next). A page
    that fails to build is logged; the server still starts (the visitor's page then says what is
    wrong).
    """
    end = time.monotonic() + wait
    before = {id(job) for job in unfinished_jobs()}
    for app in apps:
        t0 = time.perf_counter()
        try:
            _draw_once(app)
        except Exception:
            _log.exception("xai-panel: rehearsing the page %s failed", getattr(app, "__name__", app))
        else:
            _log.info("xai-panel: %s rehearsed in %.2f s", getattr(app, "__name__", app), time.perf_counter() - t0)
    started = [job for job in unfinished_jobs() if id(job) not in before and job.name in REHEARSAL_JOBS]
    waited = time.perf_counter()
    for job in started:
        if job.future is None:
            continue
        try:
            job.future.result(timeout=max(0.0, end - time.monotonic()))
        except TimeoutError:
            left = sorted({j.name for j in started if not j.future.done()})
            _log.info("xai-panel: serving before the rehearsed pages' %s finished (waited %.1f s)",
                      ", ".join(left), wait)
            return
        except Exception:  # cancelled, or failed: a job's own errors are reported where it runs
            pass
    if started:
        _log.info("xai-panel: the rehearsed pages' background work (%s) done in %.2f s",
                  ", ".join(sorted({j.name for j in started})), time.perf_counter() - waited)


def _draw_once(app) -> None:
    from bokeh.document import Document

    template, doc, before = app(), Document(), set(pn.state._views)
    # The page's parts, drawn into the document; not the template itself: a template put in a
    # document outside a session stays in Panel's list of busy indicators for good, and every
    # later busy change of any page would update it.
    pn.Column(*template.header, *template.sidebar, *template.main).get_root(doc)
    # Panel keeps every root it made (for notebooks' comms): let these go with the page.
    for ref in set(pn.state._views) - before:
        view, root = pn.state._views.pop(ref)[:2]
        view._cleanup(root)


def _yield_to_visitors() -> None:
    """Wait (the warm-up's thread) while a visitor's job runs, until the server stops."""
    while not stopping.is_set() and not foreground.wait_idle(timeout=0.5):
        pass


_warmed: dict = {}
_warm_lock = threading.Lock()


def _runs_on(explainer, loaded) -> bool:
    from ..models.classifier import ModelError

    try:
        explainer.check(loaded)
        return True
    except ModelError:  # e.g. the gradient methods and an ONNX file: the page says so per click
        return False


def rehearse(loaded, cancel=None, pause=None) -> None:
    """One tiny explanation with every method, so that the first visitor's does not pay the
    first-call costs: alibi, lime and scikit-learn are imported and build their first objects
    (shap's Partition explainer, behind the 'partition' estimator, compiles numba kernels on
    first use: measured 5-8 s; the default 'owen' estimator compiles nothing). Six superpixels
    of a synthetic image: a few hundred model passes, in the background at server start.
    ``cancel`` (an Event) stops it between model batches; ``pause()`` is called after each
    batch and after each method (a gradient method makes its passes in one call, about a
    second for a fresh process's first Grad-CAM). The server's warm-up passes one that waits
    while a visitor's job runs and its result is drawn, so a click that comes during the
    warm-up shares the cores with no rehearsal batch."""
    from ..engine.pipeline import explain
    from ..methods.base import registry

    ramp = np.linspace(0, 255, loaded.input_size).astype(np.uint8)
    down, across = np.meshgrid(ramp, ramp, indexing="ij")
    image = np.stack([down, across, np.full_like(down, 128)], axis=2)
    methods = {m: cls for m, cls in registry().items() if _runs_on(cls(**cls.rehearsal), loaded)}
    explain(image, loaded, methods=tuple(methods), top_k=2, segmentation="grid",
            segmentation_params={"rows": 2, "cols": 3},
            settings={m: dict(cls.rehearsal) for m, cls in methods.items()}, cancel=cancel,
            progress=None if pause is None else (lambda _method, _done, _total: pause()),
            on_method=None if pause is None else (lambda _so_far: pause()))


def lazy_card(content, title: str, **params) -> pn.Card:
    """A collapsed Card that builds ``content``'s widgets only when first opened: a page
    load then skips them (the explainer settings are about a fifth of a gallery page's
    build time, on the server's event loop, for a card most visitors never open)."""
    card = pn.Card(title=title, collapsed=True, **params)

    def fill(event):
        if not event.new and not card.objects:
            card.objects = [content]

    card.param.watch(fill, "collapsed")
    return card


def _served() -> bool:
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def after_load(fill) -> None:
    """Call ``fill()`` once the browser has drawn the page (on the event loop's next turn after it
    says so), or at once outside a server: what a page shows below its first screen then neither
    delays the page's first bytes nor its first drawing."""
    if _served():
        pn.state.onload(lambda: pn.state.execute(lambda: _as_foreground(fill), schedule=True))
    else:
        fill()


def _as_foreground(fill) -> None:
    """``fill()``, counted as a visitor's work: background work (the warm-up, the prediction
    index, the prefetch) waits while a page's part is built and for a moment after, while it
    is sent and drawn (they took the cores from a first click that came meanwhile)."""
    with foreground:
        fill()


PAGE_HOLD = 3.0
"""Seconds a page being served holds background work back at most (if its browser never says it
has loaded)."""


def when_quiet(fill, watched, busy, settle: float = 0.75, latest: float = 5.0) -> None:
    """Call ``fill()`` once, after the page has loaded, when it is quiet: ``busy()`` false and none
    of the ``watched`` parameters (``(object, names)`` pairs) changed for ``settle`` s, or
    ``latest`` s after the load whatever happens; at once outside a server. For what a page shows
    far below its first screen: built right after the load, it took the event loop (about 0.3 s
    on two cores) just when a visitor's first click arrives, and that click waited."""
    if not _served():
        fill()
        return
    state = {"changed": time.monotonic(), "done": False, "callback": None}

    def changed(*_):
        state["changed"] = time.monotonic()

    for obj, names in watched:
        obj.param.watch(changed, list(names))

    def check():
        now = time.monotonic()
        if state["done"]:
            return
        if now - state["loaded"] >= latest or (not busy() and now - state["changed"] >= settle):
            state["done"] = True
            state["callback"].stop()
            _as_foreground(fill)

    def start():
        state["loaded"] = state["changed"] = time.monotonic()
        state["callback"] = pn.state.add_periodic_callback(check, period=250)

    pn.state.onload(start)


def hold_background_until_loaded() -> None:
    """Hold background work (the gallery's prediction index, the warm-up) back while this page is
    built, sent and drawn: until its browser says it has loaded, ``PAGE_HOLD`` s at most. Measured
    with 4,000 images on two cores: the index's model batches took the cores from the page's build
    and made a warm page twice as slow while the index was being built."""
    if _served():
        release = foreground.hold(PAGE_HOLD)
        pn.state.onload(release)


def notify(text: str, kind: str = "warning") -> None:
    if text and pn.state.notifications is not None:
        getattr(pn.state.notifications, kind)(text, duration=8000)


def _arg(name: str) -> str | None:
    values = pn.state.session_args.get(name) if pn.state.curdoc else None
    if not values:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


class UrlState(param.Parameterized):
    """Reads ``?image=&label=&group=`` on load and writes them back as the user browses."""

    gallery = param.ClassSelector(class_=Gallery)

    def __init__(self, **params):
        super().__init__(**params)
        values = dict(group=_arg("group"), label=_arg("label"), image=_arg("image"))
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # After the page has loaded, so that messages about refused values are seen.
            pn.state.onload(lambda: self._start(values))
        else:
            self._start(values)

    def _start(self, values: dict) -> None:
        try:
            self.apply(**values)
        except Exception as exc:  # a page load callback must not raise: Panel would stop loading the page
            _log.exception("applying the URL %r failed", values)
            self.gallery.warn(f"The URL could not be applied: {exc}")
        self.gallery.param.watch(self._write, ["selected", "label", "group_by"])

    def apply(self, group: str | None = None, label: str | None = None, image: str | None = None) -> list[str]:
        """Apply URL values, refusing bad ones with a message; returns the messages."""
        problems = []
        if group is not None:
            if group in ("label", "prediction"):
                self.gallery.group_by = group
            else:
                problems.append(f"Unknown grouping {group!r} in the URL (use 'label' or 'prediction').")
        if label is not None:
            if label == ALL or label in self.gallery.labels:
                self.gallery.label = label
            else:
                problems.append(f"The URL names label {label!r}, which this dataset does not have.")
        if image is not None:
            try:
                record = self.gallery.select(image)
            except (KeyError, ValueError) as exc:
                problems.append(f"The URL's image was refused: {exc}")
            else:
                if label is None and record.label_name and self.gallery.group_by == "label":
                    self.gallery.label = record.label_name
        if problems:
            self.gallery.warn(" ".join(problems))
        return problems

    def _write(self, *events) -> None:
        if pn.state.location is None:
            return
        query = {"group": self.gallery.group_by, "label": self.gallery.label}
        if self.gallery.selected:
            query["image"] = self.gallery.selected
        pn.state.location.update_query(**query)


def page(title: str, sidebar: list, main: list, header: list | None = None, alerts: list[str] | None = None):
    """The page frame both dashboards use: every resource from the server (no font server, no CDN).

    ``alerts`` are problems the page keeps showing above its content (an unusable data
    folder), where a notification would be gone in seconds.
    """
    _local_stylesheets()
    shown = [pn.pane.Alert(text, alert_type="danger", sizing_mode="stretch_width", css_classes=["xp-page-alert"])
             for text in alerts or () if text]
    return pn.template.FastListTemplate(
        title=title, sidebar=sidebar, main=[*shown, *main], header=header or [], accent="#2563eb", design=LocalFast,
        font=FONT, font_url="", sidebar_width=340, main_layout=None, theme_toggle=False, raw_css=[CSS],
    )


def follow(session: ExplanationSession, *sources) -> None:
    """Make ``session.source`` follow whichever of these parameters changed last.

    A source is a parameter (``gallery.param.selected_record``) or a pair of parameters
    (image, display name), e.g. ``(upload.param.image, upload.param.name)``.
    """
    for source in sources:
        ref, name = source if isinstance(source, tuple) else (source, None)

        def changed(event, name=name):
            if event.new is not None:
                label = getattr(name.owner, name.name) if name is not None else ""
                session.param.update(source=event.new, source_name=label)

        ref.owner.param.watch(changed, ref.name)
