"""Which explanation to believe: faithfulness against chance, and agreement between methods.

The session measures the trust metrics after the explanations (``ExplanationSession.metrics``);
this pane shows, per method and class, the deletion AUC (lower is better) and insertion AUC
(higher is better) beside their random-order baselines, the curves of the selected class
(one small SVG line plot per method, the random baseline dashed), and the method x method agreement
of the selected class. Nothing here computes: it draws what the explanation holds. The
sanity check (model randomisation) runs on request, from its own sub-pane (``sanity``).
"""

from __future__ import annotations

import html
import math

import panel as pn
import param

from ...engine.results import Explanation
from ...methods.base import method_label
from ...render.curves import CURVES_CSS, CURVES_KEY, curve_svg
from .base import TABLE_CSS
from .sanity import SanityPane

__all__ = ["TrustPane"]

_CSS = TABLE_CSS + """
.xp-table tr.chosen td { background: #eff6ff; }
.xp-agree td, .xp-agree th { text-align: center !important; }
""" + CURVES_CSS


def _versus(value: float, chance: float, lower_is_better: bool) -> str:
    better = value < chance if lower_is_better else value > chance
    css = "xp-good" if better else "xp-bad"
    return f"<td class='{css}'>{value:.3f}</td><td style='color:#6b7280'>{chance:.3f}</td>"


def _shown_class(explanation: Explanation, selected) -> int:
    return selected if selected in explanation.labels else explanation.labels[0]


