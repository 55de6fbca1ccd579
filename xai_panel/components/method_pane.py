"""What every explanation pane shares: one small image per top class, updated in place.

Each class gets a ``DynamicMap`` bound to the pane's parameters, so a new explanation (or
a new slider value) replaces the pixels of existing Bokeh plots instead of building new
ones. A pane is method-agnostic about where results come from: give it an
``Explanation`` (or a reference to a session's) and it draws what is there, a loading
indicator while ``busy``, and ``error`` when the method failed.
"""

from __future__ import annotations

from typing import ClassVar

import holoviews as hv
import numpy as np
import panel as pn
import param
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE

from ..explain.results import Explanation

__all__ = ["MethodPane", "blank", "rgb", "CANVAS"]

# Canvas, not WebGL: a browser keeps about 16 live WebGL contexts and a dashboard has more
# plots than that; the oldest would go blank.
CANVAS = {"backend_opts": {"plot.output_backend": "canvas"}}

# Plots sized by frame_width/frame_height are fixed-size on purpose; Bokeh's check only
# looks at width/height and would log a warning for each of them on every page load.
silence(FIXED_SIZING_MODE, True)

_BLANK = np.full((8, 8, 3), 243, np.uint8)


def rgb(image: np.ndarray, title: str = "", **opts) -> hv.RGB:
    """An image as ``hv.RGB``, top row first, one unit high.

    Plots are updated in place and keep their first ranges, so every frame of a slot must
    span the same bounds: units of the image height do, whatever its pixel size.
    """
    h, w = image.shape[:2]
    return hv.RGB(image, bounds=(0, 0, w / h, 1)).opts(title=title, **opts)


def blank(title: str = "", **opts) -> hv.RGB:
    return rgb(_BLANK, title, **opts)


def selected_title(rank: int, name: str, chosen: bool, extra: str = "") -> str:
    mark = "▶ " if chosen else ""
    return f"{mark}{rank}. {name}{extra}"


class MethodPane(pn.viewable.Viewer):
    """Base for the LIME, Anchors and SHAP panes."""

    method: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation to draw (its methods may still be arriving).")
    selected = param.Integer(default=None, allow_None=True, allow_refs=True,
                             doc="Index of the class to inspect (highlighted).")
    busy = param.Boolean(default=False, allow_refs=True, doc="This method is still being computed.")
    error = param.String(default="", allow_refs=True, doc="Why this method failed, if it did.")
    slots = param.Integer(default=5, bounds=(1, 10), constant=True, doc="Classes shown side by side.")
    plot_size = param.Integer(default=168, bounds=(64, 512), constant=True, doc="Side of each class's image (px).")

    @classmethod
    def from_session(cls, session, inspect=None, **params) -> "MethodPane":
        """A pane linked to an ``ExplanationSession`` (and to a ``TopClasses`` for the class to inspect)."""
        method = cls.method
        params.setdefault("explanation", session.param.explanation)
        params.setdefault("busy", param.bind(lambda pending, status: method in pending and status == "explaining",
                                             session.param.pending, session.param.status))
        params.setdefault("error", param.bind(lambda errors: errors.get(method, ""), session.param.method_errors))
        params.setdefault("slots", session.top_k)
        if inspect is not None:
            params.setdefault("selected", inspect.param.selected)
        return cls(**params)

    def __init__(self, **params):
        super().__init__(**params)
        deps = {"explanation": self.param.explanation, "selected": self.param.selected, **self._dependencies()}
        frames = [hv.DynamicMap(pn.bind(self._slot, i, **deps)) for i in range(self.slots)]
        self._plots = hv.Layout(frames).cols(self.slots).opts(shared_axes=False, toolbar=None)

    # -- for subclasses ----------------------------------------------------------------------
    def _dependencies(self) -> dict:
        """Extra parameters (display settings) the images depend on."""
        return {}

    def _frame(self, explanation: Explanation, slot: int, rank: int, label: int, name: str, chosen: bool, **extra):
        raise NotImplementedError

    def _controls(self) -> list:
        return []

    def _details(self) -> list:
        return []

    # -- shared ----------------------------------------------------------------------------
    def frames(self) -> list:
        """The HoloViews element each class's plot shows now (one per slot)."""
        return [dmap[()] for dmap in self._plots]

    def results(self, explanation: Explanation | None = None) -> dict:
        explanation = explanation if explanation is not None else self.explanation
        return dict(getattr(explanation, self.method, {}) or {}) if explanation is not None else {}

    def _opts(self) -> dict:
        return {"frame_width": self.plot_size, "frame_height": self.plot_size, "xaxis": None, "yaxis": None,
                "toolbar": None, "default_tools": [], "fontsize": {"title": 10}, **CANVAS}

    def _slot(self, slot: int, explanation, selected, **extra):
        opts = self._opts()
        if explanation is None or slot >= len(explanation.top):
            return self._placeholder(slot, opts)
        score = explanation.top[slot]
        if score.index not in self.results(explanation):
            return self._placeholder(slot, opts, selected_title(slot + 1, score.name, score.index == selected))
        return self._frame(explanation, slot, slot + 1, score.index, score.name, score.index == selected, **extra)

    def _placeholder(self, slot: int, opts: dict, title: str = ""):
        return blank(title, **opts)

    def _state(self, explanation, busy, error):
        if error:
            return pn.pane.Alert(f"**{self.title} failed:** {error}", alert_type="danger", margin=(0, 5))
        if explanation is None and not busy:
            return pn.pane.Markdown("Select an image to see its explanation.", styles={"color": "#6b7280"})
        if busy:
            return pn.pane.Markdown(f"Computing {self.title}…", styles={"color": "#6b7280"})
        if explanation is not None and not self.results(explanation):
            return pn.pane.Markdown(f"{self.title} was not requested for this image.", styles={"color": "#6b7280"})
        return pn.pane.Markdown(self.description, styles={"color": "#4b5563", "font-size": "12px"})

    def __panel__(self):
        return pn.Column(
            pn.Row(*self._controls(), sizing_mode="stretch_width"),
            pn.panel(pn.bind(self._state, self.param.explanation, self.param.busy, self.param.error),
                     sizing_mode="stretch_width"),
            pn.pane.HoloViews(self._plots, linked_axes=False, loading=self.param.busy, sizing_mode="stretch_width",
                              css_classes=[f"xp-{self.method}-plots"]),
            *self._details(),
            sizing_mode="stretch_width",
        )
