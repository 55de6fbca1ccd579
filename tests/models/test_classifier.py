"""The model layer on the real embedded model and on small real torch modules."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from xai_panel.models import Classifier, ModelError, Preprocessing, load_classifier
from xai_panel.models.torch_backend import resolve_device


def test_embedded_model_top1_accuracy_on_shared_sample(classifier, shared_sample):
    """With mean/std 0.5 and resize 256 + crop 224, Lite0 reaches >= 0.85 top-1 (0.88 measured)."""
    from xai_panel.data import load_image, wnid_to_index

    files = sorted(shared_sample.glob("*.JPEG"))
    assert len(files) >= 800
    correct = 0
    for start in range(0, len(files), 64):
        chunk = files[start : start + 64]
        batch = np.stack([classifier.prepare(load_image(f)) for f in chunk])
        predicted = classifier.predict_proba(batch).argmax(axis=1)
        truth = [wnid_to_index(f.name.split("_")[0]) for f in chunk]
        correct += int(np.sum(predicted == np.asarray(truth)))
    accuracy = correct / len(files)
    print(f"top-1 accuracy {accuracy:.3f} on {len(files)} photos")
    assert accuracy >= 0.85


def test_default_is_embedded_lite0_on_onnxruntime(classifier, chelsea):
    assert classifier.model_id.startswith("efficientnet_lite0@")
    assert classifier.backend == "onnxruntime" and classifier.device == "cpu"
    assert classifier.preprocessing.mean == (0.5, 0.5, 0.5)
    top = classifier.top_k(chelsea, 5)
    assert len(top) == 5 and top[0].probability >= top[-1].probability
    # chelsea is a tabby cat: the top-5 are cats (ImageNet 281-285 are domestic cats)
    assert top[0].index in range(281, 286)
    assert top[0].name == classifier.class_names[top[0].index]


def test_an_empty_cache_gets_the_export_verified_against_torch(chelsea):
    import os
    from pathlib import Path

    from xai_panel.models.onnx_backend import onnx_cache_dir

    assert onnx_cache_dir().parent == Path(os.environ["XAI_PANEL_CACHE"]) and not onnx_cache_dir().exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed export or check would warn and fall back to torch
        clf = load_classifier(cache=False)
    (export,) = onnx_cache_dir().glob("efficientnet_lite0*.onnx")
    assert clf.backend == "onnxruntime" and clf._runner.path == export
    reference = load_classifier(backend="torch")
    assert np.abs(clf.predict_proba(chelsea) - reference.predict_proba(chelsea)).max() < 1e-4


def test_onnxruntime_agrees_with_torch_on_real_photos(classifier, chelsea):
    torch_clf = load_classifier(backend="torch")
    assert torch_clf.backend == "torch"
    from skimage import data

    images = [chelsea, data.coffee(), data.astronaut()]
    diff = np.abs(classifier.predict_proba(images) - torch_clf.predict_proba(images)).max()
    assert diff < 1e-4


def test_predict_proba_batches_in_chunks_and_counts_passes(classifier):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 224, 224, 3), dtype=np.uint8)
    before = classifier.forward_passes
    whole = classifier.predict_proba(images, batch_size=7)
    chunked = classifier.predict_proba(images, batch_size=3)
    assert classifier.forward_passes - before == 14
    np.testing.assert_allclose(whole, chunked, atol=1e-5)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, atol=1e-4)


def test_load_classifier_runs_onnx_runtimes_first_batches_uncounted(tmp_path, monkeypatch, classifier):
    """The first explanation in a new process does not pay for ONNX Runtime's first runs (#14)."""
    from tests.tiny_models import tiny_onnx
    from xai_panel.models.onnx_backend import OnnxRunner

    path = tiny_onnx(tmp_path / "tiny.onnx")
    shapes = []
    run = OnnxRunner.__call__
    monkeypatch.setattr(OnnxRunner, "__call__", lambda self, batch: (shapes.append(batch.shape), run(self, batch))[1])
    cold = load_classifier(path, cache=False, warm=False)
    assert shapes == [(1, 3, 224, 224)] and not cold.warmed  # the load's check only
    shapes.clear()
    warm = load_classifier(path, cache=False, batch_size=8)
    assert shapes == [(1, 3, 224, 224)] + [(8, 3, 224, 224)] * 2 and warm.warmed
    assert (warm.forward_passes, warm.model_seconds) == (0, 0.0)  # explanation costs stay exact
    assert classifier.backend == "onnxruntime" and classifier.warmed  # the shared model, by default


