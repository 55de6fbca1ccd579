"""The dataset gallery: labels with counts, one label's thumbnails a page at a time.

Browse by true label (folder names, ImageNet wnids) or by the model's predicted label, so
an unlabelled folder is browsable too. Each card is marked with the predicted class,
green when it matches the true label and red when it does not. Clicking a card sets the
read-only ``selected`` (record id) and ``selected_record`` outputs; ids from outside (a
URL) go through ``select``, which lets ``Dataset.resolve`` refuse anything suspicious.

The current page's thumbnails go into the page as it is served when they are in memory (a
warm server: no job, no second message); the others are made in the background, the visible
page's only. Predictions come from the process-wide index (``render.thumbnails``), which
predicts the visible page first and pauses while clicks are explained and pages served.

With a store, a label's images sort by what it holds: confidence, anchor precision,
stability, and, for every method with stored trust metrics, its deletion or insertion AUC
for the top class ("LIME: least faithful first": highest deletion AUC first; images without
the metric go last).
"""

from __future__ import annotations

import math
import time

import panel as pn
import param

from ...data import Dataset, ImageRecord, open_dataset
from ...render.thumbnails import PredictionIndex, ThumbnailStore, known_index, prediction_index
from ...runtime.jobs import Job, JobRunner, stopping, wait_for_foreground_idle
from ...runtime.jobs import classifier as load_model
from .thumbgrid import ThumbnailGrid

__all__ = ["Gallery", "ALL", "UNLABELLED"]

ALL = ""
UNLABELLED = "(unlabelled)"
SORTS = {"Name": "name", "Confidence (high first)": "confidence", "Confidence (low first)": "confidence-asc",
         "Anchor precision (low first)": "anchor_precision-asc", "Stability (low first)": "stability-asc"}
FAITHFULNESS_SORTS = {"least faithful first": "deletion_auc", "most faithful first": "deletion_auc-asc",
                      "insertion AUC (low first)": "insertion_auc-asc", "insertion AUC (high first)": "insertion_auc"}
"""Sorts by a method's deletion AUC (lower: more faithful) or insertion AUC (higher: more faithful) of the
top class, per measured method."""
SHOWS = {"Every image": "all", "Predicted right (stored)": "right", "Predicted wrong (stored)": "wrong"}
PROGRESS_EVERY = 1.0
"""Seconds between two progress updates of a page while the index is being built (each redraws the
label list and the badges, on the event loop every page shares)."""
_stores: dict[int, ThumbnailStore] = {}


def _store(size: int) -> ThumbnailStore:
    if size not in _stores:
        _stores[size] = ThumbnailStore(size)
    return _stores[size]


