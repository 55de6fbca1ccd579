"""Your own model in the explorer (``ModelUpload``) and ``load_classifier(preprocessing=...)``.

A three-class TorchScript model whose logits are ten times the mean of each normalised
channel (red, green, blue): the expected probabilities are computed here by hand from the
normalisation, so a wrong one cannot pass.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from xai_panel.components.widgets.model_selector import ModelSelector
from xai_panel.components.widgets.model_upload import ModelUpload, parse_class_names
from xai_panel.models import ModelError, load_classifier
from xai_panel.models.classifier import preprocessing_for
from xai_panel.runtime.jobs import classifier as registered

RGB = ["red", "green", "blue"]


class _ChannelMeans(torch.nn.Module):
    def forward(self, x):
        return 10.0 * x.mean(dim=(2, 3))


def rgb_model(path) -> bytes:
    """Save the three-class TorchScript model at ``path``; returns its bytes."""
    torch.jit.script(_ChannelMeans()).save(str(path))
    return path.read_bytes()


def expected(image: np.ndarray, mean, std) -> np.ndarray:
    x = (image.reshape(-1, 3).mean(0) / 255.0 - np.asarray(mean)) / np.asarray(std)
    e = np.exp(10 * x - (10 * x).max())
    return e / e.sum()


@pytest.fixture
def image():
    rng = np.random.default_rng(3)
    out = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out[..., 1] //= 3  # green is low: the probabilities are not uniform
    return out


CUSTOM = {"mean": (0.4, 0.5, 0.6), "std": (0.2, 0.3, 0.4), "input_size": 64}


@pytest.mark.parametrize("choice, mean, std", [("0.5", (0.5,) * 3, (0.5,) * 3), ("none", (0,) * 3, (1,) * 3),
                                               ("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                                               (CUSTOM, CUSTOM["mean"], CUSTOM["std"])])
def test_load_classifier_takes_the_normalisation_choices(tmp_path, image, choice, mean, std):
    path = tmp_path / "rgb.pt"
    rgb_model(path)
    clf = load_classifier(path, class_names=RGB, preprocessing=choice, backend="torch", cache=False)
    assert clf.input_size == (64 if choice is CUSTOM else 224)
    np.testing.assert_allclose(clf.predict_proba(image)[0], expected(clf.prepare(image), mean, std), rtol=1e-4)
    plain = load_classifier(path, backend="torch", cache=False, class_names=RGB)
    # Another normalisation is another model: its results never share a cache entry.
    assert clf.model_id != plain.model_id and clf.model_id.startswith(plain.model_id.split("+")[0])


def test_bad_preprocessing_choices_are_refused():
    with pytest.raises(ValueError, match="unknown normalisation 'imgnet'"):
        preprocessing_for("imgnet")
    with pytest.raises(ValueError, match="std must be > 0"):
        preprocessing_for("custom", mean=(0, 0, 0), std=(1, 0, 1))
    with pytest.raises(ValueError, match=r"mean must be three finite numbers \(R, G, B\), got \(0, 0\)"):
        preprocessing_for("custom", mean=(0, 0), std=(1, 1, 1))
    with pytest.raises(ValueError, match=r"input_size must be an integer in \[16, 1024\], got 5000"):
        preprocessing_for("0.5", 5000)
    assert preprocessing_for("0.5", 64).resize_size == 73


def test_class_names_from_lines_or_json():
    assert parse_class_names("red\n\ngreen \nblue\n") == RGB
    assert parse_class_names('["red", "green", "blue"]') == RGB
    assert parse_class_names('{"1": ["n2", "green"], "0": ["n1", "red"], "2": ["n3", "blue"]}') == RGB
    for bad, message in [(b"\xff\xfe", "not UTF-8"), ("  \n", "no class names"), ('{"0": "a", "2": "b"}', "0 to 1"),
                         ("[1, 2]", "list of names"), ("[", "not valid JSON")]:
        with pytest.raises(ValueError, match=message):
            parse_class_names(bad, "names.txt")


def test_an_uploaded_model_is_checked_registered_and_chosen(tmp_path, image):
    selector = ModelSelector()
    upload = ModelUpload(selector=selector, normalisation="0.5", input_size=64)
    upload.set_file("rgb.pt", rgb_model(tmp_path / "rgb.pt"))
    upload.set_names("names.txt", "red\ngreen\nblue\n")
    assert upload.names_status == "names.txt: 3 class names (red, green, blue)"
    upload.use()
    upload.wait()
    assert upload.error == "" and upload.model, upload.error
    assert selector.model == upload.model and upload.model in selector.options
    assert "3 classes" in upload.status and "64 px" in upload.status
    clf = registered(upload.model)
    assert clf.class_names == RGB and clf.input_size == 64 and clf.model_id.startswith("rgb@")
    np.testing.assert_allclose(clf.predict_proba(image)[0], expected(clf.prepare(image), (0.5,) * 3, (0.5,) * 3), rtol=1e-4)
    upload.forget()  # the session ended: the name means nothing any more
    with pytest.raises(ModelError):
        registered(upload.model)


def test_bad_model_files_are_refused_with_a_message(tmp_path):
    good = rgb_model(tmp_path / "rgb.pt")
    pickled = tmp_path / "pickled.pt"
    torch.save(_ChannelMeans(), pickled)  # a pickle of the module: it could run code when loaded
    cases = [
        (("notes.txt", good), None, {}, r"must be a TorchScript \(\.pt, \.ts\) or ONNX \(\.onnx\) file"),
        (("junk.pt", b"not a model"), None, {}, "junk.pt was refused: it is not a TorchScript archive"),
        (("pickled.pt", pickled.read_bytes()), None, {},
         "pickled.pt was refused: it is not a TorchScript archive.*unpickling could run code"),
        (("junk.onnx", b"\x08\x01junk"), None, {}, "junk.onnx was refused: junk.onnx is not a usable ONNX model"),
        (("rgb.pt", good), ("names.txt", "a\nb\nc\nd\n"), {},
         r"returned shape \(1, 3\); expected \(1, 4\).*one score per class, and 4 class names"),
        (("rgb.pt", good), None, {}, r"expected \(1, 1000\).*the ImageNet list when none are"),
        (("big.pt", good + b"\0" * (2 << 20)), None, {"max_mb": 1}, "big.pt is 2 MB; the limit is 1 MB"),
        (("rgb.pt", good), None, {"normalisation": "custom", "mean": "0.5, x"}, "normalisation was refused"),
    ]
    for file, names, settings, message in cases:
        upload = ModelUpload(selector=ModelSelector(), input_size=32, **settings)
        upload.set_file(*file)
        if names:
            upload.set_names(*names)
            assert upload.names_status.startswith(f"{names[0]}: ")
        upload.use()
        upload.wait()
        assert upload.model == "" and upload.selector.model == "efficientnet_lite0", file[0]
        assert re.search(message, upload.error), (message, upload.error)


def test_a_bad_names_file_is_refused_when_it_arrives(tmp_path):
    upload = ModelUpload(selector=ModelSelector())
    upload.set_names("names.json", '{"0": "a", "5": "b"}')
    assert upload.names_status == "" and "names.json: the class indices must be 0 to 1" in upload.error