def test_warm_up_runs_full_batches_uncounted_and_checks_the_output(classifier):
    calls = []
    runner = classifier._runner
    classifier._runner = lambda x: (calls.append(x.shape), runner(x))[1]
    try:
        before = (classifier.forward_passes, classifier.model_seconds)
        classifier.warm_up(batches=2)
    finally:
        classifier._runner = runner
    assert calls == [(classifier.batch_size, 3, 224, 224)] * 2
    assert (classifier.forward_passes, classifier.model_seconds) == before  # explanation costs stay exact
    broken = Classifier(lambda x: np.full((len(x), 3), np.nan, np.float32), ["a", "b", "c"], model_id="nan")
    with pytest.raises(ModelError, match="NaN"):
        broken.warm_up()


def test_any_size_image_is_resized_and_centre_cropped():
    prep = Preprocessing()
    tall = np.zeros((600, 300, 3), np.uint8)
    tall[:150] = 255  # the top quarter is cropped away by the centre crop
    view = prep.prepare(tall)
    assert view.shape == (224, 224, 3) and view.dtype == np.uint8
    assert view.max() == 0


class _Tiny(torch.nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        torch.manual_seed(0)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def test_user_module_with_class_names_on_both_backends():
    names = ["a", "b", "c", "d"]
    clf_t = load_classifier(_Tiny(), class_names=names, backend="torch")
    clf_o = load_classifier(_Tiny(), class_names=names, backend="onnxruntime")
    assert clf_o.backend == "onnxruntime" and clf_t.class_names == names
    x = np.random.default_rng(1).integers(0, 256, (5, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(clf_t.predict_proba(x), clf_o.predict_proba(x), atol=1e-5)


def test_the_torch_module_is_kept_beside_any_runner_and_an_onnx_file_has_none(tmp_path):
    """Gradient methods and the sanity check need the module, also when passes run on ONNX Runtime."""
    names = ["a", "b", "c", "d"]
    user = _Tiny()
    for backend in ("torch", "onnxruntime"):
        clf = load_classifier(user, class_names=names, backend=backend)
        module, device = clf.require_torch("Grad-CAM")
        assert clf.backend == backend and module is user and device == clf.torch_device == "cpu"
        assert not module.training
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(_Tiny(), torch.zeros(1, 3, 224, 224), str(path), dynamo=False)
    from_file = load_classifier(path, class_names=names)
    assert from_file.torch_module is None
    with pytest.raises(ModelError, match="Grad-CAM needs a torch model: 'tiny@.*ONNX file"):
        from_file.require_torch("Grad-CAM")


class _BranchOnInput(_Tiny):
    """Tracing records one branch of a data-dependent ``if``: the exported graph is wrong."""

    def forward(self, x):
        logits = super().forward(x)
        return logits if bool(x.abs().sum() > 0) else -logits


def test_onnx_graph_that_disagrees_with_torch_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="ONNX Runtime backend unavailable.*differ from torch"):
        clf = load_classifier(_BranchOnInput(), class_names=list("abcd"), backend="onnxruntime")
    assert clf.backend == "torch"
    x = np.full((1, 224, 224, 3), 200, np.uint8)
    reference = load_classifier(_Tiny(), class_names=list("abcd"), backend="torch")
    np.testing.assert_allclose(clf.predict_proba(x), reference.predict_proba(x), atol=1e-6)


def test_missing_onnxruntime_falls_back_to_torch(tmp_path):
    code = (
        "import sys, warnings; sys.modules['onnxruntime'] = None\n"
        "from xai_panel.models import load_classifier\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    c = load_classifier()\n"
        "print(c.backend, any('onnxruntime is not installed' in str(x.message) for x in w))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split()[-2:] == ["torch", "True"], out.stderr[-2000:]


def test_state_dict_file_for_a_torchvision_architecture(tmp_path):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    path = tmp_path / "my resnet18.pth"
    torch.save(model.state_dict(), path)
    clf = load_classifier("resnet18", weights=path, backend="torch")
    assert clf.model_id.startswith("resnet18@") and clf.num_classes == 1000
    assert clf.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    # the file's weights are the ones used: the same forward pass, by hand, on those weights ...
    image = np.random.default_rng(2).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(clf.preprocessing.normalise(image))), dim=1).numpy()
    probs = clf.predict_proba(image)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    # ... and not an architecture's fresh initialisation
    torch.manual_seed(1)
    fresh = load_classifier(torchvision.models.resnet18(weights=None), class_names=clf.class_names, backend="torch")
    assert np.abs(fresh.predict_proba(image) - probs).max() > 1e-4


class _Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"weights": _Evil()}, f)
    with pytest.raises(ModelError, match="refused to load evil.pth"):
        load_classifier("resnet18", weights=path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(ModelError, match="not a TorchScript archive"):
        load_classifier(path)
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        load_classifier("resnet18", weights=path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(_Tiny().state_dict(), path)
    with pytest.raises(ModelError, match="do not fit resnet18"):
        load_classifier("resnet18", weights=path)


def test_torchscript_file(tmp_path):
    path = tmp_path / "tiny.ts"
    tiny = _Tiny()
    weight = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]], np.float32)  # not _Tiny's seeded ones
    bias = np.array([0.0, 0.5, -0.5, 0.25], np.float32)
    with torch.no_grad():
        tiny.fc.weight.copy_(torch.from_numpy(weight))
        tiny.fc.bias.copy_(torch.from_numpy(bias))
    torch.jit.script(tiny).save(str(path))
    clf = load_classifier(path, class_names=list("abcd"), backend="torch")
    images = np.random.default_rng(3).integers(0, 256, (2, 50, 80, 3), dtype=np.uint8)
    probs = clf.predict_proba(images)
    # the archive's module on the prepared views: channel means -> the linear layer -> softmax
    x = clf.preprocessing.normalise(np.stack([clf.prepare(im) for im in images]))
    logits = x.mean(axis=(2, 3)) @ weight.T + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs, expected, atol=1e-6)


