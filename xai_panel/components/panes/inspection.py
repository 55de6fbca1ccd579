"""Inspect one class's explanations in HoloViews: the value (and the superpixel) under the cursor.

The method panes are JPEG tiles (fast to send, nothing to hover). This view draws, for the
class being inspected, each method's map as an ``hv.Image`` over the image (``hv.RGB``):
axes shared across the methods (zoom or pan one, all follow), a hover tool that reads the
score and the superpixel id under the cursor, and a colour bar on the method's own scale
(symmetric, the largest |score| over the explained classes, as the method's pane uses).
It is built only when its card is opened (``frame.lazy_card``), so a click pays for it only
once someone looks.
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (the options below are the Bokeh backend's)
import numpy as np
import panel as pn
import param

from ...engine.results import Explanation, ScoreResult
from ...render.overlays import score_map, symmetric_limit

__all__ = ["InspectionPane", "inspection_plot"]


def _method_label(method: str) -> str:
    from ...methods.base import method_class

    return method_class(method).label


def inspection_plot(explanation: Explanation, label: int, size: int = 320) -> hv.Layout | None:
    """One overlay per method with results for ``label``: the image, the scores, a hover."""
    segments = explanation.segmentation.labels
    h, w = segments.shape
    bounds = (0, 0, w, h)  # pixel coordinates, y up: row 0 at the top
    ids = np.flipud(segments).astype(np.int32)
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    overlays = []
    for method in explanation.methods:
        result = explanation.results[method].get(label)
        if result is None or not isinstance(result, ScoreResult):
            continue
        maps = [score_map(segments, r) for r in explanation.results[method].values() if isinstance(r, ScoreResult)]
        limit = symmetric_limit(maps)
        values = np.flipud(score_map(segments, result))
        name = _method_label(method)
        image = hv.RGB(explanation.image, bounds=bounds, kdims=["x", "y"])  # an array: row 0 is the top
        scores = hv.Image((xs, ys, values, ids), kdims=["x", "y"], vdims=[hv.Dimension("score", label=f"{name} score"),
                                                                          hv.Dimension("superpixel")])
        scores = scores.opts(cmap="RdBu_r", clim=(-limit, limit), alpha=0.55, colorbar=True, tools=["hover"],
                             hover_tooltips=[("x, y", "$x{0}, $y{0}"), (f"{name} score", "@image{0.0000}"),
                                             ("superpixel", "@superpixel")])
        overlays.append((image * scores).opts(title=name, width=size + 80, height=size, xaxis=None, yaxis=None,
                                              toolbar="above"))
    if not overlays:
        return None
    return hv.Layout(overlays).cols(len(overlays)).opts(shared_axes=True)


class InspectionPane(pn.viewable.Viewer):
    """The HoloViews inspection of the selected class (build it when it is to be seen)."""

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation to inspect.")
    selected = param.Integer(default=None, allow_None=True, allow_refs=True,
                             doc="Index of the class to inspect (default: the top class).")
    plot_size = param.Integer(default=300, bounds=(120, 800), doc="Height of each plot (px).")

    @classmethod
    def from_session(cls, session, inspect=None, **params) -> "InspectionPane":
        params.setdefault("explanation", session.param.explanation)
        if inspect is not None:
            params.setdefault("selected", inspect.param.selected)
        return cls(**params)

    def label(self) -> int | None:
        """The class inspected: ``selected`` if explained, else the top class."""
        e = self.explanation
        if e is None or not e.top:
            return None
        return self.selected if self.selected in e.labels else e.top[0].index

    def __init__(self, **params):
        super().__init__(**params)
        self._caption = pn.pane.Markdown("Explain an image to inspect its maps here.", margin=(0, 10),
                                         css_classes=["xp-inspect-caption"])
        self._plot = pn.pane.HoloViews(None, backend="bokeh", css_classes=["xp-inspect-plot"], visible=False)
        self._key: tuple | None = None
        self._built = False

    def _results_key(self, label) -> tuple | None:
        """What the plot shows: the image, and each method's result for the class (by identity:
        an explanation that only gained trust metrics or another method's preview keeps it)."""
        e = self.explanation
        if label is None:
            return None
        return (id(e.image), label, self.plot_size,
                tuple((m, id(e.results[m].get(label))) for m in e.methods))

    @param.depends("explanation", "selected", "plot_size", watch=True)
    def _update(self) -> None:
        if not self._built:  # not on the page yet: nothing to draw
            return
        label = self.label()
        key = self._results_key(label)
        if key == self._key:
            return
        self._key = key
        plot = None if label is None else inspection_plot(self.explanation, label, self.plot_size)
        if plot is None:
            self._caption.object = "Explain an image to inspect its maps here."
            self._plot.param.update(object=None, visible=False)
            return
        name = next(c.name for c in self.explanation.top if c.index == label)
        self._caption.object = (f"**{name}** — hover for the score and the superpixel under the cursor; zoom or "
                                "pan one map and the others follow.")
        self._plot.param.update(object=plot, visible=True)

    def __panel__(self):
        self._built = True
        self._update()
        return pn.Column(self._caption, self._plot, sizing_mode="stretch_width")
