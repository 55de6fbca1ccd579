"""The model-randomisation sanity check on request, inside the trust pane.

It costs one explanation per stage plus the trained one (six by default), so it runs only
when asked: in the compute lane (the bounded queue and pool every explanation waits for),
with a progress bar and a cancel button; a new image or model cancels it. Finished checks
are kept per image and settings (a small per-process LRU), so asking again is free. The
result is a line per method over the stages (Spearman with the trained explanation) and
one verdict per method.
"""

from __future__ import annotations

import html
import json
import math
import threading

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (Bokeh options below; loads the backend without hv.extension)
import panel as pn
import param
from cachetools import LRUCache

from ...methods.base import method_class, method_label, reduced_settings, scoring_methods
from ...metrics.sanity import DEFAULT_STAGES, SANITY_THRESHOLD, SanityCheck, sanity_check
from ...runtime.jobs import Job
from ...runtime.jobs import classifier as load_model
from ..widgets.settings import ExplainerSettings
from .base import TABLE_CSS, OnRequestPane

__all__ = ["SanityPane", "sanity_cache"]

_CSS = TABLE_CSS
_COLORS = ("#2563eb", "#dc2626", "#059669", "#7c3aed", "#d97706", "#0891b2")


class _Checks:
    """A thread-safe LRU (cachetools) of finished checks, keyed by image digest, model and settings."""

    def __init__(self, max_items: int = 32):
        self._items: LRUCache = LRUCache(maxsize=max_items)
        self._lock = threading.Lock()

    def get(self, key: str) -> SanityCheck | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, check: SanityCheck) -> None:
        with self._lock:
            self._items[key] = check

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_cache = _Checks()


def sanity_cache() -> _Checks:
    """The process-wide cache of finished sanity checks."""
    return _cache


