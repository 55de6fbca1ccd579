"""What every explanation pane shares: the top classes side by side in one plot, updated in place.

One plot per pane (the classes' images in a row, labelled on the axis) rather than one plot
per class: a page with fifteen small plots spends most of each update in Bokeh's model
bookkeeping, and every method's arrival would touch all of them. The plot is a
``DynamicMap`` bound to the pane's parameters, so a new explanation, another class to
inspect or a display setting replaces pixels and labels of the existing plot. A pane does
not care where results come from: give it an ``Explanation`` (or a reference to a
session's) and it draws what is there, a loading indicator while ``busy``, and ``error``
when the method failed.
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

__all__ = ["MethodPane", "CANVAS", "GAP", "rgb", "blank", "tile_title", "montage"]

# Canvas, not WebGL: a browser keeps about 16 live WebGL contexts; past that the oldest
# plots on a page go blank.
CANVAS = {"backend_opts": {"plot.output_backend": "canvas"}}

# Plots sized by frame_width/frame_height are fixed-size on purpose; Bokeh's check only
# looks at width/height and would log a warning for each of them on every page load.
silence(FIXED_SIZING_MODE, True)

GAP = 14  # pixels between two classes' images
SELECTED = np.array([37, 99, 235], np.uint8)  # the frame around the class being inspected
_PLACEHOLDER = 244


def rgb(image: np.ndarray, title: str = "", **opts) -> hv.RGB:
    """An image as ``hv.RGB``, top row first, one unit high.

    Plots are updated in place and keep their first ranges, so every frame must span the
    same bounds: units of the image height do, whatever its pixel size.
    """
    h, w = image.shape[:2]
    return hv.RGB(image, bounds=(0, 0, w / h, 1)).opts(title=title, **opts)


def blank(title: str = "", **opts) -> hv.RGB:
    return rgb(np.full((8, 8, 3), _PLACEHOLDER, np.uint8), title, **opts)


def tile_title(rank: int, name: str, chosen: bool, extra: str = "") -> str:
    return f"{'▶ ' if chosen else ''}{rank}. {name}{extra}"


def montage(tiles: list[np.ndarray], gap: int = GAP, fill=255) -> np.ndarray:
    """Equal-sized tiles (H, W[, C]) side by side with ``gap`` columns of ``fill`` between them."""
    h, w = tiles[0].shape[:2]
    shape = (h, len(tiles) * (w + gap) - gap, *tiles[0].shape[2:])
    out = np.full(shape, fill, dtype=np.result_type(tiles[0].dtype, np.asarray(fill).dtype))
    for i, tile in enumerate(tiles):
        out[:, i * (w + gap) : i * (w + gap) + w] = tile
    return out


def frame_tile(tile: np.ndarray, width: int = 5) -> np.ndarray:
    """A copy of ``tile`` with a coloured frame: the class being inspected."""
    out = tile.copy()
    out[:width], out[-width:], out[:, :width], out[:, -width:] = SELECTED, SELECTED, SELECTED, SELECTED
    return out


class MethodPane(pn.viewable.Viewer):
    """Base for the LIME, Anchors and SHAP panes."""

    method: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation to draw (its methods may still be arriving).")
    selected = param.Integer(default=None, allow_None=True, allow_refs=True,
                             doc="Index of the class to inspect (framed in blue).")
    busy = param.Boolean(default=False, allow_refs=True, doc="This method is still being computed.")
    error = param.String(default="", allow_refs=True, doc="Why this method failed, if it did.")
    slots = param.Integer(default=5, bounds=(1, 10), constant=True, doc="Classes shown side by side.")
    plot_size = param.Integer(default=190, bounds=(64, 512), constant=True, doc="Height of the images (px).")
    shown = param.ClassSelector(class_=Explanation, default=None, allow_None=True, constant=True,
                                doc="The explanation drawn now (read-only): follows ``explanation`` only when this "
                                    "method's results, the classes or the image change.")
    marked = param.Integer(default=None, allow_None=True, constant=True,
                           doc="The class framed now (read-only): follows ``selected`` only while there are results.")

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
        self._shown_key = None
        self._follow()
        deps = {"explanation": self.param.shown, "selected": self.param.marked, **self._dependencies()}
        self._plot = hv.DynamicMap(pn.bind(self._render, **deps))

    @param.depends("explanation", "selected", watch=True)
    def _follow(self) -> None:
        # Methods arrive one by one, each as a new Explanation: redraw only when ours changed,
        # and move the frame only where there is something to frame.
        e = self.explanation
        key = None if e is None else (id(e.image), e.top, id(getattr(e, self.method, None)))
        values = {}
        if key != self._shown_key:
            self._shown_key = key
            values["shown"] = e
        marked = self.selected if self.results(e) else None
        if marked != self.marked:
            values["marked"] = marked
        if values:
            with param.edit_constant(self):
                self.param.update(**values)

    # -- for subclasses ----------------------------------------------------------------------
    def _dependencies(self) -> dict:
        """Extra parameters (display settings) the images depend on."""
        return {}

    def _tile(self, explanation: Explanation, label: int, **extra) -> tuple[np.ndarray, str]:
        """(HxWx3 uint8 image, label suffix) for one class that has results."""
        raise NotImplementedError

    def _controls(self) -> list:
        return []

    def _details(self) -> list:
        return []

    # -- shared ----------------------------------------------------------------------------
    def results(self, explanation: Explanation | None = None) -> dict:
        """This method's results of ``explanation`` (default: the one drawn), per class index."""
        explanation = explanation if explanation is not None else self.shown
        return dict(getattr(explanation, self.method, {}) or {}) if explanation is not None else {}

    def tiles(self) -> list[tuple[str, np.ndarray]]:
        """What each class's image shows now: (label, pixels) per slot (notebooks, tests)."""
        return [(label, tile) for label, tile in self._tiles(self.shown, self.marked,
                                                             **{k: getattr(self, k) for k in self._dependencies()})]

    def _tiles(self, explanation, selected, **extra) -> list[tuple[str, np.ndarray]]:
        side = explanation.image.shape[0] if explanation is not None else 224
        placeholder = np.full((side, side, 3), _PLACEHOLDER, np.uint8)
        out = []
        for slot in range(self.slots):
            if explanation is None or slot >= len(explanation.top):
                out.append(("", placeholder))
                continue
            score = explanation.top[slot]
            chosen = score.index == selected
            if score.index in self.results(explanation):
                image, suffix = self._tile(explanation, score.index, **extra)
            else:
                image, suffix = placeholder, ""
            out.append((tile_title(slot + 1, score.name, chosen, suffix), frame_tile(image) if chosen else image))
        return out

    def _opts(self, width_units: float) -> dict:
        return {**CANVAS, "frame_height": self.plot_size, "frame_width": int(round(self.plot_size * width_units)),
                "yaxis": None, "xaxis": "top", "toolbar": None, "default_tools": [], "fontsize": {"xticks": 11},
                "title": ""}

    def _ticks(self, labels: list[str], side: int) -> list[tuple[float, str]]:
        return [((i * (side + GAP) + side / 2) / side, label) for i, label in enumerate(labels)]

    def _render(self, explanation, selected, **extra):
        tiles = self._tiles(explanation, selected, **extra)
        image = montage([t for _, t in tiles])
        side = tiles[0][1].shape[0]
        h, w = image.shape[:2]
        return hv.RGB(image, bounds=(0, 0, w / h, 1)).opts(
            xticks=self._ticks([label for label, _ in tiles], side), **self._opts(w / h))

    def _state(self, explanation, busy, error):
        if error:
            return pn.pane.Alert(f"**{self.title} failed:** {error}", alert_type="danger", margin=(0, 5))
        if explanation is None and not busy:
            return pn.pane.Markdown("Select an image to see its explanation.", styles={"color": "#6b7280"})
        if busy:
            return pn.pane.Markdown(f"Computing {self.title}…", styles={"color": "#6b7280"})
        if explanation is not None and not self.results(explanation):
            return pn.pane.Markdown(f"{self.title} was not requested for this image.", styles={"color": "#6b7280"})
        return pn.pane.Markdown(self.description, styles={"color": "#4b5563", "font-size": "12px"},
                                css_classes=[f"xp-{self.method}-ready"])

    def __panel__(self):
        return pn.Column(
            pn.Row(*self._controls(), sizing_mode="stretch_width"),
            pn.panel(pn.bind(self._state, self.param.shown, self.param.busy, self.param.error),
                     sizing_mode="stretch_width"),
            pn.pane.HoloViews(self._plot, linked_axes=False, loading=self.param.busy,
                              css_classes=[f"xp-{self.method}-plots"]),
            *self._details(),
            sizing_mode="stretch_width",
        )
