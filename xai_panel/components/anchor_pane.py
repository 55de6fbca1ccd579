"""Anchors: per class, the superpixels that on their own keep the prediction, with examples."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from .method_pane import CANVAS, MethodPane, montage, rgb
from .rendering import anchor_overlay

__all__ = ["AnchorPane", "example_strip"]

_EXAMPLE_GAP = 6
_TABLE_CSS = """
.xp-table { border-collapse: collapse; font-size: 12px; width: 100%; font-variant-numeric: tabular-nums; }
.xp-table th { text-align: left; color: #6b7280; font-weight: 600; border-bottom: 1px solid #e5e7eb; padding: 3px 8px; }
.xp-table td { border-bottom: 1px solid #f3f4f6; padding: 3px 8px; }
"""


def example_strip(images, slots: int, tile: tuple[int, int] = (224, 224)) -> np.ndarray:
    """Up to ``slots`` images side by side, padded with blank tiles (a constant shape)."""
    images = [np.asarray(i, np.uint8) for i in images][:slots]
    shape = images[0].shape if images else (*tile, 3)
    return montage(images + [np.full(shape, 246, np.uint8)] * (slots - len(images)), gap=_EXAMPLE_GAP)


class AnchorPane(MethodPane):
    """Per class, the anchor (amber outline) with its precision and coverage, and perturbed examples."""

    method = "anchors"
    title = "Anchors"
    description = ("Amber: the anchor, superpixels that kept on their own hold the prediction with the stated "
                   "precision whatever else is hidden; coverage is how often a random perturbation keeps them.")

    max_examples = param.Integer(default=4, bounds=(1, 20), constant=True,
                                 doc="Example perturbed images shown for the inspected class.")

    def __init__(self, **params):
        super().__init__(**params)
        deps = dict(explanation=self.param.shown, selected=self.param.marked)
        self._examples = hv.DynamicMap(pn.bind(self._example_strip, kind="examples", **deps))
        self._counter = hv.DynamicMap(pn.bind(self._example_strip, kind="counter_examples", **deps))

    def _tile(self, explanation, label):
        anchor = explanation.anchors[label]
        image = anchor_overlay(explanation.image, explanation.segmentation.labels, anchor)
        return image, (f" · P {anchor.precision:.0%}" if anchor.found else " · no anchor")

    def inspected(self, explanation=None, selected=None):
        """The anchor of the class being inspected (or of the top class)."""
        results = self.results(explanation)
        selected = self.marked if selected is None else selected
        return results.get(selected) or (next(iter(results.values())) if results else None)

    def _example_strip(self, explanation, selected, kind):
        slots = self.max_examples
        units = (slots * 224 + (slots - 1) * _EXAMPLE_GAP) / 224
        opts = {"frame_height": 96, "frame_width": int(96 * units), "xaxis": None, "yaxis": None, "toolbar": None,
                "default_tools": [], "fontsize": {"title": 10}, **CANVAS}
        anchor = self.inspected(explanation, selected)
        what = "keep" if kind == "examples" else "lose"
        if anchor is None:
            return rgb(example_strip([], slots), f"Perturbed images that {what} the class", **opts)
        images = list(getattr(anchor, kind))[:slots]
        name = next((c.name for c in explanation.top if c.index == anchor.label), str(anchor.label))
        title = f"Anchor kept, the rest hidden at random: {what} “{name}” ({len(images) or 'none'})"
        return rgb(example_strip(images, slots), title, **opts)

    def _table(self, explanation):
        results = self.results(explanation)
        if not results:
            return pn.pane.HTML("")
        threshold = explanation.settings.get("anchors", {}).get("threshold", 0.95)
        rows = []
        for rank, score in enumerate(explanation.top, 1):
            a = results.get(score.index)
            if a is None:
                continue
            status = "found" if a.found else f"best effort (below {threshold:.0%})"
            rows.append(f"<tr><td>{rank}. {score.name}</td><td>{a.target}</td><td>{len(a.segments)}</td>"
                        f"<td>{a.precision:.1%}</td><td>{a.coverage:.1%}</td><td>{status}</td></tr>")
        return pn.pane.HTML(
            "<table class='xp-table'><thead><tr><th>class</th><th>holds as</th><th>superpixels</th>"
            "<th>precision</th><th>coverage</th><th>anchor</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>",
            stylesheets=[_TABLE_CSS], sizing_mode="stretch_width")

    def _details(self) -> list:
        return [
            pn.Row(
                pn.pane.HoloViews(self._examples, linked_axes=False, css_classes=["xp-anchor-examples"]),
                pn.pane.HoloViews(self._counter, linked_axes=False, css_classes=["xp-anchor-counter"]),
            ),
            pn.panel(pn.bind(self._table, self.param.shown), sizing_mode="stretch_width"),
        ]
