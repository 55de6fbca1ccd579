"""The gallery dashboard: browse a dataset per label, click an image, watch it being explained.

Serve with ``xai-panel serve [--data DIR] [--model NAME]`` or ``panel serve dashboards/gallery.py``
(``XAI_PANEL_DATA`` / ``XAI_PANEL_MODEL`` choose data and model; default: the demo gallery and
the embedded EfficientNet-Lite0). ``?image=ID&label=NAME&group=label|prediction`` in the URL
restores a view.
"""

import panel as pn

from xai_panel.components import (
    AnchorPane, ExplainerSettings, ExplanationSession, FAST_SETTINGS, Gallery, ImagePane, LimePane, ShapPane,
    StabilityPane, TimingPane, TopClasses,
)
from xai_panel.components.app import (
    UrlState, configured_dataset, configured_model, configured_settings, configured_store, lazy_card, notify, page,
    warm_up,
)

pn.extension(notifications=True, design="fast")

dataset, problem = configured_dataset()
model = configured_model()
warm_up(model)

explainer_settings, settings_problem = configured_settings(FAST_SETTINGS)
settings = ExplainerSettings.from_dict(explainer_settings)
store, store_problem = configured_store()
gallery = Gallery(dataset=dataset, model=model, store=store)
session = ExplanationSession(source=gallery.param.selected_record, model=model, settings=settings,
                             store=store)
top = TopClasses.from_session(
    session, true_label=pn.bind(lambda record: record.label if record else None, gallery.param.selected_record))
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
    title="xai-panel · gallery",
    sidebar=[
        pn.pane.Markdown(f"**{dataset.name}** · {len(dataset)} images · model `{model}`", margin=(0, 10)),
        gallery.controls(),
        lazy_card(settings, "Explainer settings", sizing_mode="stretch_width"),
    ],
    main=[
        pn.Row(
            pn.Card(gallery.grid(), title="Images", **card),
            pn.Card(pn.Row(image, pn.Column(session, top, sizing_mode="stretch_width")), title="Prediction",
                    **{**card, "sizing_mode": "stretch_width"}),
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
