"""The explorer: one image at a time, your own (drag and drop) or one picked from the gallery.

Serve with ``xai-panel serve`` or ``panel serve dashboards/explorer.py``; ``XAI_PANEL_DATA`` and
``XAI_PANEL_MODEL`` choose the gallery folder and the initial model, the model selector the rest.
"""

import panel as pn

from xai_panel.components import (
    AnchorPane, ExplainerSettings, ExplanationSession, FAST_SETTINGS, Gallery, ImagePane, ImageUpload, LimePane,
    ModelSelector, ShapPane, StabilityPane, TimingPane, TopClasses,
)
from xai_panel.components.app import (
    UrlState, configured_dataset, configured_model, configured_settings, configured_store, follow, lazy_card, notify,
    page, warm_up,
)

pn.extension(notifications=True, design="fast")

dataset, problem = configured_dataset()
model = ModelSelector(model=configured_model())
warm_up(model.model)

explainer_settings, settings_problem = configured_settings(FAST_SETTINGS)
settings = ExplainerSettings.from_dict(explainer_settings)
upload = ImageUpload()
gallery = Gallery(dataset=dataset, model=model.param.model, page_size=12, thumbnail_size=88)
store, store_problem = configured_store()
session = ExplanationSession(model=model.param.model, settings=settings, store=store)
follow(session, (upload.param.image, upload.param.name), gallery.param.selected_record)
top = TopClasses.from_session(session)
image = ImagePane(image=session.param.image, title=session.param.image_name)
lime = LimePane.from_session(session, inspect=top)
anchors = AnchorPane.from_session(session, inspect=top)
shap = ShapPane.from_session(session, inspect=top)
timing = TimingPane.from_session(session)
stability = StabilityPane.from_session(session, inspect=top)
UrlState(gallery=gallery)
notify(problem)
notify(settings_problem)
notify(store_problem)

card = dict(sizing_mode="stretch_width", margin=(6, 6), collapsible=False)
page(
    title="xai-panel · explorer",
    sidebar=[
        upload,
        model,
        pn.Card(gallery.controls(), title="Pick from the gallery", collapsed=False, sizing_mode="stretch_width"),
        lazy_card(settings, "Explainer settings", sizing_mode="stretch_width"),
    ],
    main=[
        pn.Row(
            pn.Card(pn.Row(image, pn.Column(session, top, sizing_mode="stretch_width")), title="Prediction", **card),
            pn.Card(gallery.grid(), title=f"Gallery · {dataset.name}", **card),
            sizing_mode="stretch_width",
        ),
        pn.Card(lime, title="LIME · superpixels for and against each class", **card),
        pn.Card(anchors, title="Anchors · what is enough to keep the prediction", **card),
        pn.Card(shap, title="SHAP · each superpixel's share of the prediction, one scale", **card),
        pn.Row(
            pn.Card(timing, title="Cost · wall time, forward passes, cache hits", **card),
            pn.Card(stability, title="Stability · seeds and input noise", **card),
            sizing_mode="stretch_width",
        ),
    ],
).servable()
