"""The top classes with their probabilities; a click chooses the class to inspect.

Classes asked for beside them ("why not goldfish?", the class picker: ``explain(labels=...)``)
follow the top-k as buttons of their own ("asked: goldfish · 0.0%"), so they can be inspected too.

One widget: a vertical button group whose buttons are the bars of the chart, each filled to
its class's probability by a fixed stylesheet reading CSS variables (``--xp-p1``...) that the
widget's ``styles`` set. A new image changes its options and those strings, nothing else:
the earlier HoloViews bar chart beside a list cost a plot update and a model-graph
recomputation on every click (and so would a new stylesheet, which Bokeh holds as a model).
"""

from __future__ import annotations

import panel as pn
import param

from ...engine.results import ClassScore

__all__ = ["TopClasses"]

_SLOTS = 16  # the top-k (at most 10 in the settings) and the classes asked beside them
_BAR, _BAR_ON_INSPECTED = "rgba(37, 99, 235, 0.22)", "rgba(255, 255, 255, 0.30)"
_BUTTONS = "\n".join([
    ":host .bk-btn { text-align: left; font-variant-numeric: tabular-nums; background-repeat: no-repeat;",
    f"  background-image: linear-gradient({_BAR}, {_BAR}); background-size: 0% 100%; }}",
    f":host .bk-btn.bk-active {{ background-image: linear-gradient({_BAR_ON_INSPECTED}, {_BAR_ON_INSPECTED}); }}",
    *(f":host .bk-btn:nth-child({i}) {{ background-size: var(--xp-p{i}, 0%) 100%; }}" for i in range(1, _SLOTS + 1)),
])


class TopClasses(pn.viewable.Viewer):
    """The top classes ranked, each a button filled to its probability; ``selected`` is the class to inspect."""

    top = param.List(default=[], item_type=ClassScore, allow_refs=True, doc="Classes, most probable first.")
    true_label = param.Integer(default=None, allow_None=True, allow_refs=True,
                               doc="Index of the true class, if known (marked in the list).")
    asked = param.List(default=[], item_type=ClassScore, allow_refs=True, doc=(
        "Classes explained beside the top ones (``Explanation.asked``), listed after them, inspectable too."))
    busy = param.Boolean(default=False, allow_refs=True, doc="Show a loading indicator.")

    selected = param.Integer(default=None, allow_None=True, constant=True,
                             doc="Index of the class to inspect (read-only; follows clicks, resets to the top class).")

    @classmethod
    def from_session(cls, session, **params) -> "TopClasses":
        """Linked to an ``ExplanationSession``'s ``top``."""
        params.setdefault("top", session.param.top)
        params.setdefault("asked", param.bind(_asked_of, session.param.explanation))
        params.setdefault("busy", param.bind(lambda status: status == "loading", session.param.status))
        return cls(**params)

    def __init__(self, **params):
        super().__init__(**params)
        self._list = pn.widgets.RadioButtonGroup(
            options=self._options(self.top), orientation="vertical", button_type="primary", button_style="outline",
            sizing_mode="stretch_width", stylesheets=[_BUTTONS], loading=self.param.busy,
            css_classes=["xp-top"])
        self._list.param.watch(self._on_list, "value")
        self._reset()

    def select(self, index: int) -> None:
        """Inspect the class with this index (it must be one of ``top`` or ``asked``)."""
        if index not in [c.index for c in (*self.top, *self.asked)]:
            raise ValueError(f"class {index} is not among the top classes {[c.index for c in self.top]}"
                             + (f" nor the asked ones {[c.index for c in self.asked]}" if self.asked else ""))
        with param.edit_constant(self):
            self.selected = int(index)

    @param.depends("top", watch=True)
    def _reset(self) -> None:
        selected = self.top[0].index if self.top else None
        self._draw(selected)  # the new options first: the value must be one of them
        with param.edit_constant(self):
            self.selected = selected

    @param.depends("true_label", watch=True)
    def _relabel(self) -> None:
        self._draw(self.selected)

    @param.depends("asked", watch=True)
    def _on_asked(self) -> None:
        if getattr(self, "_list", None) is None:  # set while constructing: drawn by __init__
            return
        shown = [c.index for c in (*self.top, *self.asked)]
        if self._drawn == self._options(self.top):  # the same classes (a progressive update): nothing to send
            return
        selected = self.selected if self.selected in shown else (self.top[0].index if self.top else None)
        self._draw(selected)
        if selected != self.selected:
            with param.edit_constant(self):
                self.selected = selected

    @param.depends("selected", watch=True)
    def _sync_list(self) -> None:
        self._draw(self.selected)

    def _draw(self, selected) -> None:
        self._drawn = self._options(self.top)
        self._list.param.update(options=self._drawn, value=selected, styles=self.bars())

    def bars(self) -> dict[str, str]:
        """The bars' lengths: ``--xp-p<position>`` = the class's probability as a CSS percentage."""
        return {f"--xp-p{rank}": f"{100 * min(max(c.probability, 0.0), 1.0):.1f}%"
                for rank, c in enumerate([*self.top, *self.asked][:_SLOTS], 1)}

    def _options(self, top) -> dict:
        ranked = {f"{rank}. {c.name} · {c.probability:.1%}" + (" ✓" if c.index == self.true_label else ""): c.index
                  for rank, c in enumerate(top, 1)}
        shown = {c.index for c in top}
        asked = {f"asked: {c.name} · {c.probability:.1%}" + (" ✓" if c.index == self.true_label else ""): c.index
                 for c in self.asked if c.index not in shown}
        return {**ranked, **asked}

    def _on_list(self, event) -> None:
        if event.new is not None and event.new != self.selected:
            self.select(event.new)

    def __panel__(self):
        return self._list


def _asked_of(explanation) -> list[ClassScore]:
    return list(explanation.asked) if explanation is not None else []
