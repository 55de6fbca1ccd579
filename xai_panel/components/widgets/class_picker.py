"""Any class, not only the top-5: a searchable class picker and the "why not <true label>?" button.

Both ask the session (``ExplanationSession.ask``) to explain one more class beside the
top-k; the session's compute lane explains it with every requested method, and the panes
show it after the top classes. The picker searches the model's class names
(case-insensitive, from two characters); a name that is not a class gets a message saying
so (with a "did you mean") and changes nothing. The button is offered as soon as the top
classes are known, when the image's true label (a gallery image has one) is not among them.
"""

from __future__ import annotations

from collections import Counter

import panel as pn
import param

from ..state.session import ExplanationSession

__all__ = ["ClassPicker"]


class ClassPicker(pn.viewable.Viewer):
    """Ask the session for any class of the model: by name, or the true label's "why not?"."""

    session = param.ClassSelector(class_=ExplanationSession, doc="The session whose panes get the class.")
    true_label = param.Integer(default=None, allow_None=True, allow_refs=True,
                               doc="Index of the image's true class, if known (the gallery's label).")
    message = param.String(default="", constant=True,
                           doc="Why the last name typed was not added, or what was (read-only).")
    why_not = param.Integer(default=None, allow_None=True, constant=True, doc=(
        "The true class offered by the \"why not\" button (read-only): the true label when it is known, not "
        "among the top classes and not asked for yet; None otherwise."))

    def __init__(self, **params):
        super().__init__(**params)
        self._names: list[str] | None = None  # the class names the options were built from
        self._input = pn.widgets.AutocompleteInput(
            name="Explain any class", placeholder="type a class name (2 letters or more)", case_sensitive=False,
            min_characters=2, search_strategy="includes", restrict=False, sizing_mode="stretch_width",
            css_classes=["xp-class-picker"])
        self._button = pn.widgets.Button(name="", color="warning", variant="outline", visible=False,
                                         css_classes=["xp-why-not"], sizing_mode="stretch_width")
        self._clear = pn.widgets.Button(name="Only the top classes", color="light", visible=False,
                                        css_classes=["xp-clear-asked"], width=170)
        self._note = pn.pane.Markdown("", css_classes=["xp-class-picker-message"], margin=(0, 10))
        self._input.param.watch(self._on_input, "value")
        self._button.on_click(lambda _event: self._ask(self.why_not))
        self._clear.on_click(lambda _event: setattr(self.session, "labels", []))
        self.session.param.watch(self._update, ["model_id", "top", "labels"])
        self._update()

    @classmethod
    def from_session(cls, session: ExplanationSession, **params) -> "ClassPicker":
        return cls(session=session, **params)

    # -- what a user does ---------------------------------------------------------------------
    def pick(self, text: str) -> int | None:
        """Ask for the class named ``text`` (as typed into the picker): its index, or None with ``message`` saying why."""
        return self._ask(self._options.get(text, text))

    def ask_why_not(self) -> int | None:
        """Press the "why not <true label>?" button."""
        if self.why_not is None:
            raise ValueError("no true label to ask about: it is unknown, among the top classes or asked already")
        return self._ask(self.why_not)

    # -- the parts ----------------------------------------------------------------------------
    def _ask(self, label) -> int | None:
        try:
            index = self.session.ask(label)
        except ValueError as exc:
            self._set(message=str(exc))
            return None
        self._set(message=f"Explaining **{self._name(index)}** beside the top classes…")
        return index

    def _on_input(self, event) -> None:
        text = (event.new or "").strip()
        if not text:
            return
        if self.pick(text) is not None:
            self._input.value = ""

    def _name(self, index: int) -> str:
        names = self._class_names()
        return names[index] if 0 <= index < len(names) else str(index)

    def _class_names(self) -> list[str]:
        if not self.session.model_id:
            return []
        return list(self.session.classifier.class_names)

    @param.depends("true_label", watch=True)
    def _update(self, *_events) -> None:
        names = self._class_names()
        if names != self._names:  # a new model: setting 1,000 options anew (and param comparing them
            # with the old, item by item) took 0.1-0.25 s of the event loop on every click
            self._names = names
            counts = Counter(names)
            # a name two classes share ("crane") is offered once per class, with its index
            self._options = {(f"{n} ({i})" if counts[n] > 1 else n): i for i, n in enumerate(names)}
            self._input.options = list(self._options)
        top = {c.index for c in self.session.top}
        label = self.true_label
        offered = (label if label is not None and self.session.top and label not in top
                   and label not in self.session.labels and 0 <= label < len(names) else None)
        self._set(why_not=offered)
        if offered is not None:
            self._button.name = f"Why not {names[offered]}?"
        self._button.visible = offered is not None
        self._clear.visible = bool(self.session.labels)
        if not self.session.labels and self.message.startswith("Explaining"):
            self._set(message="")

    @param.depends("message", watch=True)
    def _show_message(self) -> None:
        self._note.object = self.message

    def _set(self, **values) -> None:
        with param.edit_constant(self):
            self.param.update(**values)

    def __panel__(self):
        return pn.Column(self._button, self._input, pn.Row(self._note, self._clear), sizing_mode="stretch_width",
                         css_classes=["xp-any-class"])