class TrustPane(pn.viewable.Viewer):
    """Deletion/insertion AUCs against random orders, their curves, and agreement between methods."""

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation whose metrics are shown.")
    measuring = param.Boolean(default=False, allow_refs=True, doc="The metrics are being measured.")
    error = param.String(default="", allow_refs=True, doc="Why the metrics could not be measured.")
    selected = param.Integer(default=None, allow_None=True, allow_refs=True,
                             doc="Class whose curves and agreement are drawn (default: the top class).")
    sanity = param.ClassSelector(class_=SanityPane, default=None, doc=(
        "The model-randomisation sanity check, run on request (its button is in this pane)."))

    @classmethod
    def from_session(cls, session, inspect=None, **params) -> "TrustPane":
        params.setdefault("explanation", session.param.explanation)
        params.setdefault("measuring", session.param.measuring)
        params.setdefault("error", session.param.metrics_error)
        if inspect is not None:
            params.setdefault("selected", inspect.param.selected)
        params.setdefault("sanity", SanityPane.from_session(session))
        return cls(**params)

    def __init__(self, **params):
        super().__init__(**params)
        if self.sanity is None:
            self.sanity = SanityPane()

    # -- the AUC table ----------------------------------------------------------------------
    def table_html(self, explanation=None, measuring=None, error=None, selected=None) -> str:
        if explanation is None and measuring is None:
            explanation, measuring, error, selected = self.explanation, self.measuring, self.error, self.selected
        if error:
            return f"<p class='xp-note xp-bad'>The trust metrics could not be measured: {html.escape(error)}</p>"
        if explanation is None or not explanation.faithfulness:
            what = ("Measuring faithfulness and agreement…" if measuring else
                    "Faithfulness is measured after the explanations: how fast the class's probability falls when "
                    "a method's most important superpixels are hidden first (deletion) and rises when they are "
                    "revealed first (insertion), against random orders.")
            return f"<p class='xp-note'>{what}</p>"
        chosen = _shown_class(explanation, selected)
        settings = explanation.metric_settings.get("faithfulness", {})
        any_f = next(iter(next(iter(explanation.faithfulness.values())).values()))
        steps = len(any_f.hidden) - 1
        rows, rise = [], False
        for method, per_class in explanation.faithfulness.items():
            for rank, score in enumerate(explanation.top, 1):
                f = per_class.get(score.index)
                if f is None:
                    continue
                rise = rise or f.pixel is not None
                pixel = (f"<td>{f.pixel.deletion_auc:.3f}</td><td>{f.pixel.insertion_auc:.3f}</td>" if f.pixel is not None
                         else "<td>–</td><td>–</td>")
                chosen_row = "chosen" if score.index == chosen else ""
                rows.append(f"<tr class='{chosen_row}'><td>{html.escape(method_label(method))}</td>"
                            f"<td>{rank}. {html.escape(score.name)}</td>"
                            f"{_versus(f.deletion_auc, f.random_deletion_auc, True)}"
                            f"{_versus(f.insertion_auc, f.random_insertion_auc, False)}"
                            + (pixel if rise else "") + "</tr>")
        cost = explanation.costs.get("faithfulness")
        note = (f"Deletion AUC: <b>lower is better</b>; insertion AUC: <b>higher is better</b>; green where the method "
                f"beats {settings.get('random_orders', '?')} random orders. {steps} steps over "
                f"{any_f.n_segments} superpixels, hidden superpixels show the explanation's fill"
                + (f"; {cost.forward_passes} forward passes in {cost.wall_seconds:.1f} s." if cost else "."))
        head = ("<th>method</th><th>class</th><th>deletion</th><th>random</th><th>insertion</th><th>random</th>"
                + ("<th title='RISE pixel protocol (224x8-pixel steps), top class'>RISE del.</th><th>RISE ins.</th>"
                   if rise else ""))
        return (f"<p class='xp-note'>{note}</p><div style='overflow-x:auto'><table class='xp-table xp-trust'>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")

    # -- the agreement matrix ------------------------------------------------------------------
    def agreement_html(self, explanation=None, selected=None) -> str:
        if explanation is None:
            explanation, selected = self.explanation, self.selected
        if explanation is None or not explanation.agreement:
            return ""
        chosen = _shown_class(explanation, selected)
        agree = explanation.agreement.get(chosen)
        if agree is None or len(agree.methods) < 2:
            return ""
        name = next(c.name for c in explanation.top if c.index == chosen)
        heads = "".join(f"<th>{html.escape(method_label(m))}</th>" for m in agree.methods)
        body = []
        # an empty anchor's IoU of 0 is no disagreement: it holds no region to compare
        empty = [bool(getattr(explanation.results.get(m, {}).get(chosen), "empty", False)) for m in agree.methods]
        for i, a in enumerate(agree.methods):
            cells = []
            for j, _ in enumerate(agree.methods):
                if i == j:
                    cells.append("<td style='color:#9ca3af'>·</td>")
                    continue
                if empty[i] or empty[j]:
                    cells.append("<td style='color:#9ca3af'>– empty anchor</td>")
                    continue
                parts = []
                if not math.isnan(agree.spearman[i, j]):
                    parts.append(f"ρ {agree.spearman[i, j]:+.2f}")
                parts.append(f"IoU {agree.iou[i, j]:.2f}")
                if not agree.ranked[i] and not math.isnan(agree.inside[i, j]):
                    parts.append(f"in top-{agree.k} {agree.inside[i, j]:.0%}")
                cells.append(f"<td>{'<br>'.join(parts)}</td>")
            body.append(f"<tr><th>{html.escape(method_label(a))}</th>{''.join(cells)}</tr>")
        return (f"<p class='xp-note'>Agreement for <b>{html.escape(name)}</b>: Spearman ρ of the scores, IoU of the "
                f"top-{agree.k} superpixels (an anchor is its own set), and for an anchor the share of it inside the "
                f"other method's top-{agree.k}.</p><table class='xp-table xp-agree'><thead><tr><th></th>{heads}</tr>"
                f"</thead><tbody>{''.join(body)}</tbody></table>")

    # -- the curves -------------------------------------------------------------------------------
    def curves(self, explanation=None, selected=None) -> str:
        """One small line plot per method (inline SVG): deletion and insertion of the selected class, random dashed.

        SVG rather than a Bokeh figure: a click redraws these plots, and three HoloViews plots cost
        about 0.25 s of the server's event loop per click (measured), an SVG string nothing."""
        if explanation is None:
            explanation, selected = self.explanation, self.selected
        if explanation is None or not explanation.faithfulness:
            return ""
        chosen = _shown_class(explanation, selected)
        plots = [curve_svg(method_label(method), per_class[chosen]) for method, per_class in
                 explanation.faithfulness.items() if chosen in per_class]
        return f"<div class='xp-curves'>{''.join(plots)}</div>"

    def __panel__(self):
        key = pn.pane.HTML(
            f"<span class='xp-note'>{CURVES_KEY}</span>",
            margin=(0, 10), visible=self.param.explanation.rx().rx.pipe(lambda e: bool(e is not None and e.faithfulness)))
        return pn.Column(
            pn.pane.HTML(pn.bind(self.table_html, self.param.explanation, self.param.measuring, self.param.error,
                                 self.param.selected), stylesheets=[_CSS], sizing_mode="stretch_width",
                         css_classes=["xp-trust-table"]),
            key,
            pn.pane.HTML(pn.bind(self.curves, self.param.explanation, self.param.selected), stylesheets=[_CSS],
                         css_classes=["xp-trust-curves"], sizing_mode="stretch_width"),
            pn.pane.HTML(pn.bind(self.agreement_html, self.param.explanation, self.param.selected),
                         stylesheets=[_CSS], sizing_mode="stretch_width", css_classes=["xp-trust-agreement"]),
            pn.pane.HTML("<b style='font-size:13px'>Sanity check · model randomisation</b>", margin=(10, 10, 0, 10)),
            self.sanity,
            sizing_mode="stretch_width",
        )
