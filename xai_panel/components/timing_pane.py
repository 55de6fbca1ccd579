"""What the explanation cost: wall time, forward passes and cache hits per method, live."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from ..explain.results import Explanation
from .method_pane import CANVAS

__all__ = ["TimingPane"]

_ORDER = ("top-k", "lime", "anchors", "shap")
_NAMES = {"top-k": "segment + top-k", "lime": "LIME", "anchors": "Anchors", "shap": "SHAP"}
_CSS = """
.xp-table { border-collapse: collapse; font-size: 12px; width: 100%; font-variant-numeric: tabular-nums; }
.xp-table th { text-align: right; color: #6b7280; font-weight: 600; border-bottom: 1px solid #e5e7eb; padding: 3px 8px; }
.xp-table th:first-child, .xp-table td:first-child { text-align: left; }
.xp-table td { text-align: right; border-bottom: 1px solid #f3f4f6; padding: 3px 8px; }
.xp-table tr.total td { font-weight: 600; border-top: 1px solid #e5e7eb; }
"""


class TimingPane(pn.viewable.Viewer):
    """A stacked bar per method (model time vs everything else) and the numbers behind it."""

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation whose costs are shown.")
    running = param.String(default="", allow_refs=True, doc="The method being computed now.")
    progress = param.Number(default=0.0, bounds=(0, 1), allow_refs=True, doc="Its share of model passes done.")
    timings = param.Dict(default={}, allow_refs=True, doc="Seconds from the request to each result.")
    from_cache = param.Boolean(default=False, allow_refs=True, doc="The explanation came from the cache.")

    @classmethod
    def from_session(cls, session, **params) -> "TimingPane":
        for name in ("explanation", "running", "progress", "timings", "from_cache"):
            params.setdefault(name, session.param[name])
        return cls(**params)

    def __init__(self, **params):
        super().__init__(**params)
        self._chart = hv.DynamicMap(pn.bind(self._bars, self.param.explanation))

    @staticmethod
    def rows(explanation: Explanation | None) -> list[dict]:
        """One dict per method with its costs (for tables, tests and notebooks)."""
        if explanation is None:
            return []
        out = []
        for method in _ORDER:
            cost = explanation.costs.get(method)
            if cost is not None:
                out.append({"method": method, "wall_seconds": cost.wall_seconds, "model_seconds": cost.model_seconds,
                            "forward_passes": cost.forward_passes, "cache_hits": cost.cache_hits,
                            "samples": cost.samples})
        return out

    def _bars(self, explanation):
        data = []
        for row in self.rows(explanation):
            name = _NAMES[row["method"]]
            data.append((name, "model", row["model_seconds"]))
            data.append((name, "other", max(0.0, row["wall_seconds"] - row["model_seconds"])))
        if not data:
            data = [(_NAMES[m], part, 0.0) for m in _ORDER for part in ("model", "other")]
        bars = hv.Bars(data, kdims=["method", "part"], vdims=["seconds"])
        return bars.opts(stacked=True, invert_axes=True, cmap={"model": "#2563eb", "other": "#f59e0b"},
                         responsive=True, height=170, toolbar=None, default_tools=[], tools=["hover"], **CANVAS,
                         legend_position="bottom_right", xlabel="seconds", ylabel="", title="")

    def _table(self, explanation, timings, from_cache):
        rows = self.rows(explanation)
        if not rows:
            return pn.pane.Markdown("No explanation yet.", styles={"color": "#6b7280"})
        body = "".join(
            f"<tr><td>{_NAMES[r['method']]}</td><td>{r['wall_seconds']:.2f}</td><td>{r['model_seconds']:.2f}</td>"
            f"<td>{r['forward_passes']}</td><td>{r['cache_hits']}</td><td>{timings.get(r['method'], float('nan')):.2f}</td></tr>"
            for r in rows)
        total = (f"<tr class='total'><td>total</td><td>{sum(r['wall_seconds'] for r in rows):.2f}</td>"
                 f"<td>{sum(r['model_seconds'] for r in rows):.2f}</td><td>{sum(r['forward_passes'] for r in rows)}</td>"
                 f"<td>{sum(r['cache_hits'] for r in rows)}</td><td>{timings.get('done', float('nan')):.2f}</td></tr>")
        note = "<p style='color:#16a34a;font-size:12px;margin:4px 0'>Served from the cache: no model pass this time.</p>" if from_cache else ""
        return pn.pane.HTML(
            note + "<table class='xp-table'><thead><tr><th>method</th><th>wall s</th><th>model s</th>"
            "<th>forward passes</th><th>cache hits</th><th>ready after s</th></tr></thead>"
            f"<tbody>{body}{total}</tbody></table>", stylesheets=[_CSS], sizing_mode="stretch_width")

    def _live(self, running, progress):
        if not running:
            return pn.pane.HTML("")
        return pn.pane.HTML(f"<span style='font-size:12px;color:#374151'>Computing <b>{_NAMES.get(running, running)}</b>: "
                            f"{progress:.0%} of its model passes</span>")

    def __panel__(self):
        return pn.Column(
            pn.pane.HoloViews(self._chart, linked_axes=False, sizing_mode="stretch_width", height=170),
            pn.panel(pn.bind(self._live, self.param.running, self.param.progress)),
            pn.indicators.Progress(value=(self.param.progress.rx() * 100).rx.pipe(int), max=100, height=6,
                                   bar_color="primary", sizing_mode="stretch_width",
                                   visible=self.param.running.rx().rx.pipe(bool)),
            pn.panel(pn.bind(self._table, self.param.explanation, self.param.timings, self.param.from_cache),
                     sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
