"""The model-randomisation sanity check: stages, a user's model left alone, a method that ignores the
model failing, refusals, cancellation; and the embedded model on real photos."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import xai_panel as xp
from xai_panel.engine.perturbation import Cancelled
from xai_panel.methods.base import reduced_settings
from xai_panel.methods.lime import LimeExplainer, LimeResult
from xai_panel.metrics.sanity import model_units, plan_stages, sanity_check
from xai_panel.models import ModelError, load_classifier
from xai_panel.models.classifier import Preprocessing

SIZE = 32
GRID = {"segmentation": "grid", "segmentation_params": {"rows": 4, "cols": 4}}  # 16 superpixels
PREP = Preprocessing(crop_size=SIZE, resize_size=SIZE, mean=(0.5,) * 3, std=(0.25,) * 3)


class _TinyNet(torch.nn.Module):
    """conv 1x1 -> BN -> ReLU -> 4x4 average pool -> linear: each superpixel's evidence goes through the head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(64, 3)
        with torch.no_grad():
            self.fc.weight.mul_(8.0)  # probabilities far from uniform: the occlusion scores are not tiny

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


def _tiny(backend: str = "torch", module=None):
    return load_classifier(module or _TinyNet(), class_names=["a", "b", "c"], backend=backend, preprocessing=PREP)


def _image() -> np.ndarray:
    return np.random.RandomState(3).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)


def test_units_and_stages_go_from_the_top_down():
    net = _TinyNet()
    units = [n for n, _ in model_units(net)]
    assert units == ["conv", "bn", "fc"]  # the pool has no parameters
    assert plan_stages(units) == [1, 2, 3]  # head, then 25/50/75/100 % of 3 units
    assert plan_stages(units, ("fc", "conv")) == [1, 3]
    assert plan_stages(units, 1) == [3]
    # a container of blocks is split into its blocks (as EfficientNet's _blocks or a ResNet's layer3)
    seq = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.ReLU(),
                                                                            torch.nn.Conv2d(3, 3, 1)))
    assert [n for n, _ in model_units(seq)] == ["0", "1.0", "1.2"]  # the ReLU has no parameters
    assert [n for n, _ in model_units(torch.nn.Sequential(seq))] == ["0.0", "0.1"]  # one level down


