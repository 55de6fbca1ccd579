"""ExplanationSession: top classes at once, methods progressively, cancellation, cache."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_models import tiny_onnx
from xai_panel.components import ExplainerSettings, ExplanationSession, MemoryCache
from xai_panel.methods import ShapExplainer

from .conftest import QUICK


def quick_session(**params) -> ExplanationSession:
    """A session at the quick budgets, without the trust metrics (tests/components/test_trust_pane.py has them)."""
    settings = ExplainerSettings(settings=QUICK, methods=["lime", "shap"], segmentation="slic")
    params.setdefault("metrics", [])
    return ExplanationSession(settings=settings, cache=MemoryCache(), **params)


def record(session, names=("status", "top", "explanation", "pending", "image_name")):
    events = []
    session.param.watch(lambda *es: events.extend((e.name, e.new) for e in es), list(names))
    return events


def test_top_classes_come_first_then_each_method(photos, classifier):
    session = quick_session()
    events = record(session)
    session.source = photos["chelsea"]
    session.wait()
    assert session.status == "done" and session.error == "" and session.pending == []
    expected = classifier.top_k(photos["chelsea"], 5)
    assert [c.index for c in session.top] == [c.index for c in expected]
    # The top classes are published before any explanation, then LIME, then SHAP.
    tops = [i for i, (name, value) in enumerate(events) if name == "top" and value]
    methods_seen = [value.methods for name, value in events if name == "explanation" and value is not None]
    first_with_lime = next(i for i, (n, v) in enumerate(events) if n == "explanation" and v is not None and v.methods)
    assert tops and tops[0] < first_with_lime
    assert ("lime",) in methods_seen and methods_seen[-1] == ("lime", "shap")
    assert methods_seen.index(("lime",)) < methods_seen.index(("lime", "shap"))
    assert session.explanation.labels == tuple(c.index for c in session.top)
    assert set(session.timings) >= {"top", "lime", "shap", "done"}
    assert session.timings["top"] <= session.timings["lime"] <= session.timings["done"]


def test_outputs_are_read_only(lime_shap):
    session = quick_session()
    with pytest.raises(TypeError, match="Constant"):
        session.explanation = lime_shap
    with pytest.raises(TypeError, match="Constant"):
        session.top = list(lime_shap.top)
    with pytest.raises(TypeError, match="Constant"):
        session.status = "done"


def test_revisiting_an_image_is_served_from_the_cache(photos, classifier):
    session = quick_session()
    session.source = photos["coffee"]
    first = session.wait().explanation
    assert not session.from_cache
    session.source = photos["rocket"]
    session.wait()
    from xai_panel.runtime.jobs import classifier as session_model

    assert session_model(session.model) is classifier  # the process's one model: its passes are the session's
    passes = classifier.forward_passes
    session.source = photos["coffee"]
    session.wait()
    assert session.from_cache and session.explanation is first
    assert classifier.forward_passes == passes  # nothing was computed again, not even the top classes
    # Another seed is another explanation: not from the cache.
    session.settings.seed = 1
    session.wait()
    assert not session.from_cache and session.explanation.seed == 1


def test_a_new_image_cancels_the_previous_one(photos, classifier):
    session = quick_session()
    session.settings.lime.num_samples = 2000  # long enough to be interrupted
    events = record(session, ("image_name", "explanation"))
    session.param.update(source=photos["chelsea"], source_name="cat")
    session.param.update(source=photos["coffee"], source_name="coffee")
    # Only the cat's budget needs to be long: the coffee's explanation restarts on a short one
    # (a change of settings cancels the running one too).
    session.settings.lime.num_samples = 100
    session.wait()
    assert session.image_name == "coffee" and session.status == "done"
    assert session.explanation.lime is not None and session.explanation.settings["lime"]["num_samples"] == 100
    view = classifier.prepare(photos["coffee"])
    assert np.array_equal(session.explanation.image, view)
    # Nothing of the cat arrives after the coffee started showing.
    names = [v for n, v in events if n == "image_name"]
    assert names[-1] == "coffee" and "cat" not in names[names.index("coffee"):]
    explained = [v for n, v in events if n == "explanation" and v is not None]
    assert all(np.array_equal(e.image, view) for e in explained[-2:])


def test_a_bad_image_is_reported_and_the_session_keeps_working(photos):
    session = quick_session()
    session.source = b"this is not an image"
    session.wait()
    assert session.status == "error" and "image" in session.error.lower()
    assert session.top == [] and session.explanation is None
    session.source = photos["chelsea"]
    session.wait()
    assert session.status == "done" and session.error == "" and session.explanation is not None


def test_an_unknown_model_is_reported(photos):
    session = quick_session(model="no_such_model_anywhere")
    session.source = photos["chelsea"]
    session.wait()
    assert session.status == "error" and "no_such_model_anywhere" in session.error


class FailingShap(ShapExplainer):
    """A custom explainer that always fails: the UI must show it and keep the others."""

    def compute(self, engine, labels, *, seed, pool, top_k):
        raise RuntimeError("shap exploded")


def test_a_failing_method_is_reported_per_method_and_the_others_stay(photos):
    settings = ExplainerSettings(settings=QUICK, methods=["lime", "shap"], segmentation="slic", shap=FailingShap())
    assert "explainer_classes" in settings.request  # custom classes never share cache entries
    session = ExplanationSession(settings=settings, cache=MemoryCache(), source=photos["chelsea"], metrics=[])
    session.wait()
    assert session.status == "done"
    assert session.method_errors == {"shap": "RuntimeError: shap exploded"}
    assert session.explanation.methods == ("lime",)


def test_clearing_the_source_resets_the_outputs(photos):
    session = quick_session(source=photos["chelsea"])
    session.wait()
    session.source = None
    assert session.status == "idle" and session.explanation is None and session.top == [] and session.image is None


def test_a_session_on_the_store_keeps_results_and_reads_them_back(folder, tmp_path, classifier):
    from xai_panel.data import open_dataset
    from xai_panel.store import ExplanationStore

    store = ExplanationStore(tmp_path / "store.sqlite")
    record = next(r for r in open_dataset(folder) if r.id.endswith("coffee/c.png"))
    # metrics=[]: this checks the explanations' store; the trust metrics' is tests/components/test_trust_pane.py's
    first = quick_session(store=store, metrics=[])
    first.source = record
    first.wait()
    assert first.status == "done" and not first.from_cache
    rows = store.results()
    assert {r.method for r in rows} == {"lime", "shap"} and store.summaries()[0].image_id == record.id
    # Another process (a fresh memory cache) after a restart: the store answers, the model is not run.
    passes = classifier.forward_passes
    second = quick_session(store=store, metrics=[])
    second.source = record
    second.wait()
    assert second.status == "done" and second.from_cache and classifier.forward_passes == passes
    label = second.top[0].index
    assert np.array_equal(second.explanation.lime[label].weights, first.explanation.lime[label].weights)
    assert [r.created_at for r in store.results()] == [r.created_at for r in rows]  # nothing rewritten
    # Other settings are another result: computed, then kept beside the first.
    second.settings.seed = 1
    second.wait()
    assert not second.from_cache and len(store.results()) == 4
    store.close()


def test_a_store_that_fails_loses_the_copy_not_the_result(folder, tmp_path, caplog):
    from xai_panel.data import open_dataset
    from xai_panel.store import ExplanationStore

    path = tmp_path / "store.sqlite"
    store = ExplanationStore(path)
    store.close()
    path.write_bytes(b"\xff\xd8 overwritten by something else" * 100)  # every read and write now fails
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    session = quick_session(store=store)
    session.source = next(r for r in open_dataset(folder) if r.id.endswith("coffee/c.png"))
    session.wait()
    assert session.status == "done" and session.error == "" and session.explanation.methods == ("lime", "shap")
    assert "explanation store failed" in caplog.text


def test_gradcam_shows_from_the_fast_lane_while_the_compute_lane_is_busy(photos, classifier):
    """A quick method (Grad-CAM) is computed with the top classes, not queued behind another
    session's explanation in the compute lane, and is not computed again there."""
    from .conftest import wait_until

    busy = quick_session()
    busy.settings.lime.num_samples = 3000  # holds the compute lane for a while
    busy.source = photos["coffee"]
    assert wait_until(lambda: busy.status == "explaining" and busy.running != "", 60)
    settings = ExplainerSettings(settings={"lime": {"num_samples": 300}}, methods=["gradcam", "lime"],
                                 segmentation="slic")
    session = ExplanationSession(settings=settings, cache=MemoryCache(), metrics=[])
    events = record(session, ("top", "explanation"))
    try:
        session.source = photos["chelsea"]
        assert wait_until(lambda: session.explanation is not None and "gradcam" in session.explanation.methods
                          and session.explanation.segmentation.algorithm == "slic", 60)
        early = session.explanation
        assert early.methods == ("gradcam",) and busy.status == "explaining"
        assert session.pending == ["lime"]
        assert [c.index for c in early.top] == [c.index for c in session.top]
        gradcam = early.results["gradcam"][early.top[0].index]
        assert gradcam.heatmap.shape == early.image.shape[:2] and gradcam.values.shape == (early.segmentation.n_segments,)
        tops = [i for i, (n, v) in enumerate(events) if n == "top" and v]
        first = next(i for i, (n, v) in enumerate(events) if n == "explanation" and v is not None)
        assert tops[0] < first  # the top classes still go out first
    finally:
        busy.cancel()
    session.wait()
    assert session.status == "done" and set(session.explanation.methods) == {"gradcam", "lime"}
    # The compute lane kept the fast lane's Grad-CAM: the same maps, not a second computation.
    final = session.explanation.results["gradcam"]
    assert all(final[c].heatmap is early.results["gradcam"][c].heatmap for c in final)
    assert session.explanation.costs["gradcam"] == early.costs["gradcam"]
    assert session.explanation.segmentation is early.segmentation  # the fast lane's superpixels, not segmented again
    assert session.timings["top"] <= session.timings["gradcam"] <= session.timings["lime"]
    # Every partial explanation after the early one kept Grad-CAM (the pane never blanks).
    later = [v for n, v in events if n == "explanation" and v is not None]
    assert all("gradcam" in e.methods for e in later)


