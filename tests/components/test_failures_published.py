"""Failures in background jobs reach the page as messages (the callback that publishes them
runs after the job's ``except`` block, where Python has already unbound the exception)."""

from __future__ import annotations

from xai_panel.components import ExplainerSettings, Gallery, StabilityPane
from xai_panel.data import open_dataset


def test_a_gallery_whose_model_cannot_load_says_why_and_keeps_browsing(folder):
    gallery = Gallery(dataset=open_dataset(folder), model="no-such-model", page_size=8)
    gallery.wait_predictions(timeout=120)
    assert gallery.message.startswith("No predictions: model 'no-such-model' failed (")
    assert "no-such-model" in gallery.message[len("No predictions: model 'no-such-model' failed ("):]
    assert len(gallery.records) == 5  # the thumbnails are still there


def test_a_stability_run_whose_model_cannot_load_reports_the_error(photos):
    settings = ExplainerSettings.from_dict({"methods": ["lime"], "segmentation": "slic", "lime": {"num_samples": 20}})
    pane = StabilityPane(image=photos["chelsea"], model="no-such-model", settings=settings, seeds=2, noise_repeats=0)
    pane.compute()
    pane.wait()
    assert pane.status == "error"
    assert pane.error.split(":")[0] in ("ModelError", "ValueError") and "no-such-model" in pane.error
