"""Stability on request: does the explanation survive a new seed, or invisible noise?

It costs ``seeds + noise_repeats`` explanations, so it runs only when asked, in the
thread pool, with a progress bar and a cancel button; a new image cancels it.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import panel as pn
import param

from ...engine.results import paint
from ...methods.base import method_label
from ...metrics.stability import StabilityReport, stability
from ...render.overlays import grayscale
from ...render.tiles import STRIP_CSS, Tile, colorbar_html, strip_html, tile_cache
from ...runtime.jobs import Job
from ...runtime.jobs import classifier as load_model
from ..widgets.settings import ExplainerSettings
from .base import TABLE_CSS, OnRequestPane

__all__ = ["StabilityPane"]

_SPREAD_SIDE = 220
_VIRIDIS = matplotlib.colormaps["viridis"]
_CSS = TABLE_CSS


def _drawn(report: StabilityReport, selected, method: str) -> int:
    """The class whose spread is drawn: the selected one, else the top class."""
    return selected if selected in report.results[method] else report.top[0].index


def _score(value: float) -> str:
    if value is None or math.isnan(value):
        return "<td>–</td>"
    css = "xp-good" if value >= 0.8 else "xp-mid" if value >= 0.5 else "xp-bad"
    return f"<td class='{css}'>{value:.2f}</td>"


class StabilityPane(OnRequestPane):
    """Seed-to-seed and input-noise stability per method and class, and a per-superpixel spread map."""

    job_name = "stability"

    image = param.Array(default=None, allow_None=True, allow_refs=True, doc="The image to test.")
    model = param.String(default="efficientnet_lite0", allow_refs=True, doc="The classifier.")
    settings = param.ClassSelector(class_=ExplainerSettings, allow_refs=True, doc="Methods and their settings.")
    selected = param.Integer(default=None, allow_None=True, allow_refs=True, doc="Class shown in the spread map.")
    seeds = param.Integer(default=3, bounds=(2, 20), doc="Explanations of the clean image, one per seed.")
    noise_repeats = param.Integer(default=2, bounds=(0, 20), doc="Explanations of noisy copies of the image.")
    noise_sigma = param.Number(default=2.0, bounds=(0.0, 25.0), step=0.5, doc="Noise std in grey levels (0-255).")
    k_top_segments = param.Integer(default=5, bounds=(1, 30), doc="Top superpixels compared by Jaccard.")
    map_method = param.Selector(default=None, objects=[], allow_None=True,
                                doc="Method whose per-superpixel spread is drawn (default: the first registered).")

    report = param.ClassSelector(class_=StabilityReport, default=None, allow_None=True, constant=True,
                                 doc="The last stability report (read-only).")
    mapped = param.Integer(default=None, allow_None=True, constant=True,
                           doc="Class whose spread is drawn (read-only): follows ``selected`` once there is a report.")

    @classmethod
    def from_session(cls, session, inspect=None, **params) -> "StabilityPane":
        params.setdefault("image", session.param.image)
        params.setdefault("model", session.param.model)
        params.setdefault("settings", session.param.settings)
        if inspect is not None:
            params.setdefault("selected", inspect.param.selected)
        return cls(**params)

    def __init__(self, **params):
        from ...methods.base import available_methods

        params.setdefault("settings", ExplainerSettings())
        super().__init__(**params)
        methods = list(available_methods())
        self.param.map_method.objects = {method_label(m): m for m in methods}
        if self.map_method is None:
            self.map_method = methods[0]

    @param.depends("selected", "report", watch=True)
    def _follow_selection(self) -> None:
        mapped = self.selected if self.report is not None else None
        if mapped != self.mapped:  # no redraw for clicks while there is nothing to draw
            self._set(mapped=mapped)

    @property
    def runs(self) -> int:
        return int(self.seeds) + int(self.noise_repeats)

    def compute(self) -> Job | None:
        """Start the stability runs for the current image (cancels a previous computation)."""
        if self.image is None:
            self._set(status="error", error="Select an image first.")
            return None
        request = self.settings.explain_kwargs()
        self._set(status="running", progress=0.0, error="", report=None)
        return self._start(self._work, self.image, self.model, request,
                           dict(seeds=self.seeds, noise_repeats=self.noise_repeats,
                                noise_sigma=self.noise_sigma, k_top_segments=self.k_top_segments))

    @param.depends("image", "model", watch=True)
    def _invalidate(self) -> None:
        self._runner.cancel()
        self._set(report=None, status="idle", progress=0.0, error="")

    @staticmethod
    def _work(job: Job, progress, image, model, request, options) -> dict:
        report = stability(image, load_model(model), methods=request["methods"],
                           base_seed=request["seed"], settings=request["settings"],
                           segmentation=request["segmentation"], segmentation_params=request["segmentation_params"],
                           fill=request["fill"], progress=progress, cancel=job.cancel, **options)
        return {"report": report}

    # -- view ------------------------------------------------------------------------------
    def _table(self, report):
        if report is None:
            return ("<p style='color:#6b7280;font-size:12px;margin:2px 0'>"
                    "Explains the image several times (new seeds; invisible noise) and measures how much the top "
                    "superpixels agree: Jaccard of the top sets and Spearman of the weights (1 = identical), and the "
                    "local Lipschitz estimate under noise (lower = steadier).</p>")
        rows = []
        for method, per_class in report.results.items():
            for rank, score in enumerate(report.top, 1):
                s = per_class.get(score.index)
                if s is None:
                    continue
                lipschitz = "–" if math.isnan(s.lipschitz) else f"{s.lipschitz:.2g}"
                if s.always_empty:
                    rows.append(f"<tr><td>{method_label(method)}</td><td>{rank}. {score.name}</td><td colspan='4' "
                                "class='xp-mid'>empty anchor in every run: nothing to compare</td>"
                                f"<td>{lipschitz}</td></tr>")
                    continue
                rows.append(f"<tr><td>{method_label(method)}</td><td>{rank}. {score.name}</td>{_score(s.seed_jaccard)}"
                            f"{_score(s.seed_spearman)}{_score(s.noise_jaccard)}{_score(s.noise_spearman)}"
                            f"<td>{lipschitz}</td></tr>")
        note = (f"{len(report.seeds)} seeds, {len(report.noise_distances)} noisy copies (σ = {report.noise_sigma:g}); "
                f"{report.forward_passes} forward passes in {report.seconds:.1f} s. Noise moved a probability by at most "
                f"{report.max_probability_change:.3f}" + (" and changed the top class." if report.top_class_changed else "."))
        return (f"<p style='font-size:12px;color:#4b5563;margin:2px 0 6px'>{note}</p>"
                "<div style='overflow-x: auto'><table class='xp-table'><thead><tr><th>method</th><th>class</th>"
                "<th>seed Jaccard</th><th>seed Spearman</th><th>noise Jaccard</th><th>noise Spearman</th>"
                "<th>Lipschitz</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")

    def spread(self, report=None, selected=None, method=None) -> tuple[str, np.ndarray | None]:
        """(title, HxW std of ``method``'s values over the runs, per pixel) for the class
        ``selected`` (default: as drawn now; None values when there is no report)."""
        if report is None:
            report, selected, method = self.report, self.mapped, self.map_method
        if report is None or method not in report.results:
            return "Spread per superpixel", None
        label = _drawn(report, selected, method)
        name = next(c.name for c in report.top if c.index == label)
        return (f"{method_label(method)} std over runs · {name}",
                paint(report.segmentation.labels, report.results[method][label].std))

    def _spread_html(self, report, selected, method) -> str:
        title, values = self.spread(report, selected, method)
        if values is None:
            return strip_html([Tile(title, None)], _SPREAD_SIDE)
        top = max(float(values.max()), 1e-9)

        def draw():
            heat = _VIRIDIS(values / top)[..., :3] * 255
            return (grayscale(report.image, lift=0.3) * 0.35 + heat * 0.65).astype(np.uint8)

        url = tile_cache().get((report,), ("spread", method, _drawn(report, selected, method)), draw)
        return strip_html([Tile(title, url)], _SPREAD_SIDE) + colorbar_html(_VIRIDIS, top, "std", low=0.0)

    def __panel__(self):
        button = pn.widgets.Button(
            name=pn.bind(lambda s, n: f"Compute stability ({s + n} explanations)", self.param.seeds,
                         self.param.noise_repeats),
            button_type="primary", disabled=self.param.status.rx() == "running")
        button.on_click(lambda _e: self.compute())
        stop = pn.widgets.Button(name="Cancel", button_type="light", visible=self.param.status.rx() == "running")
        stop.on_click(lambda _e: self.cancel())
        inputs = pn.Param(self, parameters=["seeds", "noise_repeats", "noise_sigma", "k_top_segments"], show_name=False,
                          default_layout=pn.Row, widgets={"seeds": {"width": 120}, "noise_repeats": {"width": 120},
                                                          "noise_sigma": {"width": 120}, "k_top_segments": {"width": 120}})
        status = pn.bind(lambda st, err: pn.pane.Alert(err, alert_type="danger") if st == "error" else
                         pn.pane.Markdown("Cancelled." if st == "cancelled" else "", margin=(0, 5)),
                         self.param.status, self.param.error)
        return pn.Column(
            inputs,
            pn.Row(button, stop),
            pn.indicators.Progress(value=(self.param.progress.rx() * 100).rx.pipe(int), max=100, height=8,
                                   bar_color="primary", sizing_mode="stretch_width",
                                   visible=self.param.status.rx() == "running", css_classes=["xp-stability-progress"]),
            pn.panel(status),
            # the table under the spread map: the card shares its row with the cost card
            pn.pane.HTML(pn.bind(self._table, self.param.report), stylesheets=[_CSS], sizing_mode="stretch_width"),
            pn.widgets.Select.from_param(self.param.map_method, name="Spread map of", width=200),
            pn.pane.HTML(pn.bind(self._spread_html, self.param.report, self.param.mapped, self.param.map_method),
                         stylesheets=[STRIP_CSS], margin=(5, 10)),
            sizing_mode="stretch_width",
        )
