"""One config object reads every XAI_PANEL_* variable, with one policy for bad values."""

from __future__ import annotations

import logging

from xai_panel.config import ENV, Config, config


def test_every_variable_is_read_and_typed(tmp_path):
    env = {"XAI_PANEL_DATA": str(tmp_path), "XAI_PANEL_MODEL": "resnet34", "XAI_PANEL_PORT": "7000",
           "XAI_PANEL_MAX_QUEUE": "3", "XAI_PANEL_COMPUTE_THREADS": "2", "XAI_PANEL_MAX_UPLOAD_MB": "5",
           "XAI_PANEL_SETTINGS": '{"lime": {"num_samples": 300}}', "XAI_PANEL_STORE": "/x/s.sqlite",
           "XAI_PANEL_CACHE": str(tmp_path / "c"), "XAI_PANEL_GRADIENT_THREADS": "2"}
    cfg = Config.from_environ(env)
    assert cfg.gradient_threads == 2 and Config.from_environ({}).gradient_threads == 1
    assert (cfg.data, cfg.model, cfg.port, cfg.max_queue, cfg.threads, cfg.max_upload_mb) == (
        str(tmp_path), "resnet34", 7000, 3, 2, 5)
    assert cfg.settings == {"lime": {"num_samples": 300}} and cfg.store == "/x/s.sqlite"
    assert cfg.cache_folder == tmp_path / "c" and cfg.problems == []
    assert set(ENV.values()) == set(env)  # every variable the package reads, and only those


def test_bad_values_are_ignored_named_and_logged_once(caplog):
    env = {"XAI_PANEL_MAX_QUEUE": "lots", "XAI_PANEL_PORT": "70000", "XAI_PANEL_SETTINGS": "[1, 2]",
           "XAI_PANEL_COMPUTE_THREADS": "0"}
    with caplog.at_level(logging.WARNING, logger="xai_panel.config"):
        cfg = Config.from_environ(env)
        Config.from_environ(env)
    assert (cfg.max_queue, cfg.port, cfg.settings, cfg.compute_threads) == (8, 5006, None, None)
    assert cfg.problems == [
        "XAI_PANEL_SETTINGS='[1, 2]' ignored: it must be a JSON object, e.g. {\"lime\": {\"num_samples\": 500}}",
        "XAI_PANEL_PORT='70000' ignored: it must be between 0 and 65535",
        "XAI_PANEL_MAX_QUEUE='lots' ignored: it must be a whole number",
        "XAI_PANEL_COMPUTE_THREADS='0' ignored: it must be between 1 and 256",
    ]
    assert [r.getMessage() for r in caplog.records].count(cfg.problems[2]) <= 1  # once per process


def test_config_reads_the_environment_as_it_is_now(monkeypatch):
    monkeypatch.setenv("XAI_PANEL_MAX_QUEUE", "5")
    assert config().max_queue == 5
    monkeypatch.delenv("XAI_PANEL_MAX_QUEUE")
    assert config().max_queue == 8


def test_the_dashboards_name_ignored_variables(monkeypatch):
    from xai_panel.apps.frame import config_problems

    monkeypatch.setenv("XAI_PANEL_MAX_UPLOAD_MB", "big")
    assert config_problems() == ["XAI_PANEL_MAX_UPLOAD_MB='big' ignored: it must be a whole number"]
