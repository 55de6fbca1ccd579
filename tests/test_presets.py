"""Presets: named settings that the dashboards, ``explain`` and precompute share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import param
import pytest

import xai_panel as xp
from tests.tiny_models import tiny_onnx
from xai_panel.engine.pipeline import apply_preset
from xai_panel.engine.request import ExplainRequest
from xai_panel.engine.results import ScoreResult
from xai_panel.engine.segmentation import DEFAULTS
from xai_panel.methods import Explainer, available_methods, default_methods, registry
from xai_panel.methods.base import dashboard_methods
from xai_panel.presets import matching_preset, preset, preset_names, presets


def test_the_interactive_preset_is_the_dashboards_budget():
    from xai_panel.components.widgets.settings import FAST_SETTINGS, fast_settings

    interactive = xp.preset("interactive")
    assert preset_names() == ("interactive", "thorough") and list(presets()) == list(preset_names())
    assert interactive.segmentation == "slic" and interactive.methods == dashboard_methods()
    assert "gradcam" in interactive.methods  # ticked in the dashboards, so precompute stores it by default
    assert interactive.settings["lime"] == {"num_samples": 400}
    assert interactive.settings["anchors"] == {"n_examples": 4, "max_anchor_size": 3}
    assert interactive.settings["shap"] == {"estimator": "owen", "nsamples": 300}
    assert interactive.settings == {m: cls.interactive for m, cls in registry().items() if cls.interactive}
    # The old names are the preset.
    assert fast_settings() == FAST_SETTINGS == interactive.as_settings()
    assert FAST_SETTINGS["segmentation"] == "slic" and FAST_SETTINGS["lime"] == {"num_samples": 400}


def test_the_thorough_preset_is_the_library_defaults():
    thorough = preset("thorough")
    assert thorough.segmentation == "quickshift" and thorough.methods == default_methods()
    assert thorough.settings == {}
    ours = ExplainRequest.create("m", thorough.methods, segmentation=thorough.segmentation,
                                 segmentation_params=thorough.segmentation_params, settings=thorough.settings)
    assert ours.to_json() == ExplainRequest.create("m").to_json()  # the request of a bare explain()
    assert thorough.method_settings("lime")["num_samples"] == 1000


@dataclass(frozen=True)
class _Flat(ScoreResult):
    label: int
    values: np.ndarray


def test_a_method_registered_later_has_its_interactive_budget_in_the_preset():
    class FlatExplainer(Explainer):
        method = "flat"
        label = "Flat"
        result_type = _Flat
        order = 98
        in_default = False
        interactive = {"level": 2.0}
        level = param.Number(1.0, bounds=(0.0, 5.0), doc="The score of every superpixel.")

        def compute(self, engine, labels, *, seed, pool, top_k):
            return {int(c): _Flat(int(c), np.full(engine.n_segments, self.level)) for c in labels}

    try:
        assert "flat" in available_methods()
        assert preset("interactive").settings["flat"] == {"level": 2.0}
        assert preset("thorough").method_settings("flat") == {"level": 1.0}
    finally:
        FlatExplainer.registered = False
    assert "flat" not in preset("interactive").settings


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown preset 'bogus'; the presets are interactive, thorough"):
        preset("bogus")
    with pytest.raises(ValueError, match=r"did you mean 'thorough'\?"):
        preset("thorogh")
    # explain refuses it before any work (this classifier would fail at its first use)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        xp.explain(np.zeros((8, 8, 3), np.uint8), object(), preset="fast")


def test_matching_preset_tells_a_preset_from_custom_settings():
    for name, chosen in presets().items():
        request = ExplainRequest.create("m", chosen.methods, segmentation=chosen.segmentation,
                                        settings=chosen.settings)
        assert matching_preset(request.segmentation, request.segmentation_params, request.settings) == name
    interactive = preset("interactive")
    request = ExplainRequest.create("m", ["lime"], segmentation="slic", settings={"lime": {"num_samples": 401}})
    assert matching_preset(request.segmentation, request.segmentation_params, request.settings) is None
    params = {**DEFAULTS["slic"], "n_segments": 51}
    assert not interactive.matches("slic", params, {})
    assert interactive.matches("slic", DEFAULTS["slic"], {}) and not interactive.matches("quickshift", {}, {})


def test_explicit_arguments_apply_over_the_preset():
    methods, segmentation, params, settings = apply_preset("interactive", None, None, None,
                                                           {"lime": {"kernel_width": 0.5}, "shap": {"nsamples": 120}})
    assert methods == dashboard_methods() and segmentation == "slic" and params == {}
    assert settings["lime"] == {"num_samples": 400, "kernel_width": 0.5}  # parameter by parameter
    assert settings["shap"] == {"estimator": "owen", "nsamples": 120}
    assert settings["anchors"] == {"n_examples": 4, "max_anchor_size": 3}
    methods, segmentation, params, _ = apply_preset("thorough", ["lime"], "grid", {"rows": 3}, None)
    assert methods == ["lime"] and segmentation == "grid" and params == {"rows": 3}
    assert apply_preset(None, None, None, None, None) == (None, "quickshift", None, None)  # explain as it was


def test_explain_with_a_preset_is_explain_with_its_settings(classifier, chelsea):
    interactive = preset("interactive")
    methods = ("gradcam", "lime")
    by_name = xp.explain(chelsea, classifier, methods=methods, preset="interactive", top_k=2)
    by_settings = xp.explain(chelsea, classifier, methods=methods, segmentation=interactive.segmentation,
                             settings=interactive.settings, top_k=2)
    assert by_name.settings == by_settings.settings
    assert by_name.settings["segmentation"] == "slic" and by_name.settings["lime"]["num_samples"] == 400
    assert by_name.costs["lime"].forward_passes == by_settings.costs["lime"].forward_passes > 0
    for c in by_name.labels:
        np.testing.assert_array_equal(by_name.lime[c].values, by_settings.lime[c].values)
        np.testing.assert_array_equal(by_name.results["gradcam"][c].heatmap, by_settings.results["gradcam"][c].heatmap)
    np.testing.assert_array_equal(by_name.segmentation.labels, by_settings.segmentation.labels)


def test_explicit_settings_override_the_preset_in_explain(classifier, chelsea):
    res = xp.explain(chelsea, classifier, methods=("lime",), preset="thorough", settings={"lime": {"num_samples": 40}},
                     top_k=1)
    assert res.settings["segmentation"] == "quickshift" and res.settings["lime"]["num_samples"] == 40
    assert res.costs["lime"].forward_passes + res.costs["lime"].cache_hits == 40
    grid = xp.explain(chelsea, classifier, methods=("lime",), preset="interactive", segmentation="grid",
                      settings={"lime": {"num_samples": 30}}, top_k=1)
    assert grid.settings["segmentation"] == "grid" and grid.segmentation.n_segments == 36


def test_a_presets_method_the_model_refuses_is_left_out_and_named(tmp_path, chelsea):

    from xai_panel.models import ModelError, load_classifier

    path = tiny_onnx(tmp_path / "tiny.onnx")
    onnx = load_classifier(str(path))
    small = {"lime": {"num_samples": 30}, "anchors": {"max_anchor_size": 1}, "shap": {"nsamples": 40}}
    res = xp.explain(chelsea, onnx, preset="interactive", settings=small, top_k=1)
    assert res.refused == ("gradcam",) and "needs a torch model" in res.errors["gradcam"]
    assert set(res.methods) == {"lime", "anchors", "shap"} and "gradcam" not in res.settings
    with pytest.raises(ModelError, match="needs a torch model"):  # named: refused as before
        xp.explain(chelsea, onnx, methods=("gradcam",), preset="interactive", top_k=1)