def test_randomising_changes_the_scores_in_stages_and_the_users_model_is_untouched():
    net = _TinyNet()
    clf = _tiny(module=net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    image = _image()
    probs = clf.predict_proba(image[None])
    calls = []
    res = sanity_check(image, clf, ("lime", "occlusion"), settings={"lime": {"num_samples": 64}}, runtime="torch",
                       progress=lambda d, t: calls.append((d, t)), **GRID)
    assert res.stages == ("fc", "bn", "conv")
    assert res.randomised == (("fc",), ("fc", "bn"), ("fc", "bn", "conv"))
    assert res.units == ("conv", "bn", "fc") and res.runtime == "torch"
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # the trained explanation, then each stage
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # the user's weights, every one
    np.testing.assert_array_equal(clf.predict_proba(image[None]), probs)
    assert res.label.index == int(np.argmax(probs[0]))
    # the trained scores are the ordinary explanation of that class
    ref = xp.explain(image, clf, methods=("occlusion",), top_k=1, **GRID)
    np.testing.assert_allclose(res.scores["occlusion"][0], ref.results["occlusion"][res.label.index].values, atol=1e-6)
    assert res.scores["lime"].shape == (4, 16) and len(res.similarity["occlusion"]) == 3
    # a new head already changes what hiding a superpixel does
    assert res.similarity["occlusion"][0] < 0.9
    assert not np.allclose(res.scores["occlusion"][1], res.scores["occlusion"][0])
    assert all(-1.0 <= s <= 1.0 for m in res.methods for s in res.similarity[m])
    assert res.label_probability[0] == pytest.approx(float(probs[0, res.label.index]), abs=1e-6)
    assert res.settings["lime"]["num_samples"] == 64 and res.forward_passes > 0
    # seeded: the same check again is the same; a unit gets the same weights whatever stages are asked for
    again = sanity_check(image, clf, ("lime", "occlusion"), settings={"lime": {"num_samples": 64}}, runtime="torch",
                         **GRID)
    assert again.similarity == res.similarity
    two = sanity_check(image, clf, ("occlusion",), stages=("fc", "conv"), runtime="torch", **GRID)
    assert two.stages == ("fc", "conv") and two.randomised[-1] == ("fc", "bn", "conv")
    np.testing.assert_allclose(two.scores["occlusion"][2], res.scores["occlusion"][3], atol=1e-7)


def test_onnx_runtime_copies_give_the_torch_results():
    image = _image()
    clf = _tiny()
    on_torch = sanity_check(image, clf, ("occlusion",), runtime="torch", **GRID)
    on_ort = sanity_check(image, clf, ("occlusion",), runtime="onnxruntime", **GRID)
    assert on_ort.runtime == "onnxruntime"
    np.testing.assert_allclose(on_ort.scores["occlusion"], on_torch.scores["occlusion"], atol=1e-5)


class _ImageOnly(LimeExplainer):
    """Scores that read the image and never the model (brightness per superpixel): must fail."""

    def compute(self, engine, labels, *, seed, pool, top_k):
        seg = engine.segments
        bright = np.array([engine.image[seg == s].mean() for s in range(engine.n_segments)])
        return {int(c): LimeResult(label=int(c), weights=bright, intercept=0.0, score=1.0, local_prediction=0.0)
                for c in labels}


def test_an_explanation_that_ignores_the_model_fails():
    res = sanity_check(_image(), _tiny(), ("lime",), settings={"lime": _ImageOnly(num_samples=16)}, runtime="torch",
                       **GRID)
    assert res.similarity["lime"] == (1.0, 1.0, 1.0) and res.top_overlap["lime"] == (1.0, 1.0, 1.0)
    assert res.passed == {"lime": False}
    assert "lime FAILS" in res.verdict("lime") and "not the model" in res.verdict("lime")


def test_an_onnx_only_model_is_refused(tmp_path):
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(_TinyNet(), torch.zeros(1, 3, SIZE, SIZE), str(path), dynamo=False)
    clf = load_classifier(path, class_names=["a", "b", "c"], preprocessing=PREP)
    with pytest.raises(ModelError, match="sanity check .* needs a torch model"):
        sanity_check(_image(), clf, ("occlusion",), **GRID)


@pytest.mark.parametrize("kwargs, message", [
    ({"stages": 0}, "at least one stage"),
    ({"stages": ()}, "at least one stage"),
    ({"stages": ("fc", "nope")}, "no unit 'nope'.*conv, bn, fc"),
    ({"stages": ("conv", "fc")}, "from the top of the model down"),
    ({"methods": ("anchors",)}, "not per-superpixel scores"),
    ({"methods": ("limey",)}, "unknown method 'limey'; did you mean 'lime'"),
    ({"methods": ()}, "at least one method"),
    ({"threshold": 2.0}, "threshold must be"),
    ({"runtime": "gpu"}, "runtime must be one of"),
    ({"label": 3}, "label must be a class index in \\[0, 3\\)"),
    ({"settings": {"lime": {"num_samples": 1}}}, "num_samples"),
])
def test_bad_settings_are_refused_before_any_pass(kwargs, message):
    clf = _tiny()
    with pytest.raises(ValueError, match=message):
        sanity_check(_image(), clf, **{"methods": ("lime",), **GRID, **kwargs})
    assert clf.forward_passes == 0


def test_cancel_stops_between_stages_and_leaves_the_model_alone():
    net = _TinyNet()
    clf = _tiny(module=net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    done = []
    with pytest.raises(Cancelled):  # a callable: stop once the trained explanation is in
        sanity_check(_image(), clf, ("occlusion",), runtime="torch", progress=lambda d, t: done.append(d),
                     cancel=lambda: len(done) >= 1, **GRID)
    assert done == [1]
    event = threading.Event()
    event.set()
    passes = clf.forward_passes
    with pytest.raises(Cancelled):  # an Event set before the start: nothing runs
        sanity_check(_image(), clf, ("occlusion",), cancel=event, **GRID)
    assert clf.forward_passes == passes
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_lime_on_the_embedded_model_changes_once_the_model_is_randomised(classifier, shared_sample):
    """LIME's explanation of the top class falls apart once the head is new, and stays apart.

    Measured (LIME pool of 100 as here, slic, stages _fc then all 21 units; Spearman with the trained
    explanation per stage, then the IoU of the top 5; the class's probability falls from 0.72-0.82 to
    ~0.001 at the first stage): tabby photo (Egyptian cat) -0.16, 0.00 (IoU 0.00, 0.00); tench +0.43, 0.00
    (0.25, 0.00); church -0.18, +0.14 (0.00, 0.11). 0.00: the fully random model's LIME scores are constant
    (no ranking left). With a pool of 150: -0.12/-0.24, +0.45/-0.10, -0.23/0.00. Asserted on the tabby
    with room: |rho| < 0.45 at every stage.
    """
    image = xp.load_image(shared_sample / "n02123045_tabby.JPEG")
    before = {k: v.clone() for k, v in classifier.torch_module.state_dict().items()}
    res = sanity_check(image, classifier, ("lime",), stages=("_fc", "_conv_stem"),
                       settings={"lime": {"num_samples": 100}}, segmentation="slic")
    assert res.label.index == classifier.top_k(image, 1)[0].index
    assert res.stages == ("_fc", "_conv_stem") and len(res.randomised[-1]) == 21
    assert max(abs(s) for s in res.similarity["lime"]) < 0.45
    assert res.passed["lime"] and "lime passes" in res.verdict("lime")
    assert res.label_probability[1] < 0.05 < res.label_probability[0]  # the model is destroyed at the first stage
    assert all(torch.equal(v, before[k]) for k, v in classifier.torch_module.state_dict().items())
    assert reduced_settings(["lime"])["lime"]["num_samples"] == 200  # the documented default budget
