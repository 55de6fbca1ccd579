"""The explorer app: one image at a time, your own (drag and drop) or one picked from the gallery.

``explorer_app()`` builds one page; ``xai-panel serve`` serves it at ``/explorer``, and
``dashboards/explorer.py`` is the same app as a ``panel serve`` script. ``XAI_PANEL_DATA``
and ``XAI_PANEL_MODEL`` choose the gallery folder and the initial model, the model
selector the rest.
"""

from __future__ import annotations

import panel as pn

from ..components.panes.image import ImagePane
from ..components.panes.top_classes import TopClasses
from ..components.state.session import ExplanationSession
from ..components.widgets.class_picker import ClassPicker
from ..components.widgets.gallery import Gallery
from ..components.widgets.model_selector import ModelSelector
from ..components.widgets.model_upload import ModelUpload
from ..components.widgets.settings import ExplainerSettings, fast_settings
from ..components.widgets.upload import ImageUpload
from ..data import ImageRecord
from .frame import (
    UrlState,
    config_problems,
    configured_dataset,
    configured_model,
    configured_settings,
    configured_store,
    extension,
    follow,
    lazy_card,
    notify,
    page,
    warm_up,
)
from .panes import CARD, explanation_cards

__all__ = ["explorer_app"]


def explorer_app():
    """The explorer page: upload or pick an image, choose the model, see every explanation."""
    extension("filedropper")
    dataset, problem = configured_dataset()
    model = ModelSelector(model=configured_model())
    warm_up(model.model)

    explainer_settings, settings_problem = configured_settings(fast_settings())
    settings = ExplainerSettings.from_dict(explainer_settings)
    upload = ImageUpload()
    gallery = Gallery(dataset=dataset, model=model.param.model, page_size=12, thumbnail_size=88)
    store, store_problem = configured_store()
    session = ExplanationSession(model=model.param.model, settings=settings, store=store)
    follow(session, (upload.param.image, upload.param.name), gallery.param.selected_record)
    top = TopClasses.from_session(session)
    picker = ClassPicker.from_session(session, true_label=pn.bind(  # an upload has no true label
        lambda source: source.label if isinstance(source, ImageRecord) else None, session.param.source))
    image = ImagePane(image=session.param.image, title=session.param.image_name)
    UrlState(gallery=gallery)
    for text in (settings_problem, store_problem, *config_problems()):
        notify(text)

    return page(
        alerts=[problem],
        title="xai-panel · explorer",
        sidebar=[
            upload,
            model,
            lazy_card(ModelUpload(selector=model), "Your own model", sizing_mode="stretch_width"),
            pn.Card(gallery.controls(), title="Pick from the gallery", collapsed=False, sizing_mode="stretch_width"),
            lazy_card(settings, "Explainer settings", sizing_mode="stretch_width"),
        ],
        main=[
            pn.Row(
                pn.Card(pn.Row(image, pn.Column(session, top, picker, sizing_mode="stretch_width")), title="Prediction",
                        **CARD),
                pn.Card(gallery.grid(), title=f"Gallery · {dataset.name}", **CARD),
                sizing_mode="stretch_width",
            ),
            *explanation_cards(session, settings, top),
        ],
    )
