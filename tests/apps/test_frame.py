"""What the dashboards share: configuration from the environment, the URL state, serve's command line."""

from __future__ import annotations

import panel as pn
import pytest

from xai_panel.apps.frame import UrlState, configured_dataset, configured_settings
from xai_panel.components import ALL, Gallery
from xai_panel.data import open_dataset


def test_the_url_selects_an_image_and_label_and_refuses_bad_values(folder):
    gallery = Gallery(dataset=open_dataset(folder), predict=False)
    state = UrlState(gallery=gallery)
    assert state.apply(image="coffee/c.png") == []
    assert gallery.selected == "coffee/c.png" and gallery.label == "coffee"
    problems = state.apply(group="colour", label="dogs", image="../../etc/passwd")
    assert len(problems) == 3 and gallery.selected == "coffee/c.png" and gallery.label == "coffee"
    assert state.apply(label=ALL, group="prediction") == []
    assert gallery.group_by == "prediction"


def test_data_and_settings_come_from_the_environment(monkeypatch, folder, tmp_path):
    monkeypatch.setenv("XAI_PANEL_DATA", str(folder))
    dataset, problem = configured_dataset()
    assert problem == "" and len(dataset) == 5
    monkeypatch.setenv("XAI_PANEL_DATA", str(tmp_path / "nowhere"))
    dataset, problem = configured_dataset()
    assert dataset.name == "demo" and "does not exist" in problem
    # Every page says so (the server's set-up opens the dataset before the first page does).
    assert configured_dataset() == (dataset, problem)
    monkeypatch.setenv("XAI_PANEL_SETTINGS", '{"lime": {"num_samples": 50}, "methods": ["lime"]}')
    assert configured_settings({}) == ({"lime": {"num_samples": 50}, "methods": ["lime"]}, "")
    monkeypatch.setenv("XAI_PANEL_SETTINGS", '{"lime": {"num_samples": 1}}')
    settings, problem = configured_settings({"lime": {"num_samples": 400}})
    assert settings == {"lime": {"num_samples": 400}} and "ignored" in problem


def test_serve_runs_panel_with_both_dashboards():
    from xai_panel.serve import dashboard_paths, panel_serve_args

    args = panel_serve_args(port=5123, address="127.0.0.1", show=True, extra=["--", "--num-procs", "1"])
    assert args[0] == "serve" and [str(p) for p in dashboard_paths()] == args[1:3]
    assert "--allow-websocket-origin=127.0.0.1:5123" in args and "--show" in args
    assert args[-2:] == ["--num-procs", "1"]
    with pytest.raises(ValueError):
        panel_serve_args(port=70000)


def test_serve_refuses_a_missing_data_folder(tmp_path):
    from xai_panel.serve import serve

    with pytest.raises(FileNotFoundError):
        serve(data=tmp_path / "missing", port=0)


def test_warm_up_loads_the_model_and_freezes_the_start_up_heap():
    import gc

    from xai_panel.apps.frame import warm_up
    from xai_panel.runtime.jobs import classifier

    try:
        future = warm_up("efficientnet_lite0")
        future.result(timeout=300)
        assert warm_up("efficientnet_lite0") is future  # once per process: pages call it on every load
        assert gc.get_freeze_count() > 10_000  # torch, Panel and the model, out of the collector's walks
        assert classifier("efficientnet_lite0") is classifier("efficientnet_lite0")
    finally:
        gc.unfreeze()


def test_lazy_card_builds_its_content_when_first_opened():
    import panel as pn

    from xai_panel.apps.frame import lazy_card

    content = pn.pane.Markdown("settings")
    card = lazy_card(content, "Explainer settings")
    assert card.collapsed and card.objects == []
    card.collapsed = False
    assert card.objects == [content]
    card.collapsed = True
    card.collapsed = False
    assert card.objects == [content]


