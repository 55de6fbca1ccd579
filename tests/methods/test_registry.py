"""The method registry: discovery, "did you mean", defaults stated once, and a method
registered from a test module reaching ``explain()`` and the store."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import param
import pytest

import xai_panel
from xai_panel.engine.results import ScoreResult
from xai_panel.methods import Explainer, available_methods, default_methods, make_explainer, method_class, registry, run_order

PACKAGE = Path(xai_panel.__file__).resolve().parent


def test_the_built_in_methods_are_discovered_in_display_order():
    names = available_methods()
    assert xai_panel.available_methods() == names
    assert names[:3] == ("lime", "anchors", "shap")
    assert "occlusion" in names
    assert default_methods() == ("lime", "anchors", "shap")  # occlusion is on request
    for name, cls in registry().items():
        assert cls.method == name and cls.label and cls.result_type is not object
        assert Path(__import__(cls.__module__, fromlist=["_"]).__file__).parent == PACKAGE / "methods"


def test_an_unknown_method_gets_a_did_you_mean():
    with pytest.raises(ValueError, match=r"unknown method 'limee'; did you mean 'lime'\?"):
        method_class("limee")
    with pytest.raises(ValueError, match="did you mean 'anchors'"):
        xai_panel.explain(np.zeros((8, 8, 3), np.uint8), object(), methods=["anchor"])


def test_the_pool_definer_runs_first_whatever_the_order_asked():
    assert run_order(["shap", "anchors", "lime"]) == ("lime", "anchors", "shap")
    assert run_order(["occlusion", "shap"]) == ("shap", "occlusion")


def test_function_defaults_are_the_explainers_defaults():
    import inspect

    from xai_panel.methods.anchors import explain_anchors
    from xai_panel.methods.lime import explain_lime
    from xai_panel.methods.shap import explain_shap

    for function, method in ((explain_anchors, "anchors"), (explain_shap, "shap"), (explain_lime, "lime")):
        settings = make_explainer(method).settings()
        for name, p in inspect.signature(function).parameters.items():
            if name in settings:
                assert p.default == settings[name], (function.__name__, name)


def test_a_subclass_keeping_a_name_is_a_variant_not_a_second_method():
    class QuietLime(method_class("lime")):
        pass

    assert registry()["lime"] is not QuietLime
    assert isinstance(make_explainer("lime", QuietLime()), QuietLime)


def _method_literals(path: Path, names: set[str]) -> set[str]:
    """The method names written as string literals in ``path`` (docstrings and comments aside)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings}


def test_no_file_but_a_methods_own_names_it():
    """Adding a method is adding its file: no other module of the package lists the names."""
    own = {name: Path(__import__(cls.__module__, fromlist=["_"]).__file__).resolve()
           for name, cls in registry().items()}
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        found = {name for name in _method_literals(path, set(own)) if own[name] != path.resolve()}
        if found:
            offenders[str(path.relative_to(PACKAGE))] = sorted(found)
    assert offenders == {}


# -- a method registered here, in the test module ------------------------------------------------
@dataclass(frozen=True)
class BrightnessResult(ScoreResult):
    label: int
    values: np.ndarray


@pytest.fixture
def brightness():
    """A tiny method (a superpixel's mean brightness, times ``scale``: no model passes),
    registered for one test and unregistered after it."""

    class BrightnessExplainer(Explainer):
        method = "brightness"
        label = "Brightness"
        result_type = BrightnessResult
        order = 99
        in_default = False
        scale = param.Number(1.0, bounds=(0.0, 10.0), doc="Factor on the mean brightness.")

        def compute(self, engine, labels, *, seed, pool, top_k):
            grey = engine.image.mean(axis=2)
            counts = np.bincount(engine.segments.ravel(), minlength=engine.n_segments)
            means = np.bincount(engine.segments.ravel(), grey.ravel(), engine.n_segments) / counts
            return {int(c): BrightnessResult(int(c), means * self.scale) for c in labels}

    yield BrightnessExplainer
    BrightnessExplainer.registered = False
    assert "brightness" not in available_methods()


def test_a_method_registered_in_a_test_reaches_explain_and_the_store(brightness, classifier, chelsea, tmp_path):
    from xai_panel.data import image_hash
    from xai_panel.engine.request import ExplainRequest
    from xai_panel.store import ExplanationStore

    assert "brightness" in available_methods() and "brightness" not in default_methods()
    res = xai_panel.explain(chelsea, classifier, methods=("brightness",), segmentation="slic",
                            settings={"brightness": {"scale": 2.0}})
    label = res.top[0].index
    grey = res.image.mean(axis=2)
    superpixel = 3
    expected = 2.0 * grey[res.segmentation.labels == superpixel].mean()
    assert res.brightness[label].values[superpixel] == pytest.approx(expected)
    assert res.results["brightness"][label] is res.brightness[label]
    assert res.costs["brightness"].forward_passes == 0
    with pytest.raises(ValueError, match="scale. must be at most 10.0, not 20.0"):
        xai_panel.explain(chelsea, classifier, methods=("brightness",), settings={"brightness": {"scale": 20.0}})

    store = ExplanationStore(tmp_path / "store.sqlite")
    request = ExplainRequest.create(classifier.model_id, ("brightness",), segmentation="slic",
                                    settings={"brightness": {"scale": 2.0}})
    store.put(res, image_hash(chelsea), request=request)
    back = store.get(image_hash(chelsea), request)
    assert back is not None and back.methods == ("brightness",)
    assert isinstance(back.brightness[label], brightness.result_type)
    assert np.array_equal(back.brightness[label].values, res.brightness[label].values)
    other = ExplainRequest.create(classifier.model_id, ("brightness",), segmentation="slic",
                                  settings={"brightness": {"scale": 3.0}})
    assert store.get(image_hash(chelsea), other).results == {}  # its settings are part of the key


def test_the_results_views_are_read_only(lime_and_anchors):
    with pytest.raises(TypeError):
        lime_and_anchors.lime[0] = None
    assert lime_and_anchors.occlusion == {}  # a registered method that did not run
    with pytest.raises(AttributeError, match="no attribute 'limes'"):
        lime_and_anchors.limes


@pytest.fixture(scope="module")
def lime_and_anchors(classifier, chelsea):
    return xai_panel.explain(chelsea, classifier, methods=("lime",), segmentation="slic",
                             settings={"lime": {"num_samples": 50}})