def test_gradcam_maps_go_out_before_the_image_is_segmented(photos, classifier):
    """The first explanation a click publishes is Grad-CAM's pixel maps on a one-superpixel
    placeholder (no segmentation needed); the same maps with their superpixel means follow,
    before any perturbation method. Ordering from the session's events, not from timing."""
    from xai_panel.components.state.session import PLACEHOLDER_SEGMENTATION
    from xai_panel.methods._gradients import superpixel_means

    settings = ExplainerSettings(settings={"lime": {"num_samples": 60}}, methods=["gradcam", "lime"],
                                 segmentation="slic")
    session = ExplanationSession(settings=settings, cache=MemoryCache(), metrics=[], preview=0)
    events = record(session, ("top", "explanation"))
    session.source = photos["coffee"]
    session.wait()
    assert session.status == "done", session.error
    shown = [v for n, v in events if n == "explanation" and v is not None]
    first, second = shown[0], shown[1]
    assert first.methods == ("gradcam",) and first.segmentation.algorithm == PLACEHOLDER_SEGMENTATION
    assert first.segmentation.n_segments == 1
    assert second.methods == ("gradcam",) and second.segmentation.algorithm == "slic"
    assert second.segmentation.n_segments > 10
    assert second.settings["segmentation"] == "slic"
    for c, r in second.results["gradcam"].items():
        assert r.heatmap is first.results["gradcam"][c].heatmap  # the maps are not computed twice
        np.testing.assert_allclose(r.values, superpixel_means(second.segmentation.labels, r.heatmap))
    assert all(e.segmentation is second.segmentation for e in shown[2:])  # LIME ran on the same superpixels
    assert "lime" in shown[-1].methods
    # Stored and cached with the real superpixels: a revisit shows the finished result.
    again = ExplanationSession(settings=settings, cache=session.cache, metrics=[])
    again.source = photos["coffee"]
    again.wait()
    assert again.from_cache and again.explanation.segmentation.algorithm == "slic"


