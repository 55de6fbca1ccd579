"""Explainer settings: parameters with bounds, widgets generated from them, a plain request."""

from __future__ import annotations

import panel as pn
import pytest

from xai_panel.components import ExplainerSettings
from xai_panel.engine.segmentation import DEFAULTS


def test_request_follows_every_setting():
    settings = ExplainerSettings()
    first = settings.request
    # Grad-CAM is ticked in the dashboards and runs first, right after the top classes.
    assert first["methods"] == ["gradcam", "lime", "anchors", "shap"] and first["segmentation"] == "quickshift"
    settings.lime.num_samples = 300  # a nested explainer parameter
    assert settings.request["settings"]["lime"]["num_samples"] == 300
    settings.param.update(segmentation="slic", n_segments=30, methods=["shap", "lime"])
    request = settings.request
    assert request["segmentation_params"] == {"n_segments": 30, "compactness": DEFAULTS["slic"]["compactness"]}
    assert request["methods"] == ["lime", "shap"]  # always in the engine's order
    assert set(request["settings"]) == {"lime", "shap"}
    settings.param.update(segmentation="grid", grid_size=5)
    assert settings.request["segmentation_params"] == {"rows": 5, "cols": 5}


def test_replacing_an_explainer_is_watched_too():
    from xai_panel.methods import LimeExplainer

    settings = ExplainerSettings()
    settings.lime = LimeExplainer(num_samples=123)
    assert settings.request["settings"]["lime"]["num_samples"] == 123
    settings.lime.num_samples = 124
    assert settings.request["settings"]["lime"]["num_samples"] == 124


def test_bounds_are_enforced():
    settings = ExplainerSettings()
    with pytest.raises(ValueError):
        settings.lime.num_samples = 1
    with pytest.raises(ValueError):
        settings.seed = -1
    with pytest.raises(ValueError):
        ExplainerSettings(settings={"lime": {"no_such": 1}})
    with pytest.raises(ValueError):
        ExplainerSettings.from_dict({"colour": "red"})


def test_from_dict_reads_plain_data():
    settings = ExplainerSettings.from_dict({"methods": ["lime"], "segmentation": "slic", "lime": {"num_samples": 50}})
    assert settings.request["methods"] == ["lime"] and settings.request["settings"]["lime"]["num_samples"] == 50


def test_explain_kwargs_run_the_engine(classifier, photos):
    from xai_panel.engine.pipeline import explain

    settings = ExplainerSettings.from_dict({"methods": ["lime"], "segmentation": "grid", "grid_size": 4,
                                            "lime": {"num_samples": 30}})
    result = explain(photos["chelsea"], classifier, **settings.explain_kwargs())
    assert result.segmentation.n_segments == 16 and result.methods == ("lime",)


def test_widgets_are_generated_from_the_parameters():
    settings = ExplainerSettings()
    view = pn.panel(settings)
    names = {w.name for w in view.select(pn.widgets.Widget)}
    assert {"Methods", "Segmentation", "Fill", "Seed", "Num samples", "Threshold", "Estimator"} <= names
    seed = next(w for w in view.select(pn.widgets.IntInput) if w.name == "Seed")
    seed.value = 7
    assert settings.seed == 7 and settings.request["seed"] == 7


# -- presets ------------------------------------------------------------------------------------

def test_the_settings_show_their_preset_and_custom_after_a_hand_edit():
    from xai_panel.components.widgets.settings import fast_settings

    assert ExplainerSettings().preset == "thorough"  # the bare class holds the library's defaults
    settings = ExplainerSettings.from_dict(fast_settings())  # what the dashboards build
    assert settings.preset == "interactive" and settings.request["segmentation"] == "slic"
    settings.lime.num_samples = 500  # a method's setting, by hand
    assert settings.preset == "custom"
    settings.lime.num_samples = 400  # back to the preset's value: it is the preset again
    assert settings.preset == "interactive"
    settings.n_segments = 60  # a superpixel setting
    assert settings.preset == "custom"
    settings.n_segments = DEFAULTS["slic"]["n_segments"]
    settings.seed = 3  # not part of a preset: the budget is still the interactive one
    assert settings.preset == "interactive"


def test_choosing_a_preset_sets_every_setting_in_one_request():
    settings = ExplainerSettings.from_dict({"segmentation": "grid", "grid_size": 4, "lime": {"num_samples": 90},
                                            "methods": ["lime", "shap"]})
    assert settings.preset == "custom"
    requests = []
    settings.param.watch(lambda event: requests.append(event.new), "request")
    settings.preset = "interactive"
    assert len(requests) == 1  # one new request for the whole preset (the session restarts once)
    request = requests[0]
    assert request["segmentation"] == "slic" and request["methods"] == ["lime", "shap"]  # what runs is kept
    assert request["settings"]["lime"]["num_samples"] == 400 and request["settings"]["shap"]["nsamples"] == 300
    assert settings.grid_size == DEFAULTS["grid"]["rows"] and settings.preset == "interactive"
    settings.preset = "thorough"
    assert settings.request["segmentation"] == "quickshift" and settings.lime.num_samples == 1000
    assert settings.anchors.max_anchor_size == 6 and settings.preset == "thorough"  # the default
    settings.preset = "custom"  # choosing 'custom' changes nothing
    assert settings.request["segmentation"] == "quickshift" and settings.lime.num_samples == 1000


def test_a_preset_given_at_construction_takes_the_explicit_settings_over_it():
    settings = ExplainerSettings.from_dict({"preset": "interactive", "lime": {"num_samples": 200}})
    assert settings.segmentation == "slic" and settings.lime.num_samples == 200
    assert settings.anchors.max_anchor_size == 3 and settings.preset == "custom"
    assert ExplainerSettings(preset="thorough").request["segmentation"] == "quickshift"
    with pytest.raises(ValueError, match="unknown preset 'quick'.*interactive, thorough"):
        ExplainerSettings.from_dict({"preset": "quick"})
    with pytest.raises(ValueError):
        ExplainerSettings().preset = "quick"  # not one of the selector's objects


def test_the_card_offers_the_presets():
    settings = ExplainerSettings()
    view = pn.panel(settings)
    chooser = next(w for w in view.select(pn.widgets.RadioButtonGroup) if w.name == "Preset")
    assert list(chooser.options) == ["interactive", "thorough", "custom"] and chooser.value == "thorough"
    chooser.value = "interactive"
    assert settings.request["segmentation"] == "slic"
    number = next(w for w in view.select(pn.widgets.IntInput) if w.name == "Num samples")
    number.value = 450  # a hand edit in the card
    assert chooser.value == "custom" and settings.preset == "custom"


def test_xai_panel_settings_may_name_a_preset(monkeypatch):
    from xai_panel.apps.frame import configured_settings
    from xai_panel.components.widgets.settings import fast_settings

    monkeypatch.setenv("XAI_PANEL_SETTINGS", '{"preset": "thorough"}')
    values, problem = configured_settings(fast_settings())
    assert problem == "" and ExplainerSettings.from_dict(values).preset == "thorough"
    monkeypatch.setenv("XAI_PANEL_SETTINGS", '{"preset": "fastest"}')
    values, problem = configured_settings(fast_settings())
    assert values == fast_settings() and "ignored" in problem and "unknown preset 'fastest'" in problem
