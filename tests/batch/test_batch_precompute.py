"""Precompute in this process and through the CLI: resumable, past bad images, reported."""

from __future__ import annotations

import argparse

import pytest

from xai_panel.batch import Precompute, precompute
from xai_panel.cli_store import add_precompute_parser, add_store_parser, main_precompute, parse_settings
from xai_panel.data import image_hash, load_image
from xai_panel.store import ExplainRequest, ExplanationStore

from .batch_helpers import FAST, FAST_ARGS


def _bad_images(folder):
    (folder / "n01443537_not_really.JPEG").write_bytes(b"this is text, not a photo")
    good = sorted(folder.glob("*.JPEG"))[0].read_bytes()
    (folder / "n01484850_truncated.JPEG").write_bytes(good[: len(good) // 3])


def test_precompute_stores_every_image_and_resumes(tmp_path, images):
    store = ExplanationStore(tmp_path / "s.sqlite")
    events = []
    report = precompute(tmp_path / "images", store=store, progress=events.append, **FAST)
    assert (report.done, report.skipped, report.failed) == (3, 0, [])
    assert [e.status for e in events] == ["done"] * 3
    assert store.count(method="lime") == 3 and store.info()["files"] == 3
    request = ExplainRequest.create(report.model_id, **FAST)
    for path in images:
        h = image_hash(load_image(path))
        got = store.get(h, request)
        assert got is not None and len(got.lime) == 5
    summaries = store.summaries()
    assert sorted(s.image_id for s in summaries) == sorted(p.name for p in images)
    if all(p.name.startswith("n0") for p in images):  # ImageNet names: true labels known
        assert all(s.label is not None and s.correct == (s.label == s.predicted) for s in summaries)

    again = precompute(tmp_path / "images", store=store, progress=False, **FAST)
    assert (again.done, again.skipped) == (0, 3)
    assert store.count() == 3

    # A new method setting is new work; the old rows stay.
    other = precompute(tmp_path / "images", store=store, progress=False, limit=1,
                       **{**FAST, "settings": {"lime": {"num_samples": 61}}})
    assert other.done == 1 and store.count() == 4


def test_a_rewritten_file_is_explained_again_not_served_from_the_memo(tmp_path, images, classifier):
    from PIL import Image

    store = ExplanationStore(tmp_path / "s.sqlite")
    first = precompute(tmp_path / "images", store=store, progress=False, **FAST)
    assert first.done == 3
    target = images[0]
    old_hash = image_hash(load_image(target))
    assert store.file_hashes([target]) == {str(target): old_hash}
    # Another photo, mirrored, under the same name: new content, size and mtime.
    Image.fromarray(load_image(images[1])[:, ::-1]).save(target, "JPEG", quality=90)
    new_image = load_image(target)
    new_hash = image_hash(new_image)
    assert new_hash != old_hash

    events = []
    again = precompute(tmp_path / "images", store=store, progress=events.append, **FAST)
    assert (again.done, again.skipped, again.failed) == (1, 2, [])
    assert [(e.image_id, e.image_hash) for e in events if e.status == "done"] == [(target.name, new_hash)]
    assert store.file_hashes([target]) == {str(target): new_hash}
    request = ExplainRequest.create(again.model_id, **FAST)
    got = store.get(new_hash, request)
    assert [c.index for c in got.top] == [c.index for c in classifier.top_k(new_image, 5)]
    assert store.get(old_hash, request) is not None and store.count() == 4  # the old image's rows stay
    summary = {s.image_hash: s.image_id for s in store.summaries()}
    assert summary[new_hash] == target.name


def test_bad_images_are_reported_and_the_rest_is_done(tmp_path, images):
    _bad_images(tmp_path / "images")
    store = ExplanationStore(tmp_path / "s.sqlite")
    report = precompute(tmp_path / "images", store=store, progress=False, **FAST)
    assert report.done == 3 and not report.ok
    failed = {e.image_id: e.error for e in report.failed}
    assert set(failed) == {"n01443537_not_really.JPEG", "n01484850_truncated.JPEG"}
    assert "ImageError" in failed["n01443537_not_really.JPEG"]
    text = report.format()
    assert "3 computed" in text and "2 failed" in text and "n01484850_truncated.JPEG" in text
    assert store.count() == 3


def test_the_cli_runs_reports_and_exits_nonzero_on_failures(tmp_path, images, capsys):
    _bad_images(tmp_path / "images")
    store = tmp_path / "s.sqlite"
    code = main_precompute([str(tmp_path / "images"), "--store", str(store), *FAST_ARGS])
    out = capsys.readouterr().out
    assert code == 1 and "3 computed" in out and "n01443537_not_really.JPEG" in out

    parser = argparse.ArgumentParser(prog="xai-panel")
    sub = parser.add_subparsers(dest="command", required=True)
    add_precompute_parser(sub)
    add_store_parser(sub)
    args = parser.parse_args(["precompute", str(tmp_path / "images"), "--store", str(store), "--limit", "1", *FAST_ARGS])
    assert args.func(args) == 0
    assert "0 computed, 1 already stored" in capsys.readouterr().out

    args = parser.parse_args(["store", "info", "--store", str(store)])
    assert args.func(args) == 0
    assert "lime" in capsys.readouterr().out
    args = parser.parse_args(["store", "export", images[0].name, "--store", str(store), "--out", str(tmp_path / "x")])
    assert args.func(args) == 0
    folder = capsys.readouterr().out.strip()
    assert (tmp_path / "x").is_dir() and folder.startswith(str(tmp_path / "x"))
    args = parser.parse_args(["store", "prune", "--all", "--store", str(store)])
    assert args.func(args) == 0 and "pruned 3" in capsys.readouterr().out


def test_cli_errors_are_messages(tmp_path, capsys):
    (tmp_path / "junk.sqlite").write_bytes(b"garbage" * 100)
    assert main_precompute(["demo", "--store", str(tmp_path / "junk.sqlite"), *FAST_ARGS]) == 2
    assert "is not an xai-panel store" in capsys.readouterr().err
    assert main_precompute([str(tmp_path / "missing"), "--store", str(tmp_path / "s.sqlite"), *FAST_ARGS]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main_precompute(["demo", "--store", str(tmp_path / "s.sqlite"), "--set", "lime.samples=3"]) == 2
    assert "no setting" in capsys.readouterr().err


def test_settings_parse_from_the_command_line():
    settings, seg = parse_settings(["lime.num_samples=300", "shap.estimator=kernel", "segmentation.kernel_size=6",
                                    "anchors.max_anchor_size=null"])
    assert settings == {"lime": {"num_samples": 300}, "shap": {"estimator": "kernel"}, "anchors": {"max_anchor_size": None}}
    assert seg == {"kernel_size": 6}
    with pytest.raises(ValueError, match="METHOD.PARAM=VALUE"):
        parse_settings(["num_samples=3"])


def test_arguments_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="at most one"):
        Precompute("demo", store=tmp_path / "s.sqlite", workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="workers"):
        Precompute("demo", store=tmp_path / "s.sqlite", workers=0)
    with pytest.raises(ValueError):
        Precompute("demo", store=tmp_path / "s.sqlite", methods=("deeplift",))


def test_precompute_stores_the_gradient_methods(tmp_path, images, classifier):
    """``--methods gradcam,integrated_gradients,smoothgrad``: stored with their pixel maps and
    read back equal to a fresh explanation (the forward passes on ONNX Runtime, the gradients
    from the model's torch module)."""
    import numpy as np

    import xai_panel as xp

    store = tmp_path / "s.sqlite"
    methods = "gradcam,integrated_gradients,smoothgrad"
    code = main_precompute([str(tmp_path / "images"), "--store", str(store), "--methods", methods, "--top-k", "1",
                            "--set", "integrated_gradients.steps=2", "--set", "smoothgrad.samples=2",
                            "--segmentation", "grid", "--limit", "1", "--no-progress"])
    assert code == 0
    opened = ExplanationStore(store)
    assert all(opened.count(method=m) == 1 for m in methods.split(","))
    settings = {"integrated_gradients": {"steps": 2}, "smoothgrad": {"samples": 2}}
    request = ExplainRequest.create(classifier.model_id, methods.split(","), top_k=1, segmentation="grid",
                                    settings=settings)
    image = load_image(sorted(images)[0])
    got = opened.get(image_hash(image), request)
    fresh = xp.explain(image, classifier, methods=methods.split(","), top_k=1, segmentation="grid", settings=settings)
    for m in methods.split(","):
        for c in fresh.labels:
            np.testing.assert_allclose(got.results[m][c].heatmap, fresh.results[m][c].heatmap, rtol=1e-4, atol=1e-6)
        assert got.costs[m].backward_passes == fresh.costs[m].backward_passes > 0
