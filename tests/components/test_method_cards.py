"""Every registered method reaches the settings card and a pane of the dashboards, occlusion
included, without any component naming it."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest

from xai_panel.apps.panes import explanation_cards
from xai_panel.components import (
    ExplainerSettings,
    ExplanationSession,
    MemoryCache,
    ScorePane,
    TopClasses,
    method_pane,
    pane_class,
)
from xai_panel.render.overlays import score_map

from .conftest import wait_until


def _cards(layout) -> list[pn.Card]:
    return [obj for obj in layout.select(pn.Card)]


def test_the_settings_card_offers_every_registered_method():
    settings = ExplainerSettings()
    gradients = ["gradcam", "integrated_gradients", "smoothgrad"]
    assert settings.param.methods.objects == ["lime", "anchors", "shap", "occlusion", *gradients]
    assert settings.methods == ["lime", "anchors", "shap", "gradcam"]  # the default methods, and Grad-CAM
    titles = [card.title for card in _cards(pn.panel(settings))]
    assert titles == ["LIME", "Anchors", "SHAP", "Occlusion", "Grad-CAM", "Integrated Gradients", "SmoothGrad"]
    settings.occlusion.neighbours = 1
    settings.methods = [*settings.methods, "occlusion"]
    assert settings.request["methods"] == ["gradcam", "lime", "anchors", "shap", "occlusion"]
    assert settings.request["settings"]["occlusion"] == {"neighbours": 1}


def test_the_occlusion_card_shows_when_requested_and_draws_its_scores(photos):
    assert pane_class("occlusion") is ScorePane
    settings = ExplainerSettings(settings={"lime": {"num_samples": 40}}, methods=["lime"], segmentation="slic")
    session = ExplanationSession(settings=settings, cache=MemoryCache())
    top = TopClasses.from_session(session)
    cards = {card.title.split(" · ")[0]: card for card in explanation_cards(session, settings, top)
             if isinstance(card, pn.Card)}
    assert list(cards) == ["LIME", "Anchors", "SHAP", "Occlusion", "Grad-CAM", "Integrated Gradients", "SmoothGrad",
                           "Inspect", "Trust", "Export"]  # the methods' cards, the HoloViews inspection, trust, export
    assert cards["LIME"].visible and not cards["Occlusion"].visible
    # A method not ticked when the page is built gets its pane when first ticked (not before).
    assert cards["LIME"].objects and not cards["Occlusion"].objects
    settings.methods = ["lime", "occlusion"]
    assert cards["Occlusion"].visible and not cards["SHAP"].visible
    assert cards["Occlusion"].objects and not cards["SHAP"].objects  # SHAP was never ticked: never built

    session.source = photos["coffee"]
    session.wait()
    assert wait_until(lambda: session.status == "done")
    res = session.explanation
    pane = method_pane(session, "occlusion", inspect=top)  # the pane the card holds
    assert pane.method == "occlusion" and pane.title == "Occlusion"
    tiles = pane.tiles()
    first = res.top[0].index
    assert np.allclose(tiles[0][1], score_map(res.segmentation.labels, res.occlusion[first]))
    assert res.costs["occlusion"].forward_passes + res.costs["occlusion"].cache_hits == res.segmentation.n_segments + 1


def test_a_method_named_like_a_setting_is_refused():
    import param

    from xai_panel.methods import Explainer

    class Seed(Explainer):
        method = "seed"
        label = "Seed"
        in_default = False

    try:
        with pytest.raises(ValueError, match="a method cannot be called 'seed': the settings already have a 'seed'"):
            ExplainerSettings()
    finally:
        Seed.registered = False
    assert isinstance(ExplainerSettings.param["seed"], param.Integer)
