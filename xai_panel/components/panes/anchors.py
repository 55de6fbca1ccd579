"""Anchors: per class, the superpixels that on their own keep the prediction, with examples."""

from __future__ import annotations

import html

import panel as pn
import param

from ...methods.anchors import NO_TARGET, AnchorResult
from ...render.overlays import anchor_overlay
from ...render.tiles import STRIP_CSS, Tile, strip_html, tile_cache
from .base import MethodPane

__all__ = ["AnchorPane"]

_TABLE_CSS = """
.xp-table { border-collapse: collapse; font-size: 12px; width: 100%; font-variant-numeric: tabular-nums; }
.xp-table th { text-align: left; color: #6b7280; font-weight: 600; border-bottom: 1px solid #e5e7eb; padding: 3px 8px; }
.xp-table td { border-bottom: 1px solid #f3f4f6; padding: 3px 8px; }
"""

_EMPTY_CSS = ".xp-anchor-empty { font: 12px/1.4 system-ui, sans-serif; color: #92400e; max-width: 640px; margin: 4px 0; }"


class AnchorPane(MethodPane):
    """Per class, the anchor (amber outline) with its precision and coverage, and perturbed examples."""

    result_type = AnchorResult
    description = ("Amber: the anchor, superpixels that kept on their own hold the prediction with the stated "
                   "precision whatever else is hidden; coverage is how often a random perturbation keeps them.")

    max_examples = param.Integer(default=4, bounds=(1, 20), constant=True,
                                 doc="Example perturbed images shown for the inspected class.")

    example_size = param.Integer(default=96, bounds=(48, 256), constant=True, doc="Side of the example images (px).")

    def _draw(self, explanation, label):
        return anchor_overlay(explanation.image, explanation.segmentation.labels, self.results(explanation)[label])

    def _suffix(self, explanation, label):
        anchor = self.results(explanation)[label]
        if anchor.target == NO_TARGET:
            return " · no target"
        if anchor.empty:
            return " · empty anchor"
        return f" · P {anchor.precision:.0%}" if anchor.found else " · no anchor"

    def inspected(self, explanation=None, selected=None):
        """The anchor of the class being inspected (or of the top class)."""
        results = self.results(explanation)
        selected = self.marked if selected is None else selected
        return results.get(selected) or (next(iter(results.values())) if results else None)

    def examples_html(self, explanation=None, selected=None, kind: str = "examples") -> str:
        """The inspected class's perturbed images that keep (``examples``) or lose (``counter_examples``) it."""
        if explanation is None:
            explanation, selected = self.shown, self.marked
        slots = self.max_examples
        anchor = self.inspected(explanation, selected)
        what = "keep" if kind == "examples" else "lose"
        if anchor is None:
            return strip_html([Tile("", None)] * slots, self.example_size, f"Perturbed images that {what} the class",
                              "xp-anchor-strip")
        name = next((c.name for c in explanation.classes if c.index == anchor.label), str(anchor.label))
        if anchor.empty:  # its examples are random perturbations keeping nothing: say why instead
            if kind != "examples":
                return ""
            return (f"<p class='xp-note xp-anchor-empty'><b>{html.escape(name)}: empty anchor (needs no region).</b> "
                    f"{html.escape(anchor.message)}</p>")
        images = list(getattr(anchor, kind))[:slots]
        title = f"Anchor kept, the rest hidden at random: {what} “{name}” ({len(images) or 'none'})"
        tiles = [Tile(f"{i + 1}", tile_cache().get((anchor,), (kind, i), lambda image=image: image))
                 for i, image in enumerate(images)]
        return strip_html(tiles + [Tile("", None)] * (slots - len(tiles)), self.example_size, title, "xp-anchor-strip")

    def prerender(self, explanation) -> None:
        super().prerender(explanation)
        for anchor in self.results(explanation).values():
            for kind in ("examples", "counter_examples"):
                for i, image in enumerate(list(getattr(anchor, kind))[: self.max_examples]):
                    tile_cache().get((anchor,), (kind, i), lambda image=image: image)

    def _table(self, explanation) -> str:
        results = self.results(explanation)
        if not results:
            return ""
        threshold = explanation.settings.get(self.method, {}).get("threshold", 0.95)
        rows = []
        ranked = [(f"{rank}.", score) for rank, score in enumerate(explanation.top, 1)]
        for where, score in ranked + [("asked:", score) for score in explanation.asked]:
            a = results.get(score.index)
            if a is None:
                continue
            status = {"best effort": f"best effort (below {threshold:.0%})",
                      "empty": "empty (needs no region)"}.get(a.status, a.status)
            rows.append(f"<tr><td>{where} {html.escape(score.name)}</td><td>{a.target}</td><td>{len(a.segments)}</td>"
                        f"<td>{a.precision:.1%}</td><td>{a.coverage:.1%}</td><td>{status}</td></tr>")
            if a.message:
                rows.append(f"<tr class='xp-anchor-note'><td colspan='6'>{html.escape(score.name)}: "
                            f"{html.escape(a.message)}</td></tr>")
        return ("<table class='xp-table'><thead><tr><th>class</th><th>holds as</th><th>superpixels</th>"
                "<th>precision</th><th>coverage</th><th>anchor</th></tr></thead><tbody>" + "".join(rows)
                + "</tbody></table>")

    def _details(self) -> list:
        deps = dict(explanation=self.param.shown, selected=self.param.marked)
        strip = dict(stylesheets=[STRIP_CSS, _EMPTY_CSS], margin=(5, 10))
        return [
            pn.Row(
                pn.pane.HTML(pn.bind(self.examples_html, kind="examples", **deps), css_classes=["xp-anchor-examples"],
                             **strip),
                pn.pane.HTML(pn.bind(self.examples_html, kind="counter_examples", **deps),
                             css_classes=["xp-anchor-counter"], **strip),
            ),
            pn.pane.HTML(pn.bind(self._table, self.param.shown), stylesheets=[_TABLE_CSS], sizing_mode="stretch_width"),
        ]