class SanityPane(OnRequestPane):
    """Re-initialise the model from the top down and watch each method's explanation follow (or not)."""

    job_name = "sanity"

    image = param.Array(default=None, allow_None=True, allow_refs=True, doc="The image to check.")
    image_digest = param.String(default="", allow_refs=True, doc="Content hash of the image (the cache key).")
    requested = param.String(default="", allow_refs=True, doc=(
        "Name of the image asked for last: a new one cancels the check at once, before it is decoded."))
    model = param.String(default="efficientnet_lite0", allow_refs=True, doc="The classifier (a torch model).")
    settings = param.ClassSelector(class_=ExplainerSettings, allow_refs=True, doc=(
        "Methods, segmentation, fill and seed: the methods with per-superpixel scores are checked."))
    stages = param.Integer(default=DEFAULT_STAGES, bounds=(1, 10), doc=(
        "Stages of re-initialisation: the head, then an even share of the units down to the input."))
    samples = param.Integer(default=200, bounds=(20, 2000), doc=(
        "LIME's pool per stage (SHAP runs on the same pool): the check's reduced budget."))
    threshold = param.Number(default=SANITY_THRESHOLD, bounds=(0.05, 1.0), step=0.05, doc=(
        "A method passes when |Spearman| with the trained explanation is below this at the last stage."))

    check = param.ClassSelector(class_=SanityCheck, default=None, allow_None=True, constant=True,
                                doc="The last sanity check (read-only).")
    from_cache = param.Boolean(default=False, constant=True, doc="The check came from the cache (read-only).")

    @classmethod
    def from_session(cls, session, **params) -> "SanityPane":
        params.setdefault("image", session.param.image)
        params.setdefault("image_digest", session.param.image_digest)
        params.setdefault("requested", session.param.requested)
        params.setdefault("model", session.param.model)
        params.setdefault("settings", session.param.settings)
        return cls(**params)

    def __init__(self, **params):
        params.setdefault("settings", ExplainerSettings())
        super().__init__(**params)

    # -- what is asked for --------------------------------------------------------------------
    def request(self) -> dict:
        """The ``sanity_check`` keyword arguments for the current settings (raises ValueError)."""
        kwargs = self.settings.explain_kwargs()
        methods = list(scoring_methods(kwargs["methods"]))
        if not methods:
            raise ValueError("the sanity check compares per-superpixel scores: choose LIME, SHAP or another method "
                             f"with scores (the settings ask for {', '.join(kwargs['methods']) or 'no method'})")
        reduced = reduced_settings(methods)  # e.g. SHAP on the pool: no passes of its own
        settings = {m: {**dict(kwargs["settings"][m]), **reduced.get(m, {})} for m in methods}
        for m in methods:  # the pane's pool size, for the method whose samples are the pool
            cls = method_class(m)
            if cls.defines_pool and cls.pool_parameter:
                settings[m][cls.pool_parameter] = int(self.samples)
        return dict(methods=tuple(methods), settings=settings, stages=int(self.stages), seed=kwargs["seed"],
                    threshold=float(self.threshold), segmentation=kwargs["segmentation"],
                    segmentation_params=kwargs["segmentation_params"], fill=kwargs["fill"])

    def _key(self, request: dict) -> str:
        return json.dumps([self.image_digest, self.model, request], sort_keys=True, default=str)

    @property
    def explanations(self) -> int:
        """Explanations one check costs: the trained one and one per stage (at most)."""
        return 1 + int(self.stages)

    # -- running ---------------------------------------------------------------------------------
    def compute(self) -> Job | None:
        """Start the check for the current image (cancels a running one); None when cached or refused."""
        if self.image is None:
            self._set(status="error", error="Select an image first.")
            return None
        try:
            request = self.request()
        except ValueError as exc:
            self._set(status="error", error=str(exc), check=None)
            return None
        key = self._key(request) if self.image_digest else None
        cached = _cache.get(key) if key else None
        if cached is not None:
            self._runner.cancel()
            self._set(check=cached, status="done", progress=1.0, error="", from_cache=True)
            return None
        self._set(status="running", progress=0.0, error="", check=None, from_cache=False)
        return self._start(self._work, self.image, self.model, request, key)

    @param.depends("image", "requested", "model", watch=True)
    def _invalidate(self) -> None:
        self._runner.cancel()
        self._set(check=None, status="idle", progress=0.0, error="", from_cache=False)

    @staticmethod
    def _work(job: Job, progress, image, model, request: dict, key: str | None) -> dict:
        check = sanity_check(image, load_model(model), progress=progress, cancel=job.cancel, **request)
        if key:
            _cache.put(key, check)
        return {"check": check}

    # -- view ------------------------------------------------------------------------------------
    def plot(self, check: SanityCheck | None = None):
        """A line per method: Spearman with the trained explanation at each stage (1 before any)."""
        check = self.check if check is None else check
        if check is None:
            return hv.Overlay([hv.Curve([])]).opts(width=1, height=1, toolbar=None, xaxis=None, yaxis=None)
        x = list(range(len(check.stages) + 1))
        ticks = [(0, "trained"), *[(i + 1, name) for i, name in enumerate(check.stages)]]
        kw = dict(kdims=["stage"], vdims=["spearman"])
        layers = [hv.HLine(check.threshold).opts(color="#9ca3af", line_dash="dashed", line_width=1),
                  hv.HLine(-check.threshold).opts(color="#9ca3af", line_dash="dashed", line_width=1)]
        for i, method in enumerate(check.methods):
            y = [1.0, *check.similarity[method]]
            color = _COLORS[i % len(_COLORS)]
            layers.append(hv.Curve((x, y), label=method_label(method), **kw).opts(color=color, line_width=2))
            layers.append(hv.Scatter((x, y), label=method_label(method), **kw).opts(color=color, size=5))
        return hv.Overlay(layers).opts(
            width=420, height=220, ylim=(-1.05, 1.05), xticks=ticks, xrotation=30, toolbar=None,
            legend_position="right", title=f"Spearman with the trained explanation · {check.label.name}",
            fontsize={"title": 10, "labels": 9, "xticks": 8, "yticks": 8}, xlabel="re-initialised down to",
            ylabel="Spearman ρ")

    def verdict_html(self, check=None, status=None, error=None, from_cache=None) -> str:
        if check is None and status is None:
            check, status, error, from_cache = self.check, self.status, self.error, self.from_cache
        if status == "error":
            return f"<p class='xp-note xp-bad'>The sanity check could not run: {html.escape(error)}</p>"
        if status == "cancelled":
            return "<p class='xp-note'>Sanity check cancelled.</p>"
        if check is None:
            return ("<p class='xp-note'>Sanity check (Adebayo et al. 2018): re-initialise the model's layers from the "
                    "top down and explain the image again at each stage. An explanation that does not change when the "
                    "model is destroyed shows the image, not the model.</p>")
        rows = []
        for method in check.methods:
            last = check.similarity[method][-1]
            css = "xp-good" if check.passed[method] else "xp-bad"
            word = "passes" if check.passed[method] else ("undetermined" if math.isnan(last) else "fails")
            rows.append(f"<li><b class='{css}'>{html.escape(method_label(method))} {word}</b>: ρ {last:+.2f} with the trained "
                        f"explanation once every unit is re-initialised; top-{check.k_top_segments} IoU "
                        f"{check.top_overlap[method][-1]:.2f}</li>")
        note = (f"{html.escape(check.label.name)} (p = {check.label_probability[0]:.2f} trained, "
                f"{check.label_probability[-1]:.3f} fully randomised); {len(check.stages)} stages over "
                f"{len(check.units)} units, pass when |ρ| &lt; {check.threshold:g} at the last; "
                f"{check.forward_passes} forward passes in {check.seconds:.1f} s on {check.runtime}"
                + (" (from cache)." if from_cache else "."))
        return f"<p class='xp-note'>{note}</p><ul class='xp-note xp-sanity-verdicts'>{''.join(rows)}</ul>"

    def __panel__(self):
        button = pn.widgets.Button(
            name=pn.bind(lambda n: f"Run sanity check ({1 + n} explanations)", self.param.stages),
            button_type="primary", disabled=self.param.status.rx() == "running", css_classes=["xp-sanity-run"])
        button.on_click(lambda _e: self.compute())
        stop = pn.widgets.Button(name="Cancel", button_type="light", visible=self.param.status.rx() == "running")
        stop.on_click(lambda _e: self.cancel())
        inputs = pn.Param(self, parameters=["stages", "samples", "threshold"], show_name=False, default_layout=pn.Row,
                          widgets={"stages": {"width": 110}, "samples": {"width": 110}, "threshold": {"width": 110}})
        return pn.Column(
            pn.Row(inputs, button, stop),
            pn.indicators.Progress(value=(self.param.progress.rx() * 100).rx.pipe(int), max=100, height=8,
                                   bar_color="primary", sizing_mode="stretch_width",
                                   visible=self.param.status.rx() == "running", css_classes=["xp-sanity-progress"]),
            pn.pane.HTML(pn.bind(self.verdict_html, self.param.check, self.param.status, self.param.error,
                                 self.param.from_cache), stylesheets=[_CSS], sizing_mode="stretch_width",
                         css_classes=["xp-sanity-verdict"]),
            self._plot_pane(),
            sizing_mode="stretch_width",
        )

    def _plot_pane(self) -> pn.pane.HoloViews:
        """The plot, drawn when a check arrives and hidden, not redrawn, when it is dropped (every new
        image drops it: a Bokeh figure built per click would cost the event loop for nothing)."""
        pane = pn.pane.HoloViews(self.plot() if self.check is not None else None, backend="bokeh",
                                 css_classes=["xp-sanity-plot"], visible=self.check is not None)

        def follow(event) -> None:
            if event.new is not None:
                pane.object = self.plot(event.new)
            pane.visible = event.new is not None

        self.param.watch(follow, "check")
        return pane
