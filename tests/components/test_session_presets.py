"""The session over a store that ``xai-panel precompute`` filled: its preset's results are
found at once, another preset's are shown (and said to be) until refined."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest
from PIL import Image

from xai_panel.cli import main
from xai_panel.components import ExplainerSettings, ExplanationSession, MemoryCache
from xai_panel.components.widgets.settings import fast_settings
from xai_panel.data import open_dataset
from xai_panel.store import ExplanationStore


@pytest.fixture(scope="module")
def precomputed(tmp_path_factory, classifier, photos):
    """A real photo explained by the real CLI: with its defaults (the interactive preset;
    Grad-CAM and LIME, top 2), and with the thorough preset (Grad-CAM only, seed 1)."""
    base = tmp_path_factory.mktemp("presets")
    (base / "data" / "tabby").mkdir(parents=True)
    Image.fromarray(photos["chelsea"]).save(base / "data" / "tabby" / "chelsea.png")
    store = base / "store.sqlite"
    common = [str(base / "data"), "--store", str(store), "--top-k", "2", "--limit", "1", "--no-progress"]
    assert main(["precompute", *common, "--methods", "gradcam,lime"]) == 0
    assert main(["precompute", *common, "--methods", "gradcam", "--preset", "thorough", "--seed", "1"]) == 0
    return base / "data", store


def session_on(store_path, methods, **settings) -> ExplanationSession:
    values = {**fast_settings(), "methods": methods, **settings}  # the dashboards' settings
    return ExplanationSession(settings=ExplainerSettings.from_dict(values), cache=MemoryCache(), metrics=[], top_k=2,
                              store=ExplanationStore(store_path))


def status(session) -> str:
    markdown = next(p for p in pn.panel(session).select(pn.pane.Markdown))
    return markdown.object


def refine_button(session) -> pn.widgets.Button:
    return next(b for b in pn.panel(session).select(pn.widgets.Button) if b.name == "Refine with the current settings")


def test_a_precomputed_image_is_served_from_the_store_at_once(precomputed, classifier, capsys):
    data, store = precomputed
    record = next(iter(open_dataset(data)))
    session = session_on(store, ["gradcam", "lime"])
    passes = classifier.forward_passes
    session.source = record
    session.wait()
    assert session.status == "done" and session.from_store and session.from_cache
    assert session.shown_preset == "interactive" and not session.refinable
    assert set(session.explanation.methods) == {"gradcam", "lime"}
    assert session.explanation.settings["lime"]["num_samples"] == 400  # the preset's budget, as stored
    assert classifier.forward_passes == passes  # nothing computed
    assert "from the store (interactive preset)" in status(session)
    assert not refine_button(session).visible
    with capsys.disabled():
        print(f"\nclick to every pane from the store (session): {session.timings['done'] * 1000:.0f} ms")


def test_precompute_stores_the_dashboards_trust_metrics_so_a_click_measures_nothing(precomputed, classifier):
    """precompute's defaults measure what the dashboards measure: the trust pane of a
    precomputed image comes from the store too, and the click spends no model pass on it."""
    data, store = precomputed
    record = next(iter(open_dataset(data)))
    values = {**fast_settings(), "methods": ["gradcam", "lime"]}
    session = ExplanationSession(settings=ExplainerSettings.from_dict(values), cache=MemoryCache(), top_k=2,
                                 store=ExplanationStore(store))  # the dashboards' metrics (the default)
    assert tuple(session.metrics) == ("faithfulness", "agreement")
    passes = classifier.forward_passes
    session.source = record
    session.wait()
    assert session.status == "done" and session.from_store and not session.measuring
    assert classifier.forward_passes == passes  # neither explained nor measured
    assert set(session.explanation.faithfulness) == {"gradcam", "lime"}
    assert session.explanation.metric_settings["faithfulness"]["steps"] == 10
    assert session.explanation.agreement  # the agreement matrix, stored with them


def test_another_presets_result_is_shown_and_refined_with_the_current_settings(precomputed, classifier):
    data, store = precomputed
    record = next(iter(open_dataset(data)))
    # Seed 1 with the interactive budget was never stored; the thorough preset's Grad-CAM was.
    session = session_on(store, ["gradcam"], seed=1)
    passes = classifier.forward_passes
    session.source = record
    session.wait()
    assert session.status == "done" and session.from_store and session.refinable
    assert session.shown_preset == "thorough" and session.settings.preset == "interactive"
    assert session.explanation.settings["segmentation"] == "quickshift" and session.explanation.seed == 1
    assert classifier.forward_passes == passes
    assert "from the store (thorough preset)" in status(session)
    button = refine_button(session)
    assert button.visible
    button.clicks += 1  # "Refine with the current settings"
    session.wait()
    assert session.status == "done" and not session.from_store and not session.refinable
    assert session.shown_preset == "interactive" and session.explanation.settings["segmentation"] == "slic"
    assert classifier.forward_passes > passes and not button.visible
    assert "from the store" not in status(session)
    # The refined result was kept: a new session (a restarted server) finds it in the store.
    again = session_on(store, ["gradcam"], seed=1)
    again.source = record
    again.wait()
    assert again.from_store and again.shown_preset == "interactive" and not again.refinable
    np.testing.assert_array_equal(again.explanation.segmentation.labels, session.explanation.segmentation.labels)


def test_what_the_stored_preset_lacks_is_computed_with_its_settings(precomputed, classifier):
    data, store = precomputed
    record = next(iter(open_dataset(data)))
    session = session_on(store, ["gradcam", "occlusion"], seed=1)  # occlusion was never stored
    shown = []
    session.param.watch(lambda e: shown.append(e.new.methods if e.new is not None else None), "explanation")
    session.source = record
    session.wait()
    assert shown[0] == ("gradcam",)  # the stored part first, at once
    assert session.status == "done" and session.shown_preset == "thorough" and session.refinable
    assert set(session.explanation.methods) == {"gradcam", "occlusion"}
    assert session.explanation.settings["segmentation"] == "quickshift"  # on the stored superpixels
    labels = session.explanation.segmentation.labels
    assert session.explanation.occlusion[session.top[0].index].values.shape == (int(labels.max()) + 1,)
    stored = {(r.method, r.config["segmentation"], r.config["seed"]) for r in ExplanationStore(store).results()}
    assert ("occlusion", "quickshift", 1) in stored  # kept under the thorough preset's key


def test_the_status_line_says_where_a_result_came_from():
    text = ExplanationSession._status_text
    timings = {"done": 0.012}
    assert text("done", "", "a.jpg", "", True, timings, True, "thorough", True) == \
        "**a.jpg** explained in 0.01 s, from the store (thorough preset)"
    assert text("done", "", "a.jpg", "", True, timings, True, "custom", False) == \
        "**a.jpg** explained in 0.01 s, from the store"
    assert text("done", "", "a.jpg", "", True, timings, False, "interactive", False) == \
        "**a.jpg** explained in 0.01 s (from cache)"
    assert text("done", "", "a.jpg", "", False, timings, False, "interactive", False) == "**a.jpg** explained in 0.01 s"


def test_prefetch_reads_a_pages_stored_explanations_so_a_click_on_one_is_a_memory_hit(precomputed, classifier, photos,
                                                                                     tmp_path):
    """The gallery prefetches its page: stored explanations are read and drawn in the background,
    and the click then shows that very object (no decoding at the click), still said to come from
    the store; images the store lacks, and vanished files, are skipped without being read."""
    data, store = precomputed
    record = next(iter(open_dataset(data)))
    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.png")  # never precomputed
    Image.fromarray(photos["coffee"][::2, ::2]).save(tmp_path / "gone.png")
    others = list(open_dataset(tmp_path))
    assert len(others) == 2
    (tmp_path / "gone.png").unlink()  # listed, then deleted before the prefetch
    session = session_on(store, ["gradcam", "lime"])
    drawn = []
    session.add_prerender(drawn.append)
    passes = classifier.forward_passes
    session.prefetch([*others, record])
    session.wait_prefetched()
    assert len(drawn) == 1 and len(session.cache) == 1  # the stored image only
    assert set(drawn[0].methods) == {"gradcam", "lime"}
    session.source = record
    session.wait()
    assert session.explanation is drawn[0] and session.from_store and session.status == "done"
    assert "from the store (interactive preset)" in status(session)
    assert classifier.forward_passes == passes  # nothing computed, by the prefetch or the click
    no_store = ExplanationSession(settings=session.settings, cache=MemoryCache(), metrics=[], top_k=2)
    no_store.prefetch([record])  # nothing to read: no job
    assert no_store.wait_prefetched() is no_store and len(no_store.cache) == 0


def test_a_page_the_store_never_saw_is_prefetched_without_the_model(precomputed, photos, tmp_path, monkeypatch):
    """The prefetch needs the model only for files the store knows: a page of others is skipped
    at once, even while the model is still loading (a first install's ONNX export; the server's
    start-up waits for the rehearsed page's prefetch)."""
    import xai_panel.components.state.session as session_module

    _data, store = precomputed
    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.png")
    asked = []
    monkeypatch.setattr(session_module, "load_model", lambda model: asked.append(model) or 1 / 0)
    session = session_on(store, ["gradcam", "lime"])
    session.prefetch(list(open_dataset(tmp_path)))
    assert session.wait_prefetched(timeout=10) is session
    assert asked == [] and len(session.cache) == 0


@pytest.fixture(scope="module")
def gradcam_stored(tmp_path_factory, classifier, photos):
    """A real photo's Grad-CAM, stored by the real CLI at the gallery's top-k (its default)."""
    base = tmp_path_factory.mktemp("gradcam")
    (base / "data" / "tabby").mkdir(parents=True)
    Image.fromarray(photos["chelsea"]).save(base / "data" / "tabby" / "chelsea.png")
    store = base / "store.sqlite"
    assert main(["precompute", str(base / "data"), "--store", str(store), "--methods", "gradcam", "--no-progress"]) == 0
    return base / "data", store


def test_the_server_listens_once_the_rehearsed_gallery_has_read_its_stored_page(gradcam_stored, monkeypatch, caplog):
    """``rehearse_pages`` returns once the throwaway gallery's thumbnails and prefetch are done, so
    the first visitor's click finds its stored explanation in the process's cache; a job that
    outlasts ``wait`` is left running and logged."""
    import logging
    import threading
    import time

    from xai_panel.apps import frame
    from xai_panel.apps.frame import rehearse_pages
    from xai_panel.apps.gallery import gallery_app
    from xai_panel.runtime import cache as caches
    from xai_panel.runtime.jobs import JobRunner, unfinished_jobs

    data, store = gradcam_stored
    monkeypatch.setenv("XAI_PANEL_DATA", str(data))
    monkeypatch.setenv("XAI_PANEL_STORE", str(store))
    monkeypatch.setenv("XAI_PANEL_SETTINGS", '{"methods": ["gradcam"]}')  # what the store holds
    monkeypatch.setattr(frame, "_store", [])  # opened once per process: this test's
    cache = MemoryCache()
    monkeypatch.setattr(caches, "_default", cache)  # the process's cache, empty for this test
    with caplog.at_level(logging.INFO, logger="xai_panel"):
        rehearse_pages(gallery_app)
    assert not [job for job in unfinished_jobs() if job.name in ("prefetch", "thumbnails")]
    assert len(cache) == 1 and cache.hits == 0  # the stored photo, read before the return

    # The wait itself: a page's prefetch that takes 0.5 s is waited for, one that outlasts
    # ``wait`` is left running and logged.
    release = threading.Event()
    runner = JobRunner("prefetch")

    def slow_page():
        runner.start(lambda job: release.wait(30), interactive=False)
        return pn.template.FastListTemplate(main=[pn.pane.Markdown("a page")])

    threading.Timer(0.5, release.set).start()
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="xai_panel"):
        rehearse_pages(slow_page)
    assert time.perf_counter() - t0 >= 0.5 and runner._job.future.done()
    assert "the rehearsed pages' background work (prefetch) done in" in caplog.text
    release.clear()
    with caplog.at_level(logging.INFO, logger="xai_panel"):
        rehearse_pages(slow_page, wait=0.3)
    assert "serving before the rehearsed pages' prefetch finished (waited 0.3 s)" in caplog.text
    assert not runner._job.future.done()  # left running
    release.set()
    runner.wait(10)
