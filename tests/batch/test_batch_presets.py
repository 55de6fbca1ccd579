"""``xai-panel precompute --preset``: what is stored is a preset's, the dashboards' by default."""

from __future__ import annotations

from tests.tiny_models import tiny_onnx
from xai_panel.cli import main
from xai_panel.data import image_hash, load_image
from xai_panel.engine.request import ExplainRequest
from xai_panel.presets import preset
from xai_panel.store import ExplanationStore


def _configs(store_path) -> dict[str, dict]:
    return {r.method: r.config for r in ExplanationStore(store_path).results()}


def test_precompute_defaults_to_the_interactive_preset_and_set_applies_over_it(tmp_path, images, classifier):
    store = tmp_path / "s.sqlite"
    code = main(["precompute", str(tmp_path / "images"), "--store", str(store), "--methods", "lime", "--top-k", "1",
                 "--limit", "1", "--set", "lime.num_samples=40", "--no-progress"])
    assert code == 0
    config = _configs(store)["lime"]
    assert config["segmentation"] == "slic" and config["segmentation_params"] == preset(
        "interactive").resolved_segmentation_params()
    assert config["settings"]["num_samples"] == 40  # --set over the preset
    # The dashboards' request for it (interactive superpixels, that LIME budget) finds it.
    request = ExplainRequest.create(classifier.model_id, ["lime"], top_k=1, segmentation="slic",
                                    settings={"lime": {"num_samples": 40}})
    image = load_image(sorted(images)[0])
    assert ExplanationStore(store).missing(image_hash(image), request) == ()


def test_precompute_preset_thorough_stores_the_librarys_defaults(tmp_path, images, capsys):
    store = tmp_path / "s.sqlite"
    code = main(["precompute", str(tmp_path / "images"), "--store", str(store), "--preset", "thorough",
                 "--methods", "gradcam", "--top-k", "1", "--limit", "1", "--no-progress"])
    assert code == 0 and "1 computed" in capsys.readouterr().out
    config = _configs(store)["gradcam"]
    thorough = preset("thorough")
    assert config["segmentation"] == "quickshift"
    assert config["segmentation_params"] == thorough.resolved_segmentation_params()
    assert config["settings"] == thorough.method_settings("gradcam")
    # The same run with the default preset is another result (other superpixels), not "already stored".
    code = main(["precompute", str(tmp_path / "images"), "--store", str(store), "--methods", "gradcam",
                 "--top-k", "1", "--limit", "1", "--no-progress"])
    assert code == 0 and "1 computed (1 measured), 0 already stored" in capsys.readouterr().out  # with the default metrics
    assert sorted(r.config["segmentation"] for r in ExplanationStore(store).results()) == ["quickshift", "slic"]


def test_precompute_refuses_an_unknown_preset_before_any_work(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    code = main(["precompute", "demo", "--store", str(store), "--preset", "bogus", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "xai-panel precompute: error: unknown preset 'bogus'; the presets are interactive, thorough" in err
    assert not store.exists()  # refused before the store was opened


def test_a_presets_method_the_model_refuses_is_left_out_not_failed(tmp_path, images, capsys):
    """The dashboards' preset ticks Grad-CAM; an ONNX file has no gradients. Precompute with the
    defaults stores the other methods and says what it left out; named with --methods, it fails."""

    model = tiny_onnx(tmp_path / "tiny.onnx")
    store = tmp_path / "s.sqlite"
    common = [str(tmp_path / "images"), "--store", str(store), "--model", str(model), "--top-k", "1", "--limit", "1",
              "--set", "lime.num_samples=30", "--set", "anchors.max_anchor_size=1", "--set", "shap.nsamples=40",
              "--no-progress"]
    assert main(["precompute", *common]) == 0
    out = capsys.readouterr().out
    assert "1 computed" in out and "0 failed" in out
    assert "left out (the preset's, refused by the model): gradcam:" in out and "needs a torch model" in out
    assert set(_configs(store)) == {"lime", "anchors", "shap"}
    assert main(["precompute", *common]) == 0  # and it is complete: a rerun has nothing to do
    assert "0 computed, 1 already stored" in capsys.readouterr().out
    assert main(["precompute", *common, "--methods", "gradcam,lime"]) == 1  # asked for by name: a failure
    assert "gradcam failed" in capsys.readouterr().out
