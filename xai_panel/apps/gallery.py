"""The gallery app: browse a dataset per label, click an image, watch it being explained.

``gallery_app()`` builds one page (one per browser session); ``xai-panel serve`` serves it
at ``/gallery``, and ``dashboards/gallery.py`` is the same app as a ``panel serve`` script.
``XAI_PANEL_DATA`` / ``XAI_PANEL_MODEL`` choose data and model (default: the demo gallery
and the embedded EfficientNet-Lite0). ``?image=ID&label=NAME&group=label|prediction`` in the
URL restores a view.
"""

from __future__ import annotations

import panel as pn

from ..components.panes.image import ImagePane
from ..components.panes.top_classes import TopClasses
from ..components.state.session import ExplanationSession
from ..components.widgets.class_picker import ClassPicker
from ..components.widgets.gallery import Gallery
from ..components.widgets.label_grid import LabelGrid
from ..components.widgets.settings import ExplainerSettings, fast_settings
from .frame import (
    UrlState,
    after_load,
    config_problems,
    configured_dataset,
    configured_model,
    configured_settings,
    configured_store,
    extension,
    hold_background_until_loaded,
    lazy_card,
    notify,
    page,
    warm_up,
    when_quiet,
)
from .panes import CARD, method_cards, report_cards

__all__ = ["gallery_app"]


def gallery_app():
    """The gallery page: labels and thumbnails, the selected image's top classes, the label at a
    glance (built when opened), every method's explanation, its cost and its stability.

    The first screen (the labels, the first page of thumbnails, the prediction) is served first;
    the method cards are built once the browser has drawn it (they were about two thirds of the
    page's build on the server and of its drawing in the browser), and the cards below them once
    the page is quiet (``when_quiet``), so that a first click does not wait for them.
    """
    hold_background_until_loaded()
    extension()
    dataset, problem = configured_dataset()
    model = configured_model()
    warm_up(model)

    explainer_settings, settings_problem = configured_settings(fast_settings())
    settings = ExplainerSettings.from_dict(explainer_settings)
    store, store_problem = configured_store()
    gallery = Gallery(dataset=dataset, model=model, store=store)
    session = ExplanationSession(source=gallery.param.selected_record, model=model, settings=settings, store=store)
    top = TopClasses.from_session(
        session, true_label=pn.bind(lambda record: record.label if record else None, gallery.param.selected_record))
    picker = ClassPicker.from_session(session, true_label=top.param.true_label)
    image = ImagePane(image=session.param.image, title=session.param.image_name)
    below = pn.Column(sizing_mode="stretch_width")
    shown: list = []

    # The page's precomputed explanations are read from the store and drawn in the background,
    # so that a click on one costs what a revisit does (about 0.15 s, against 0.35 s read at
    # the click: decoding the stored entry and drawing its tiles in the worker).
    def prefetch(*_):
        session.prefetch(gallery.page_records())

    gallery.param.watch(prefetch, ["records", "page", "page_size"])
    settings.param.watch(prefetch, "request")
    prefetch()

    def fill_methods():
        cards, panes = method_cards(session, settings, top)
        shown[:] = [cards, panes]
        below.objects = cards
        prefetch()  # again: the method panes draw their tiles now that they exist

    def fill_below():
        cards, panes = shown
        label_grid = LabelGrid(gallery=gallery, settings=settings, store=store, top_k=session.top_k,
                               metrics=session.metrics, metric_settings=session.metric_settings)
        at_a_glance = lazy_card(label_grid, "Label at a glance · every image of the label, explained",
                                css_classes=["xp-card-label"], sizing_mode="stretch_width", margin=(6, 6))
        at_a_glance.param.watch(lambda event: setattr(label_grid, "active", not event.new), "collapsed")
        below.objects = [at_a_glance, *cards, *report_cards(session, top, panes)]

    # The method cards, which a click fills first, once the page is drawn; the rest (label grid,
    # inspection, trust, export, cost, stability) once the page is quiet, after a first click's
    # top classes and first panes have gone out.
    after_load(fill_methods)
    when_quiet(fill_below, [(session, ("status", "explanation", "image"))], lambda: session.status == "loading")
    UrlState(gallery=gallery)
    for text in (settings_problem, store_problem, *config_problems()):
        notify(text)

    return page(
        alerts=[problem],
        title="xai-panel · gallery",
        sidebar=[
            pn.pane.Markdown(f"**{dataset.name}** · {len(dataset)} images · model `{model}`"
                             + (f" · skipped: {dataset.skipped_text()}" if dataset.skipped else ""), margin=(0, 10)),
            gallery.controls(),
            lazy_card(settings, "Explainer settings", sizing_mode="stretch_width"),
        ],
        main=[
            pn.Row(
                pn.Card(gallery.grid(), title="Images", **CARD),
                pn.Card(pn.Row(image, pn.Column(session, top, picker, sizing_mode="stretch_width")), title="Prediction",
                        **CARD),
                sizing_mode="stretch_width",
            ),
            below,
        ],
    )