class _WrongShape(_Tiny):
    def forward(self, x):
        return super().forward(x)[:, None, :]


class _NaN(_Tiny):
    def forward(self, x):
        return super().forward(x) * float("nan")


def test_model_with_wrong_output_shape_is_refused_at_load():
    with pytest.raises(ModelError, match=r"returned shape \(1, 1, 4\); expected \(1, 4\)"):
        load_classifier(_WrongShape(), class_names=list("abcd"), backend="torch")


def test_model_returning_nan_is_refused():
    with pytest.raises(ModelError, match="NaN"):
        load_classifier(_NaN(), class_names=list("abcd"), backend="torch")


def test_class_names_must_match_the_output():
    with pytest.raises(ModelError, match="expected"):
        load_classifier(_Tiny(), class_names=["only", "three", "names"], backend="torch")


def test_unknown_model_name_and_bad_options():
    with pytest.raises(ModelError, match="unknown model 'resnet9000'"):
        load_classifier("resnet9000")
    with pytest.raises(ValueError, match="backend"):
        load_classifier(backend="tensorflow")
    with pytest.raises(ValueError, match="batch_size"):
        load_classifier(batch_size=0)


def test_device_auto_resolves_to_an_available_device():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_named_models_load_once_per_process(classifier):
    assert load_classifier() is classifier


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _negate_fc_weights(path, module):
    """Bit-level damage that still loads: the fc weights' bytes replaced by their negation."""
    weights = module.fc.weight.detach().numpy()
    data = path.read_bytes()
    at = data.find(weights.tobytes())
    assert at >= 0 and data.count(weights.tobytes()) == 1
    path.write_bytes(data[:at] + (-weights).tobytes() + data[at + weights.nbytes:])


def _onnx_files(cache):
    return sorted((cache / "onnx").glob("*.onnx"))


@pytest.mark.parametrize("damage", [_truncate, _negate_fc_weights], ids=["truncated", "weights-changed"])
def test_a_damaged_cached_onnx_export_is_exported_again(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("XAI_PANEL_CACHE", str(tmp_path / "cache"))
    names = list("abcd")
    first = load_classifier(_Tiny(), class_names=names, backend="onnxruntime")
    (cached,) = _onnx_files(tmp_path / "cache")
    assert first.backend == "onnxruntime" and first._runner.path == cached
    good = cached.read_bytes()
    damage(cached) if damage is _truncate else damage(cached, _Tiny())
    assert cached.read_bytes() != good

    damaged = rf"cached ONNX export {re.escape(str(cached))} is unusable .*exporting it again"
    with pytest.warns(UserWarning, match=damaged):
        again = load_classifier(_Tiny(), class_names=names, backend="onnxruntime")
    assert again.backend == "onnxruntime"
    assert _onnx_files(tmp_path / "cache") == [cached] and cached.stat().st_size == len(good)
    x = np.random.default_rng(2).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    reference = load_classifier(_Tiny(), class_names=names, backend="torch")
    np.testing.assert_allclose(again.predict_proba(x), reference.predict_proba(x), atol=1e-5)
    # Repaired for good: the next load uses the file without a word.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_classifier(_Tiny(), class_names=names, backend="onnxruntime").backend == "onnxruntime"


@pytest.mark.slow
def test_a_truncated_cached_export_of_the_embedded_model_is_repaired(tmp_path, monkeypatch, classifier, chelsea):
    monkeypatch.setenv("XAI_PANEL_CACHE", str(tmp_path / "cache"))
    fresh = load_classifier(cache=False)
    (cached,) = _onnx_files(tmp_path / "cache")
    _truncate(cached)
    with pytest.warns(UserWarning, match="is unusable .*exporting it again"):
        repaired = load_classifier(cache=False)
    assert repaired.backend == "onnxruntime" and repaired.model_id == fresh.model_id
    torch_clf = load_classifier(backend="torch")
    from skimage import data

    images = [chelsea, data.coffee()]
    np.testing.assert_allclose(repaired.predict_proba(images), torch_clf.predict_proba(images), atol=1e-4)
    assert repaired.top_k(chelsea, 1)[0].index == classifier.top_k(chelsea, 1)[0].index