def test_the_superpixel_view_shows_the_pixel_map_until_the_image_is_segmented(photos, classifier):
    """A Grad-CAM pane set to its superpixel view draws the pixel map of the placeholder
    explanation (not one flat colour), and the superpixel means once they come."""
    from dataclasses import replace

    from xai_panel.components import GradientPane
    from xai_panel.components.state.session import PLACEHOLDER_SEGMENTATION
    from xai_panel.engine.pipeline import explain
    from xai_panel.engine.results import Segmentation

    real = explain(photos["coffee"], classifier, methods=("gradcam",), top_k=2, segmentation="slic")
    placeholder = replace(real, segmentation=Segmentation(np.zeros_like(real.segmentation.labels),
                                                          PLACEHOLDER_SEGMENTATION))
    pane = GradientPane(method="gradcam", explanation=placeholder, view="superpixels")
    label = real.top[0].index
    heatmap = real.results["gradcam"][label].heatmap
    np.testing.assert_array_equal(pane.map_of(placeholder, real.results["gradcam"][label]), heatmap)
    painted = pane.map_of(real, real.results["gradcam"][label])
    assert len(np.unique(painted)) == len(np.unique(real.results["gradcam"][label].values)) > 10


def test_a_model_without_gradients_leaves_gradcam_to_the_compute_lane_which_says_why(photos, tmp_path):
    """An ONNX file has no gradients: the fast lane skips Grad-CAM, the compute lane reports the
    refusal (the pane's note) and LIME still runs."""

    path = tiny_onnx(tmp_path / "tiny.onnx")
    settings = ExplainerSettings(settings={"lime": {"num_samples": 60}}, methods=["gradcam", "lime"],
                                 segmentation="slic")
    session = ExplanationSession(settings=settings, cache=MemoryCache(), metrics=[], model=str(path))
    session.source = photos["chelsea"]
    session.wait()
    assert session.status == "done" and session.error == ""
    assert session.explanation.methods == ("lime",)
    assert "needs a torch model" in session.method_errors["gradcam"]
    assert session.explanation.refused == ("gradcam",)