def test_the_dashboards_store_comes_from_the_environment_or_is_reported(monkeypatch, tmp_path):
    from xai_panel.apps import frame as app
    from xai_panel.store import ExplanationStore

    monkeypatch.setattr(app, "_store", [])
    monkeypatch.setenv("XAI_PANEL_STORE", str(tmp_path / "shared.sqlite"))
    store, problem = app.configured_store()
    assert isinstance(store, ExplanationStore) and problem == "" and (tmp_path / "shared.sqlite").exists()
    assert app.configured_store()[0] is store  # once per process
    store.close()
    monkeypatch.setattr(app, "_store", [])
    (tmp_path / "photo.sqlite").write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a database" * 40)
    monkeypatch.setenv("XAI_PANEL_STORE", str(tmp_path / "photo.sqlite"))
    store, problem = app.configured_store()
    assert store is None and "photo.sqlite is not an xai-panel store" in problem and "memory only" in problem


def test_the_rehearsal_waits_while_a_visitors_job_runs(classifier):
    """The warm-up's rehearsal yields to clicks: while a visitor's (foreground) job runs it makes no
    model pass, and it carries on when the job ends."""
    import threading
    import time

    from xai_panel.apps.frame import _yield_to_visitors, rehearse
    from xai_panel.runtime.jobs import foreground

    batches = []

    def pause():
        batches.append(classifier.forward_passes)
        _yield_to_visitors()

    done = threading.Event()
    with foreground:  # a visitor's job is running
        worker = threading.Thread(target=lambda: (rehearse(classifier, pause=pause), done.set()), daemon=True)
        worker.start()
        deadline = time.monotonic() + 120
        while not batches and time.monotonic() < deadline:  # its first batch (the top classes) ran
            time.sleep(0.05)
        assert batches, "the rehearsal made no model pass"
        passes = classifier.forward_passes
        time.sleep(1.5)
        assert classifier.forward_passes == passes and len(batches) == 1 and not done.is_set()
    assert done.wait(300), "the rehearsal did not carry on after the visitor's job"
    assert len(batches) > 1 and classifier.forward_passes > passes


def test_every_page_of_an_unusable_data_folder_shows_why(monkeypatch, tmp_path):
    """Not a quiet switch to the demo gallery: each page built (the first and the next) says why."""
    from xai_panel.apps.gallery import gallery_app

    (tmp_path / "notes.txt").write_text("not an image")
    monkeypatch.setenv("XAI_PANEL_DATA", str(tmp_path))
    for _ in range(2):
        template = gallery_app()
        alerts = [o.object for o in template.main if isinstance(o, pn.pane.Alert)]
        assert len(alerts) == 1 and alerts[0].startswith("The data folder cannot be used: No images found in"), alerts
        assert "Skipped: 1 files that are not images" in alerts[0] and "demo gallery is shown instead" in alerts[0]


def test_rehearsing_the_pages_builds_them_and_leaves_nothing_behind(monkeypatch, folder, caplog):
    """The server's start-up builds each page once (its first-call costs, off the first visitor's
    path); Panel keeps none of the throwaway pages, and a page that fails is logged, not raised."""
    import gc
    import logging
    import time
    import weakref

    from xai_panel.apps.frame import rehearse_pages
    from xai_panel.apps.gallery import gallery_app

    monkeypatch.setenv("XAI_PANEL_DATA", str(folder))
    views, indicators = set(pn.state._views), list(pn.state._indicators)
    built = []

    def gallery():
        built.append(gallery_app())
        return built[-1]

    def broken():
        raise RuntimeError("this page cannot be built")

    with caplog.at_level(logging.INFO, logger="xai_panel"):
        rehearse_pages(gallery, broken)
    assert len(built) == 1 and "gallery rehearsed in" in caplog.text
    assert "rehearsing the page broken failed" in caplog.text and "cannot be built" in caplog.text
    assert set(pn.state._views) == views and pn.state._indicators == indicators
    page = weakref.ref(built.pop())
    end = time.monotonic() + 30  # the throwaway page's prefetch may hold its session a moment
    while page() is not None and time.monotonic() < end:
        gc.collect()
        time.sleep(0.2)
    assert page() is None
