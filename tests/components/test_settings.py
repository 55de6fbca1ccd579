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
