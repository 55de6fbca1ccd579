"""What the explanation cost: wall time, forward and backward passes and cache hits per method, live."""

from __future__ import annotations

import panel as pn
import param

from ...engine.results import Explanation

__all__ = ["TimingPane"]



def _order() -> tuple[str, ...]:
    from ...methods.base import available_methods

    return ("top-k", *available_methods(), "faithfulness")


def _name(method: str) -> str:
    from ...methods.base import registry

    cls = registry().get(method)
    if cls is not None:
        return cls.label
    return {"top-k": "segment + top-k", "faithfulness": "trust metrics"}.get(method, method)
_CSS = """
.xp-table { border-collapse: collapse; font-size: 12px; width: 100%; font-variant-numeric: tabular-nums; }
.xp-table th { text-align: right; color: #6b7280; font-weight: 600; border-bottom: 1px solid #e5e7eb; padding: 3px 8px; }
.xp-table th:first-child, .xp-table td:first-child { text-align: left; }
.xp-table td { text-align: right; border-bottom: 1px solid #f3f4f6; padding: 3px 8px; }
.xp-table tr.total td { font-weight: 600; border-top: 1px solid #e5e7eb; }
.xp-bars { display: grid; grid-template-columns: max-content 1fr max-content; gap: 5px 8px; align-items: center;
           font: 12px system-ui, sans-serif; color: #374151; font-variant-numeric: tabular-nums; margin: 4px 0 8px; }
.xp-bar { display: flex; height: 14px; background: #f3f4f6; border-radius: 3px; overflow: hidden; }
.xp-bar .model { background: #2563eb; } .xp-bar .other { background: #f59e0b; }
.xp-key { font: 11px system-ui, sans-serif; color: #6b7280; }
.xp-key i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px -1px 10px; }
"""


def _ready(timings: dict, method: str) -> str:
    """Seconds from the click until ``method``'s result was ready ('top-k' is the session's 'top')."""
    seconds = timings.get({"top-k": "top", "faithfulness": "trust"}.get(method, method))
    return "–" if seconds is None else f"{seconds:.2f}"


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

    @staticmethod
    def rows(explanation: Explanation | None) -> list[dict]:
        """One dict per method with its costs (for tables, tests and notebooks)."""
        if explanation is None:
            return []
        out = []
        for method in _order():
            cost = explanation.costs.get(method)
            if cost is not None:
                out.append({"method": method, "wall_seconds": cost.wall_seconds, "model_seconds": cost.model_seconds,
                            "forward_passes": cost.forward_passes, "cache_hits": cost.cache_hits,
                            "samples": cost.samples, "backward_passes": cost.backward_passes})
        return out

    def _bars(self, explanation) -> str:
        """A stacked bar per method, model time (blue) and the rest (amber), on one scale."""
        rows = self.rows(explanation)
        if not rows:
            return ""
        longest = max(max(r["wall_seconds"] for r in rows), 1e-9)
        cells = []
        for r in rows:
            model = min(r["model_seconds"], r["wall_seconds"])
            other = max(0.0, r["wall_seconds"] - model)
            cells.append(
                f"<span>{_name(r['method'])}</span><div class='xp-bar' title='model {model:.2f} s, other {other:.2f} s'>"
                f"<div class='model' style='width: {100 * model / longest:.1f}%'></div>"
                f"<div class='other' style='width: {100 * other / longest:.1f}%'></div></div>"
                f"<span>{r['wall_seconds']:.2f} s</span>")
        key = "<div class='xp-key'>wall time:<i style='background:#2563eb'></i>model<i style='background:#f59e0b'></i>other</div>"
        return f"<div class='xp-bars'>{''.join(cells)}</div>{key}"

    def _table(self, explanation, timings, from_cache):
        rows = self.rows(explanation)
        if not rows:
            return "<p style='color:#6b7280;margin:4px 0'>No explanation yet.</p>"
        body = "".join(
            f"<tr><td>{_name(r['method'])}</td><td>{r['wall_seconds']:.2f}</td><td>{r['model_seconds']:.2f}</td>"
            f"<td>{r['forward_passes']}</td><td>{r['cache_hits']}</td><td>{r['backward_passes']}</td>"
            f"<td>{_ready(timings, r['method'])}</td></tr>"
            for r in rows)
        total = (f"<tr class='total'><td>total</td><td>{sum(r['wall_seconds'] for r in rows):.2f}</td>"
                 f"<td>{sum(r['model_seconds'] for r in rows):.2f}</td><td>{sum(r['forward_passes'] for r in rows)}</td>"
                 f"<td>{sum(r['cache_hits'] for r in rows)}</td><td>{sum(r['backward_passes'] for r in rows)}</td>"
                 f"<td>{_ready(timings, 'done')}</td></tr>")
        note = ("<p style='color:#16a34a;font-size:12px;margin:4px 0'>Served from the cache: no model pass this time.</p>"
                if from_cache else "")
        return (note + "<table class='xp-table'><thead><tr><th>method</th><th>wall s</th><th>model s</th>"
                "<th>forward passes</th><th>cache hits</th><th>backward passes</th><th>ready after s</th></tr></thead>"
                f"<tbody>{body}{total}</tbody></table>")

    def _live(self, running, progress):
        if not running:
            return ""
        return (f"<span style='font-size:12px;color:#374151'>Computing <b>{_name(running)}</b>: "
                f"{progress:.0%} of its model passes</span>")

    def __panel__(self):
        return pn.Column(
            pn.pane.HTML(pn.bind(self._bars, self.param.explanation), stylesheets=[_CSS], sizing_mode="stretch_width"),
            pn.pane.HTML(pn.bind(self._live, self.param.running, self.param.progress)),
            pn.indicators.Progress(value=(self.param.progress.rx() * 100).rx.pipe(int), max=100, height=6,
                                   bar_color="primary", sizing_mode="stretch_width",
                                   visible=self.param.running.rx().rx.pipe(bool)),
            pn.pane.HTML(pn.bind(self._table, self.param.explanation, self.param.timings, self.param.from_cache),
                         stylesheets=[_CSS], sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
