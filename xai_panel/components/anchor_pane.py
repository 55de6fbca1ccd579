"""Anchors: per class, the superpixels that on their own keep the prediction, with examples."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from .method_pane import CANVAS, MethodPane, blank, rgb, selected_title
from .rendering import anchor_overlay

__all__ = ["AnchorPane", "montage"]


def montage(images, gap: int = 6, fill: int = 255, slots: int | None = None,
            tile: tuple[int, int] = (224, 224)) -> np.ndarray:
    """Images side by side with a gap, padded with blank tiles up to ``slots``."""
    images = [np.asarray(i, np.uint8) for i in images]
    if slots is not None:
        shape = images[0].shape if images else (*tile, 3)
        images = images[:slots] + [np.full(shape, 246, np.uint8)] * max(0, slots - len(images))
    if not images:
        images = [np.full((*tile, 3), 246, np.uint8)]
    h = max(i.shape[0] for i in images)
    parts = []
    for image in images:
        pad = np.full((h, image.shape[1] + gap, 3), fill, np.uint8)
        pad[: image.shape[0], : image.shape[1]] = image
        parts.append(pad)
    return np.concatenate(parts, axis=1)[:, :-gap]


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
        self._example_slots = self.max_examples
        deps = dict(explanation=self.param.explanation, selected=self.param.selected, n=self.param.max_examples)
        import holoviews as hv

        self._examples = hv.DynamicMap(pn.bind(self._example_strip, kind="examples", **deps))
        self._counter = hv.DynamicMap(pn.bind(self._example_strip, kind="counter_examples", **deps))

    def _frame(self, explanation, slot, rank, label, name, chosen):
        anchor = explanation.anchors[label]
        image = anchor_overlay(explanation.image, explanation.segmentation.labels, anchor)
        stat = f" · P {anchor.precision:.0%}" if anchor.found else " · no anchor"
        return rgb(image, selected_title(rank, name, chosen, stat), **self._opts())

    def _example_strip(self, explanation, selected, n, kind):
        slots = max(1, self._example_slots)
        opts = {"frame_height": 104, "frame_width": int(104 * slots * 1.027), "xaxis": None, "yaxis": None,
                "toolbar": None, "default_tools": [], "fontsize": {"title": 10}, **CANVAS}
        results = self.results(explanation)
        anchor = results.get(selected) if selected is not None else None
        if anchor is None and results:
            anchor = next(iter(results.values()))
        what = "keep" if kind == "examples" else "lose"
        if anchor is None:
            return rgb(montage([], slots=slots), f"Perturbed images that {what} the class", **opts)
        images = list(getattr(anchor, kind))[:slots]
        name = next((c.name for c in explanation.top if c.index == anchor.label), str(anchor.label))
        title = f"Perturbed images (anchor kept) that {what} “{name}”: {len(images) or 'none'}"
        return rgb(montage(images, slots=slots), title, **opts)

    def _table(self, explanation):
        results = self.results(explanation)
        if not results:
            return pn.pane.HTML("")
        rows = []
        for rank, score in enumerate(explanation.top, 1):
            a = results.get(score.index)
            if a is None:
                continue
            status = "found" if a.found else f"best effort (below {explanation.settings.get('anchors', {}).get('threshold', 0.95):.0%})"
            rows.append(f"<tr><td>{rank}. {score.name}</td><td>{a.target}</td><td>{len(a.segments)}</td>"
                        f"<td>{a.precision:.1%}</td><td>{a.coverage:.1%}</td><td>{status}</td></tr>")
        return pn.pane.HTML(
            "<table class='xp-table'><thead><tr><th>class</th><th>holds</th><th>superpixels</th>"
            "<th>precision</th><th>coverage</th><th>anchor</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>",
            stylesheets=[_TABLE_CSS], sizing_mode="stretch_width")

    def _details(self) -> list:
        import holoviews as hv

        return [
            pn.panel(pn.bind(self._table, self.param.explanation), sizing_mode="stretch_width"),
            pn.pane.HoloViews(self._examples, linked_axes=False, sizing_mode="stretch_width", css_classes=["xp-anchor-examples"]),
            pn.pane.HoloViews(self._counter, linked_axes=False, sizing_mode="stretch_width", css_classes=["xp-anchor-counter"]),
        ]


_TABLE_CSS = """
.xp-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.xp-table th { text-align: left; color: #6b7280; font-weight: 600; border-bottom: 1px solid #e5e7eb; padding: 3px 8px; }
.xp-table td { border-bottom: 1px solid #f3f4f6; padding: 3px 8px; }
"""