class Gallery(pn.viewable.Viewer):
    """Thumbnails of a dataset, per true or predicted label, with a ``selected`` output."""

    dataset = param.ClassSelector(class_=Dataset, allow_refs=True, doc="The images (default: the demo gallery).")
    model = param.String(default="efficientnet_lite0", allow_refs=True,
                         doc="Classifier whose top-1 marks the thumbnails and groups by prediction.")
    group_by = param.Selector(default="label", objects={"True label": "label", "Predicted label": "prediction"},
                              doc="Group images by their true label or by the model's prediction.")
    label = param.String(default=ALL, allow_refs=True,
                         doc="Label whose images are shown ('' = all, '(unlabelled)' = images without one).")
    search = param.String(default="", doc="Show only labels whose name contains this text (case-insensitive).")
    page = param.Integer(default=1, bounds=(1, None), doc="Page of the current label's images (from 1).")
    page_size = param.Integer(default=24, bounds=(4, 200), doc="Thumbnails per page.")
    thumbnail_size = param.Integer(default=112, bounds=(48, 320), doc="Thumbnail side in pixels.")
    predict = param.Boolean(default=True, doc="Predict every image in the background (badges, grouping).")
    store = param.Parameter(default=None, doc=(
        "An ExplanationStore: a label's images can then be sorted and filtered by what it holds about them."))
    sort_by = param.Selector(default="name", objects=SORTS, doc=(
        "Order of a label's images: by name, or by a stored score (images without one come last)."))
    show = param.Selector(default="all", objects=SHOWS, doc="Only the images whose stored prediction is right/wrong.")

    selected = param.String(default="", constant=True, doc="Id of the selected image (read-only).")
    selected_record = param.ClassSelector(class_=ImageRecord, default=None, allow_None=True, constant=True,
                                          doc="The selected record (read-only).")
    labels = param.Dict(default={}, constant=True, doc="Image count per label for the grouping (read-only).")
    records = param.List(default=[], constant=True, doc="Ids of the current label's images (read-only).")
    page_count = param.Integer(default=1, constant=True, doc="Pages of the current label (read-only).")
    predicted = param.Integer(default=0, constant=True, doc="Images predicted so far (read-only).")
    message = param.String(default="", constant=True, doc="Last warning for the user, e.g. a refused id (read-only).")

    def __init__(self, **params):
        if params.get("dataset") is None:
            params["dataset"] = open_dataset(None)
        super().__init__(**params)
        # Known already (another session's): the first page is served with its badges.
        self._index: PredictionIndex | None = known_index(self.dataset, self.model) if self.predict else None
        if self._index is not None:
            with param.edit_constant(self):
                self.predicted = len(self._index)
        self._progress_sent = 0.0  # when the last progress update was published
        self._progress_pending = False
        self._thumbs = JobRunner("thumbnails")
        self._predictions = JobRunner("predictions")
        self._grid = ThumbnailGrid(size=self.thumbnail_size, sizing_mode="stretch_width",
                                   empty_text="No images for this label.")
        self._grid.param.watch(self._on_click, "clicked")
        self.refresh_sorts()
        self._regroup()
        if self.predict:
            self._predictions.start(self._predict_all, interactive=False)
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: self._detach())

    # -- public ----------------------------------------------------------------------------
    def select(self, id: str) -> ImageRecord:
        """Select the image with this id; unsafe or unknown ids raise (ValueError / KeyError)."""
        self.dataset.resolve(id)  # refuses traversal and unknown ids before anything else
        record = self.dataset.get(id)
        with param.edit_constant(self):
            self.param.update(selected=id, selected_record=record, message="")
        self._grid.selected = id
        return record

    def show_label(self, label: str) -> None:
        """Show a label (refused with a message if the grouping has no such label)."""
        if label not in (ALL, *self.labels):
            self._warn(f"No label {label!r} in this dataset; showing all images.")
            label = ALL
        self.label = label

    @param.depends("store", "label", watch=True)
    def refresh_sorts(self) -> None:
        """Offer a faithfulness sort for each method the store holds metrics of (one small query)."""
        options = dict(SORTS)
        if self.store is not None:
            from ...methods.base import method_label

            model_id = self._index.classifier.model_id if getattr(self, "_index", None) is not None else None
            try:
                measured = self.store.measured_methods(model_id)
            except Exception as exc:  # the fixed sorts still work
                self._warn(f"The store could not be read ({exc}); no faithfulness sorts.")
                measured = ()
            for method in measured:
                label = method_label(method)
                for text, key in FAITHFULNESS_SORTS.items():
                    column, _, order = key.partition("-")
                    options[f"{label}: {text}"] = f"{column}:{method}" + (f"-{order}" if order else "")
        if options != self.param.sort_by.names:
            self.param.sort_by.objects = options
        if self.sort_by not in options.values():
            self.sort_by = "name"

    def prediction(self, id: str):
        """The model's top-1 for a record, if computed yet."""
        return self._index.get(id) if self._index is not None else None

    def wait(self, timeout: float | None = 60) -> "Gallery":
        """Block until the current page's thumbnails are ready (notebooks and tests)."""
        self._thumbs.wait(timeout)
        return self

    def wait_predictions(self, timeout: float | None = 600) -> "Gallery":
        """Block until every image is predicted (notebooks and tests)."""
        self._predictions.wait(timeout)
        if self._index is not None:
            self._index.wait(timeout)
        return self

    # -- state -----------------------------------------------------------------------------
    def warn(self, text: str) -> None:
        """Tell the user something went wrong (``message`` and a notification)."""
        self._warn(text)

    def _warn(self, text: str) -> None:
        with param.edit_constant(self):
            self.message = text
        if pn.state.notifications is not None:
            pn.state.notifications.warning(text, duration=6000)

    def label_of(self, record: ImageRecord) -> str | None:
        """The label ``record`` is grouped under now: its true label, or its predicted class (None while
        not predicted yet)."""
        return self._label_of(record)

    def _label_of(self, record: ImageRecord) -> str | None:
        if self.group_by == "label":
            return record.label_name if record.label_name is not None else UNLABELLED
        p = self.prediction(record.id)
        return p.name if p is not None else None

    @param.depends("dataset", "group_by", watch=True)
    def _regroup(self) -> None:
        counts: dict[str, int] = {}
        for record in self.dataset:
            name = self._label_of(record)
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
        with param.edit_constant(self):
            self.labels = counts
        if self.label not in (ALL, *counts):
            self.label = ALL
        self._filter()

    @param.depends("label", "search", "sort_by", "show", "store", watch=True)
    def _filter(self) -> None:
        if self.label == ALL:
            needle = self.search.strip().lower()
            ids = [r.id for r in self.dataset
                   if not needle or needle in (self._label_of(r) or "").lower() or needle in r.id.lower()]
        else:
            ids = [r.id for r in self.dataset if self._label_of(r) == self.label]
        ids = self._by_store(ids)
        with param.edit_constant(self):
            self.param.update(records=ids, page_count=max(1, math.ceil(len(ids) / self.page_size)))
        if self.page != 1:
            self.page = 1
        else:
            self._render_page()

    def _by_store(self, ids: list[str]) -> list[str]:
        """``ids`` filtered and ordered by the store's summaries (``show``, ``sort_by``)."""
        if self.store is None or (self.sort_by == "name" and self.show == "all"):
            return ids
        ascending = self.sort_by.endswith("-asc")
        column = self.sort_by[: -len("-asc")] if ascending else self.sort_by
        model_id = self._index.classifier.model_id if self._index is not None else None
        try:  # one query for the whole label: a few ms for thousands of stored images
            rows = self.store.summaries(model_id, sort_by="image_id" if column == "name" else column,
                                        descending=not ascending)
        except Exception as exc:  # browsing goes on in name order
            self._warn(f"The store could not be read ({exc}); images are shown by name.")
            return ids
        summaries = {r.image_id: r for r in rows if r.image_id is not None}
        if self.show != "all":
            ids = [i for i in ids if i in summaries and summaries[i].correct is (self.show == "right")]
        if column != "name":
            rank = {r.image_id: k for k, r in enumerate(rows) if r.score(column) is not None}
            ids = sorted(ids, key=lambda i: rank.get(i, len(rank)))  # stable: unscored ones keep their order, last
        return ids

    @param.depends("page", "page_size", "thumbnail_size", watch=True)
    def _render_page(self) -> None:
        with param.edit_constant(self):
            self.page_count = max(1, math.ceil(len(self.records) / self.page_size))
        if self.page > self.page_count:
            self.page = self.page_count
            return
        records = self.page_records()
        self._grid.size = self.thumbnail_size
        store = _store(self.thumbnail_size)
        ready = [store.in_memory(r) for r in records]
        if all(src is not None for src in ready):  # a warm server: the page goes out with them
            self._thumbs.cancel()
            self._grid.items = [self._card(r, src) for r, src in zip(records, ready)]
        else:
            self._thumbs.start(self._make_items, records, self.thumbnail_size)
        if self._index is not None and not self._index.complete:
            self._index.start(records, pause=wait_for_foreground_idle, cancel=stopping)

    def page_records(self) -> list[ImageRecord]:
        """The records of the page shown (the current label's, sorted and filtered)."""
        start = (self.page - 1) * self.page_size
        return [self.dataset.get(i) for i in self.records[start : start + self.page_size]]

    def _card(self, record: ImageRecord, src: str) -> dict:
        p = self.prediction(record.id)
        truth = record.label_name
        if p is None:
            badge, status = ("predicting…" if self.predict else ""), "pending"
        elif record.label is None and truth is None:
            badge, status = p.name, "unknown"
        else:
            match = (record.label == p.index) if record.label is not None else (truth == p.name)
            badge, status = p.name, "match" if match else "mismatch"
        caption = truth or record.name
        tooltip = f"{record.id}\ntrue label: {truth or 'none'}"
        if p is not None:
            tooltip += f"\npredicted: {p.name} ({p.probability:.0%})"
        return {"id": record.id, "src": src, "caption": caption, "badge": badge, "status": status, "tooltip": tooltip}

    def _make_items(self, job: Job, records: list[ImageRecord], size: int) -> None:
        store = _store(size)
        sources = []
        for record in records:
            if job.cancelled:
                return
            sources.append((record, store.data_uri(record)))
        # The badges are read when the page is updated, not now: the predictions' own update
        # may be applied first, and cards made now would show 'predicting…' for good.
        self._thumbs.publish(job, lambda: setattr(self._grid, "items", [self._card(r, src) for r, src in sources]))

    def _refresh_badges(self) -> None:
        items = [self._card(self.dataset.get(item["id"]), item["src"]) for item in self._grid.items]
        if items != self._grid.items:  # only resend the page when a badge changed
            self._grid.items = items

    # -- background predictions ------------------------------------------------------------
    def _predict_all(self, job: Job) -> None:
        """Load the model (a pool thread: it may still be loading) and follow its prediction index."""
        try:
            classifier = load_model(self.model)
        except Exception as exc:  # badges are optional: say why they are missing, keep browsing
            message = f"No predictions: model {self.model!r} failed ({exc})"  # ``exc`` is unbound after the block
            self._predictions.publish(job, lambda: self._warn(message))
            return
        index = prediction_index(self.dataset, classifier, self.model)
        if not self._predictions.is_current(job):
            return
        self._index = index
        index.subscribe(self._on_index_progress)
        self._predictions.publish(job, self._predictions_changed)
        index.start(self.page_records(), pause=wait_for_foreground_idle, cancel=stopping)

    def _on_index_progress(self, done: int, total: int) -> None:
        """From the index's thread: publish the progress, at most every ``PROGRESS_EVERY`` seconds
        (and when complete), and never while the previous update is still waiting for the page."""
        job, now = self._predictions.job, time.monotonic()
        if job is None:
            return
        if not (self._index is not None and self._index.complete):
            if now - self._progress_sent < PROGRESS_EVERY:
                return
            if self._progress_pending and now - self._progress_sent < 5 * PROGRESS_EVERY:  # (a lost one: resend)
                return
        self._progress_sent, self._progress_pending = now, True
        self._predictions.publish(job, self._predictions_changed)

    def _detach(self) -> None:
        """Stop following the index (the page is gone)."""
        self._predictions.cancel()
        if self._index is not None:
            self._index.unsubscribe(self._on_index_progress)

    def _predictions_changed(self) -> None:
        self._progress_pending = False
        with param.edit_constant(self):
            self.predicted = len(self._index) if self._index is not None else 0
        if self.group_by == "prediction":
            label, page = self.label, self.page
            self._regroup()
            if label in self.labels and label != self.label:
                self.label = label
                self.page = min(page, self.page_count)
        self._refresh_badges()

    @param.depends("model", "dataset", watch=True)
    def _restart_predictions(self) -> None:
        if self._index is not None:
            self._index.unsubscribe(self._on_index_progress)
        self._index = None
        if self.predict:
            self._predictions.start(self._predict_all, interactive=False)

    def _on_click(self, event) -> None:
        try:
            self.select(event.new or self._grid.clicked)
        except (KeyError, ValueError) as exc:
            self._warn(str(exc))

    # -- view ------------------------------------------------------------------------------
    def _label_options(self, labels: dict, search: str, group_by: str, predicted: int) -> dict:
        needle = search.strip().lower()
        total = len(self.dataset)
        options = {f"All images ({total})": ALL}
        names = sorted(labels, key=lambda n: (n == UNLABELLED, n.lower()))
        for name in names:
            if not needle or needle in name.lower():
                options[f"{name} ({labels[name]})"] = name
        return options

    @param.depends("group_by", "predicted")
    def _progress_note(self):
        if not self.predict or self._index is not None and self._index.complete:
            return ""
        total = len(self.dataset)
        what = "Grouping by prediction" if self.group_by == "prediction" else "Predicting"
        return f"{what}: {self.predicted} of {total} images done…"

    @param.depends("page", "page_count", "records")
    def _page_text(self):
        return f"Page {self.page} of {self.page_count} · {len(self.records)} images"

    def controls(self) -> pn.viewable.Viewable:
        """Grouping, search and the label list (for a sidebar)."""
        options = pn.bind(self._label_options, self.param.labels, self.param.search, self.param.group_by,
                          self.param.predicted)
        label_list = pn.widgets.Select(name="Labels", options=options, value=self.param.label, size=12,
                                       sizing_mode="stretch_width")
        label_list.param.watch(lambda e: self.show_label(e.new), "value")
        return pn.Column(
            pn.widgets.RadioButtonGroup.from_param(self.param.group_by, name="Browse by", button_type="primary",
                                                   button_style="outline", sizing_mode="stretch_width"),
            pn.widgets.TextInput.from_param(self.param.search, name="Search labels", placeholder="e.g. retriever",
                                            sizing_mode="stretch_width"),
            label_list,
            *([pn.widgets.Select.from_param(self.param.sort_by, name="Sort by", sizing_mode="stretch_width"),
               pn.widgets.Select.from_param(self.param.show, name="Show", sizing_mode="stretch_width")]
              if self.store is not None else []),
            pn.pane.Markdown(self._progress_note, styles={"color": "#6b7280", "font-size": "12px"}, margin=(0, 10)),
            pn.pane.Alert(self.param.message, alert_type="warning", visible=self.param.message.rx().rx.pipe(bool),
                          sizing_mode="stretch_width", css_classes=["xp-gallery-message"]),
            sizing_mode="stretch_width",
        )

    def grid(self) -> pn.viewable.Viewable:
        """The thumbnails with the page controls."""
        previous = pn.widgets.Button(name="◀ Previous", button_type="light", width=110,
                                     disabled=self.param.page.rx() <= 1)
        following = pn.widgets.Button(name="Next ▶", button_type="light", width=110,
                                      disabled=self.param.page.rx() >= self.param.page_count.rx())
        previous.on_click(lambda _e: setattr(self, "page", max(1, self.page - 1)))
        following.on_click(lambda _e: setattr(self, "page", min(self.page_count, self.page + 1)))
        pager = pn.Row(previous, pn.pane.Markdown(self._page_text, margin=(8, 10)), following,
                       align="center")
        return pn.Column(self._grid, pager, sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(self.controls(), self.grid(), sizing_mode="stretch_width")
