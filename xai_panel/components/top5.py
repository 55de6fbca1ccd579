"""The top classes with their probabilities; a click chooses the class to inspect."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from ..explain.results import ClassScore
from .method_pane import CANVAS

__all__ = ["TopClasses"]

_INSPECT, _OTHER = "#2563eb", "#bfdbfe"


class TopClasses(pn.viewable.Viewer):
    """A bar chart and a ranked list of the top classes; ``selected`` is the class to inspect."""

    top = param.List(default=[], item_type=ClassScore, allow_refs=True, doc="Classes, most probable first.")
    true_label = param.Integer(default=None, allow_None=True, allow_refs=True,
                               doc="Index of the true class, if known (marked in the list).")
    busy = param.Boolean(default=False, allow_refs=True, doc="Show a loading indicator.")

    selected = param.Integer(default=None, allow_None=True, constant=True,
                             doc="Index of the class to inspect (read-only; follows clicks, resets to the top class).")

    @classmethod
    def from_session(cls, session, **params) -> "TopClasses":
        """Linked to an ``ExplanationSession``'s ``top``."""
        params.setdefault("top", session.param.top)
        params.setdefault("busy", param.bind(lambda status: status == "loading", session.param.status))
        return cls(**params)

    _drawn = param.Parameter(default=((), None), precedence=-1,
                             doc="(top, selected) as drawn: one chart update per change of either.")

    def __init__(self, **params):
        super().__init__(**params)
        self._bars = hv.DynamicMap(pn.bind(lambda drawn: self._chart(*drawn), self.param._drawn))
        self._tap = hv.streams.Selection1D(source=self._bars)
        self._tap.param.watch(self._on_tap, "index")
        self._list = pn.widgets.RadioButtonGroup(
            options=self._options(self.top), orientation="vertical", button_type="primary", button_style="outline",
            sizing_mode="stretch_width", stylesheets=[":host .bk-btn { text-align: left; }"])
        self._list.param.watch(self._on_list, "value")
        self._reset()

    def select(self, index: int) -> None:
        """Inspect the class with this index (it must be one of ``top``)."""
        if index not in [c.index for c in self.top]:
            raise ValueError(f"class {index} is not among the top classes {[c.index for c in self.top]}")
        with param.edit_constant(self):
            self.param.update(selected=int(index), _drawn=(tuple(self.top), int(index)))

    @param.depends("top", watch=True)
    def _reset(self) -> None:
        selected = self.top[0].index if self.top else None
        with param.edit_constant(self):
            self.param.update(selected=selected, _drawn=(tuple(self.top), selected))
        self._list.param.update(options=self._options(self.top), value=self.selected)

    @param.depends("true_label", watch=True)
    def _relabel(self) -> None:
        self._list.param.update(options=self._options(self.top), value=self.selected)

    @param.depends("selected", watch=True)
    def _sync_list(self) -> None:
        if self._list.value != self.selected:
            self._list.value = self.selected

    def _options(self, top) -> dict:
        return {f"{rank}. {c.name} · {c.probability:.1%}" + (" ✓" if c.index == self.true_label else ""): c.index
                for rank, c in enumerate(top, 1)}

    def _on_list(self, event) -> None:
        if event.new is not None and event.new != self.selected:
            self.select(event.new)

    def _on_tap(self, event) -> None:
        if event.new:
            ranked = list(reversed(self.top))  # the chart lists the top class last (drawn on top)
            if event.new[0] < len(ranked):
                self.select(ranked[event.new[0]].index)

    def _chart(self, top, selected):
        rows = [(c.name, c.probability, "inspect" if c.index == selected else "other") for c in reversed(top)]
        if not rows:  # keep the chart's columns the same with and without data (it is updated in place)
            rows = [(" " * (i + 1), 0.0, "other") for i in range(5)]
        bars = hv.Bars(rows, kdims=["class"], vdims=["probability", "role"])
        return bars.opts(
            invert_axes=True, color="role", cmap={"inspect": _INSPECT, "other": _OTHER}, tools=["tap", "hover"],
            ylim=(0, 1), responsive=True, height=190, toolbar=None, **CANVAS,
            default_tools=[], show_legend=False, xlabel="probability", ylabel="", nonselection_alpha=1.0,
            selection_alpha=1.0, fontsize={"yticks": 11, "xticks": 9}, title="",
        )

    def __panel__(self):
        return pn.Column(
            pn.pane.HoloViews(self._bars, linked_axes=False, sizing_mode="stretch_width", height=190, min_width=280,
                              loading=self.param.busy),
            self._list,
            sizing_mode="stretch_width",
        )
