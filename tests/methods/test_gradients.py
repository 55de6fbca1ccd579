"""Grad-CAM, Integrated Gradients and SmoothGrad on a tiny fixed torch model (exact checks) and
the embedded model (one small real run), the refusal of an ONNX file, and their costs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xai_panel as xp
from xai_panel.engine import ExplainRequest, ExplanationService, MethodsFailed
from xai_panel.methods import available_methods, make_explainer, run_order
from xai_panel.models import load_classifier
from xai_panel.models.classifier import ModelError, Preprocessing

SIZE = 16
GRADIENTS = ("gradcam", "integrated_gradients", "smoothgrad")
PREP = Preprocessing(crop_size=SIZE, resize_size=SIZE, mean=(0.5,) * 3, std=(0.25,) * 3)


class TinyCnn(torch.nn.Module):
    """conv 3x3 -> ReLU -> global mean -> linear: fixed weights, piecewise linear, instant."""

    def __init__(self, classes: int = 3, channels: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(channels, classes)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


@pytest.fixture(scope="module")
def tiny():
    return load_classifier(TinyCnn(), class_names=["a", "b", "c"], backend="torch", preprocessing=PREP, cache=False)


@pytest.fixture(scope="module")
def tiny_image() -> np.ndarray:
    return np.random.RandomState(3).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)


def _grid(**kwargs):
    return dict(segmentation="grid", segmentation_params={"rows": 4, "cols": 4}, **kwargs)


def test_gradcam_equals_the_hand_computed_map(tiny, tiny_image):
    """At the ReLU's output A, d y_c / d A_k(i, j) = W_ck / (h w), so Grad-CAM is
    ReLU(sum_k W_ck / (h w) * A_k): computed here with NumPy from A alone."""
    res = xp.explain(tiny_image, tiny, methods=("gradcam",), top_k=3, **_grid())
    module = tiny.torch_module
    x = torch.from_numpy(PREP.normalise(tiny_image[None]))
    with torch.no_grad():
        a = torch.relu(module.conv(x))[0].numpy().astype(np.float64)  # (K, h, w)
    w = module.fc.weight.detach().numpy().astype(np.float64)  # (classes, K)
    segments = res.segmentation.labels
    for c in res.labels:
        alpha = w[c] / (SIZE * SIZE)
        expected = np.maximum(np.tensordot(alpha, a, axes=1), 0)
        got = res.gradcam[c]
        np.testing.assert_allclose(got.heatmap, expected, rtol=1e-5, atol=1e-7)
        means = [expected[segments == s].mean() for s in range(res.segmentation.n_segments)]
        np.testing.assert_allclose(got.values, means, rtol=1e-5, atol=1e-7)
        assert got.prediction == pytest.approx(float(tiny.predict_proba(tiny_image[None])[0, c]), rel=1e-5)
    assert len({res.gradcam[c].heatmap.tobytes() for c in res.labels}) == 3  # one map per class
    assert res.costs["gradcam"].backward_passes == 3


def test_gradcam_one_pass_equals_captum_layergradcam_and_costs_one_forward_pass(tiny, tiny_image):
    kwargs = dict(methods=("gradcam",), top_k=3, **_grid())
    xp.explain(tiny_image, tiny, **kwargs)  # the layer search ('auto') runs once per model
    fast = xp.explain(tiny_image, tiny, **kwargs)
    captum = xp.explain(tiny_image, tiny, settings={"gradcam": {"one_pass": False, "layer": "relu"}}, **kwargs)
    for c in fast.labels:
        np.testing.assert_allclose(fast.gradcam[c].heatmap, captum.gradcam[c].heatmap, rtol=1e-5, atol=1e-8)
    assert fast.costs["gradcam"].forward_passes == 1 and captum.costs["gradcam"].forward_passes == 3
    signed = xp.explain(tiny_image, tiny, settings={"gradcam": {"relu": False}}, **kwargs)
    assert min(r.heatmap.min() for r in signed.gradcam.values()) < 0 <= min(r.heatmap.min() for r in fast.gradcam.values())


@pytest.mark.parametrize("baseline", ["black", "fill", "mean"])
def test_integrated_gradients_completeness_within_captums_delta(tiny, tiny_image, baseline):
    res = xp.explain(tiny_image, tiny, methods=("integrated_gradients",), top_k=3, fill="mean",
                     settings={"integrated_gradients": {"steps": 64, "baseline": baseline}}, **_grid())
    module = tiny.torch_module
    x = torch.from_numpy(PREP.normalise(tiny_image[None]))
    if baseline == "black":
        b = torch.from_numpy(PREP.normalise(np.zeros((1, SIZE, SIZE, 3), np.uint8)))
    elif baseline == "fill":
        b = torch.from_numpy(PREP.normalise(xp.engine.fill_image(tiny_image, res.segmentation.labels, "mean")[None]))
    else:
        b = torch.zeros_like(x)
    with torch.no_grad():
        change = (module(x) - module(b))[0].double().numpy()
    for c in res.labels:
        r = res.integrated_gradients[c]
        assert r.expected == pytest.approx(change[c], abs=1e-4)
        assert abs(float(r.heatmap.astype(np.float64).sum()) - change[c]) <= abs(r.delta) + 1e-4
        assert abs(r.delta) < 0.02 * abs(change[c]) + 1e-4  # piecewise linear: 64 points are plenty
    assert res.costs["integrated_gradients"].backward_passes == 3 * 64
    assert res.costs["integrated_gradients"].forward_passes >= 3 * 64


def test_smoothgrad_is_seeded_and_counts_its_passes(tiny, tiny_image):
    kwargs = dict(methods=("smoothgrad",), top_k=2, settings={"smoothgrad": {"samples": 5, "noise": 0.2}}, **_grid())
    one, again, other = (xp.explain(tiny_image, tiny, seed=s, **kwargs) for s in (0, 0, 1))
    c = one.labels[0]
    np.testing.assert_array_equal(one.smoothgrad[c].heatmap, again.smoothgrad[c].heatmap)
    assert not np.array_equal(one.smoothgrad[c].heatmap, other.smoothgrad[c].heatmap)
    assert one.smoothgrad[c].heatmap.min() >= 0  # saliency: |gradient|
    cost = one.costs["smoothgrad"]
    assert (cost.forward_passes, cost.backward_passes) == (2 * 5, 2 * 5)
    over_ig = xp.explain(tiny_image, tiny, methods=("smoothgrad",), top_k=1, **_grid(),
                         settings={"smoothgrad": {"samples": 2, "base": "ig", "ig_steps": 4}})
    assert over_ig.costs["smoothgrad"].backward_passes == 2 * 4


def test_gradient_methods_run_first_and_are_registered_with_bounded_settings():
    assert set(GRADIENTS) <= set(available_methods())
    assert run_order(("lime", "shap", "gradcam", "anchors")) == ("gradcam", "lime", "anchors", "shap")
    assert "gradcam" in xp.methods.dashboard_methods() and "gradcam" not in xp.methods.default_methods()
    with pytest.raises(ValueError, match="steps"):
        make_explainer("integrated_gradients", {"steps": 1})
    with pytest.raises(ValueError, match="noise"):
        make_explainer("smoothgrad", {"noise": 2.0})
    with pytest.raises(ValueError, match="baseline"):
        make_explainer("integrated_gradients", {"baseline": "white"})
    with pytest.raises(ValueError, match="has no setting"):
        make_explainer("gradcam", {"layers": "x"})


def test_a_layer_that_does_not_exist_is_named_with_suggestions(tiny, tiny_image):
    with pytest.raises(ValueError, match=r"no layer 'rellu'; did you mean 'relu'"):
        xp.explain(tiny_image, tiny, methods=("gradcam",), top_k=2, settings={"gradcam": {"layer": "rellu"}}, **_grid())
    with pytest.raises(ValueError, match="spatial output"):
        xp.explain(tiny_image, tiny, methods=("gradcam",), top_k=2, settings={"gradcam": {"layer": "fc"}}, **_grid())


def test_an_onnx_file_is_refused_clearly_and_lime_still_works(tmp_path, tiny_image):
    path = tmp_path / "tinycnn.onnx"
    torch.onnx.export(TinyCnn(), torch.zeros(1, 3, SIZE, SIZE), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    onnx = load_classifier(path, class_names=["a", "b", "c"], preprocessing=PREP, cache=False)
    assert onnx.torch_module is None
    for method, label in zip(GRADIENTS, ("Grad-CAM", "Integrated Gradients", "SmoothGrad")):
        with pytest.raises(ModelError, match=f"{label} needs a torch model: 'tinycnn@.*ONNX file"):
            xp.explain(tiny_image, onnx, methods=("lime", method), top_k=2, **_grid())
    lime = xp.explain(tiny_image, onnx, methods=("lime",), top_k=2, settings={"lime": {"num_samples": 50}}, **_grid())
    assert len(lime.lime) == 2
    # Through the service (the dashboards, precompute): LIME is returned, Grad-CAM says why it is not.
    request = ExplainRequest.create(onnx.model_id, ("lime", "gradcam"), top_k=2, segmentation="grid",
                                    segmentation_params={"rows": 4, "cols": 4}, settings={"lime": {"num_samples": 50}})
    seen = []
    result = ExplanationService().compute(tiny_image, onnx, request, image_hash="h", on_method=seen.append)
    assert set(result.results) == {"lime"} and result.refused == ("gradcam",)
    assert "Grad-CAM needs a torch model" in result.errors["gradcam"]
    assert all("gradcam" in partial.errors for partial in seen)  # said from the first update on
    with pytest.raises(MethodsFailed, match="gradcam failed: ModelError: Grad-CAM needs a torch model"):
        ExplanationService().compute(tiny_image, onnx, ExplainRequest.create(onnx.model_id, ("gradcam",), top_k=1),
                                     image_hash="h")


def test_torchscript_runs_integrated_gradients_but_grad_cam_says_it_needs_hooks(tmp_path, tiny_image):
    path = tmp_path / "tiny.ts"
    torch.jit.script(TinyCnn()).save(str(path))
    scripted = load_classifier(path, class_names=["a", "b", "c"], preprocessing=PREP, backend="torch", cache=False)
    with pytest.raises(ModelError, match="Grad-CAM needs a torch model with layer hooks"):
        xp.explain(tiny_image, scripted, methods=("gradcam",), top_k=2, **_grid())
    res = xp.explain(tiny_image, scripted, methods=("integrated_gradients",), top_k=1,
                     settings={"integrated_gradients": {"steps": 8}}, **_grid())
    assert res.integrated_gradients[res.labels[0]].heatmap.shape == (SIZE, SIZE)


def test_embedded_model_on_onnx_runtime_gets_gradients_from_its_torch_module(classifier, chelsea):
    """The embedded Lite0 (forward passes on ONNX Runtime): Grad-CAM of every top class from one
    forward pass of its torch module, equal to captum's LayerGradCam on the repeated image."""
    assert classifier.backend == "onnxruntime"
    kwargs = dict(top_k=2, segmentation="slic", methods=("gradcam",))
    res = xp.explain(chelsea, classifier, **kwargs)
    assert res.costs["gradcam"].backward_passes == 2 and res.costs["gradcam"].forward_passes <= 2  # + the layer search
    top = res.gradcam[res.labels[0]]
    assert top.heatmap.shape == (224, 224) and top.values.shape == (res.segmentation.n_segments,)
    assert top.heatmap.max() > 0 and top.prediction == pytest.approx(res.top[0].probability, rel=1e-4)
    captum = xp.explain(chelsea, classifier, settings={"gradcam": {"one_pass": False, "layer": "_bn1"}}, **kwargs)
    for c in res.labels:
        np.testing.assert_allclose(res.gradcam[c].heatmap, captum.gradcam[c].heatmap, rtol=1e-3,
                                   atol=1e-4 * float(captum.gradcam[c].heatmap.max()))


def test_grad_cam_changes_when_the_top_layers_are_randomised(classifier, shared_sample):
    """Adebayo et al.'s check for Grad-CAM on the embedded model (one forward and backward pass a stage).

    Measured (Spearman with the trained map after re-initialising _fc / down to _blocks.13 / every unit):
    tabby -0.84 / 0.00 / 0.00, tench -0.14 / 0.60 / 0.24, church 0.70 / -0.28 / -0.46.
    """
    from xai_panel.data import load_image

    for name, last in (("n02123045_tabby", 0.3), ("n01440764_tench", 0.4), ("n03028079_church", 0.6)):
        image = load_image(shared_sample / f"{name}.JPEG")
        res = xp.sanity_check(image, classifier, methods=("gradcam",), stages=["_fc", "_blocks.13", "_conv_stem"],
                              runtime="torch", segmentation="slic")
        rho = res.similarity["gradcam"]
        assert len(rho) == 3 and max(rho) < 0.8, (name, rho)  # 1.0 would be a map that ignores the model
        assert abs(rho[-1]) < last, (name, rho)
