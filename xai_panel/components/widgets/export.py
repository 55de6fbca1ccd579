"""Downloads of what a view shows: its figures, its numbers, a one-file report.

Every button is a ``pn.widgets.FileDownload`` with a callback, so nothing is built until it is
clicked (a report of seven methods is a few MB of PNGs). The files are the library's:

* **figures**: a zip of PNGs, the image and every pane's picture per class, as the pane draws it
  now (its display settings); each method's card also has a PNG of its selected class
  (:func:`picture_download`);
* **numbers**: what ``xai-panel store export`` writes (``store.export.explanation_zip``), a folder
  per method with ``result.json``, keyed as the store keys it, so ``xai-panel store import``
  reads it back;
* **report**: ``render.report.report_html``, with the stability report and the sanity check when
  they were run on this image.
"""

from __future__ import annotations

import io
from typing import Callable

import panel as pn
import param

from ...data import ImageRecord
from ...engine.results import Explanation
from ...render.figures import png, safe_name, zip_files

__all__ = ["ExportButtons", "picture_download", "NOTHING_TO_EXPORT"]

NOTHING_TO_EXPORT = "nothing to export yet: select an image and wait for its explanation"


def _stem(name: str) -> str:
    return safe_name(name.rsplit("/", 1)[-1].rsplit(".", 1)[0] if name else "", "image")


def picture_download(pane, image_name: Callable[[], str] | None = None) -> pn.widgets.FileDownload:
    """A button that downloads ``pane``'s picture of its selected class (else its top class) as PNG,
    as the pane draws it now; ``image_name()`` names the file."""
    button = pn.widgets.FileDownload(label="PNG of the selected class", filename=f"{pane.method}.png",
                                     color="light", css_classes=[f"xp-download-{pane.method}"], width=200,
                                     margin=(0, 10))

    def make() -> io.BytesIO:
        explanation, results = pane.shown, pane.results()
        if explanation is None or not results:
            raise ValueError(f"{pane.title}: {NOTHING_TO_EXPORT}")
        label = pane.marked if pane.marked in results else next(c.index for c in explanation.top if c.index in results)
        name = next(c.name for c in explanation.top if c.index == label)
        stem = _stem(image_name() if image_name is not None else "")
        button.filename = f"{stem}_{pane.method}_{safe_name(name, str(label))}.png"
        return io.BytesIO(png(pane.picture(explanation, label)))

    button.callback = make
    return button


class ExportButtons(pn.viewable.Viewer):
    """Three downloads of the explanation shown: figures (zip of PNGs), numbers (the store's
    export, zip of JSON + PNGs) and a one-file HTML report."""

    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, allow_refs=True,
                                      doc="The explanation to export (as shown: its methods may still be arriving).")
    image_name = param.String(default="", allow_refs=True, doc="Name of the image (file names, the report's title).")
    image_digest = param.String(default="", allow_refs=True, doc=(
        "``image_hash`` of the decoded image: the numbers carry the keys the store gives them."))
    source = param.Parameter(default=None, allow_refs=True, doc=(
        "What the image came from: an ``ImageRecord`` gives the numbers its id and true label."))
    panes = param.List(default=[], doc="The method panes whose pictures the figures hold, as drawn.")
    stability = param.Parameter(default=None, allow_refs=True, doc="A ``StabilityReport`` of this image, if run.")
    sanity = param.Parameter(default=None, allow_refs=True, doc="A ``SanityCheck`` of this image, if run.")

    @classmethod
    def from_session(cls, session, **params) -> "ExportButtons":
        params.setdefault("explanation", session.param.explanation)
        params.setdefault("image_name", session.param.image_name)
        params.setdefault("image_digest", session.param.image_digest)
        params.setdefault("source", session.param.source)
        return cls(**params)

    def _explanation(self) -> Explanation:
        if self.explanation is None or not self.explanation.methods:
            raise ValueError(NOTHING_TO_EXPORT)
        return self.explanation

    def _matches(self, report) -> bool:
        # A stability report or a sanity check of another image (the user moved on) is left out.
        e = self.explanation
        return report is not None and e is not None and report.image.shape == e.image.shape and bool(
            (report.image == e.image).all()) and report.model_id == e.model_id

    # -- the files (each button's callback) ---------------------------------------------------
    def figures(self) -> io.BytesIO:
        """A zip: ``image.png`` and ``<method>/<rank>_<class>.png`` per pane and class, as drawn."""
        explanation = self._explanation()
        files = {"image.png": explanation.image}
        for pane in self.panes:
            results = pane.results(explanation)
            for rank, score in enumerate(explanation.top, 1):
                if score.index in results:
                    files[f"{pane.method}/{rank}_{safe_name(score.name, str(score.index))}.png"] = pane.picture(
                        explanation, score.index)
        return io.BytesIO(zip_files(files, folder=f"{_stem(self.image_name)}_figures"))

    def numbers(self) -> io.BytesIO:
        """A zip of what ``xai-panel store export`` writes: a folder per method, ``result.json`` and PNGs."""
        from ...store.export import explanation_zip

        explanation = self._explanation()
        record = self.source if isinstance(self.source, ImageRecord) else None
        return io.BytesIO(explanation_zip(
            explanation, image_hash=self.image_digest or None, name=self.image_name or "image",
            image_id=record.id if record else None, label=record.label if record else None,
            label_name=record.label_name if record else None))

    def report(self) -> io.BytesIO:
        """The one-file HTML report (``render.report.report_html``)."""
        from ...render.report import report_html

        explanation = self._explanation()
        text = report_html(explanation, title=self.image_name or "Explanation",
                           stability=self.stability if self._matches(self.stability) else None,
                           sanity=self.sanity if self._matches(self.sanity) else None)
        return io.BytesIO(text.encode("utf-8"))

    # -- view -----------------------------------------------------------------------------------
    def _filenames(self, *_events) -> None:
        stem = _stem(self.image_name)
        for button, suffix in zip(self._buttons, ("figures.zip", "numbers.zip", "report.html")):
            button.filename = f"{stem}_{suffix}"

    def __init__(self, **params):
        super().__init__(**params)
        made = dict(color="primary", variant="outline", width=210, margin=(5, 10),
                    disabled=pn.bind(lambda e: e is None or not e.methods, self.param.explanation))
        self._buttons = [
            pn.widgets.FileDownload(callback=self.figures, label="Figures (PNG, zip)", css_classes=["xp-export-figures"],
                                    filename="figures.zip", **made),
            pn.widgets.FileDownload(callback=self.numbers, label="Numbers (JSON, zip)", css_classes=["xp-export-numbers"],
                                    filename="numbers.zip", **made),
            pn.widgets.FileDownload(callback=self.report, label="Report (one HTML file)", css_classes=["xp-export-report"],
                                    filename="report.html", **made),
        ]
        self._filenames()
        self.param.watch(self._filenames, "image_name")

    @property
    def buttons(self) -> list[pn.widgets.FileDownload]:
        """The figures, numbers and report buttons."""
        return list(self._buttons)

    def __panel__(self):
        note = pn.pane.HTML(
            "<span style='font-size:12px;color:#4b5563'>The numbers are what <code>xai-panel store export</code> "
            "writes (<code>xai-panel store import</code> reads them back); the report is one HTML file with every "
            "method's maps, costs and trust metrics, and the stability and sanity results when run.</span>",
            sizing_mode="stretch_width", margin=(8, 10))
        return pn.Row(*self._buttons, note, sizing_mode="stretch_width")
