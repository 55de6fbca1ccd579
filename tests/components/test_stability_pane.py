"""Stability on request: a report from the engine, progress, cancellation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai_panel import stability
from xai_panel.components import ExplainerSettings, StabilityPane


def test_stability_is_computed_on_request_with_progress(photos, classifier):
    settings = ExplainerSettings.from_dict({"methods": ["lime", "shap"], "segmentation": "slic",
                                            "lime": {"num_samples": 60}, "shap": {"estimator": "pool"}})
    pane = StabilityPane(image=photos["chelsea"], settings=settings, seeds=2, noise_repeats=1)
    assert pane.status == "idle" and pane.report is None
    progress = []
    pane.param.watch(lambda e: progress.append(e.new), "progress")
    pane.compute()
    pane.wait()
    assert pane.status == "done" and pane.progress == 1.0
    assert progress == sorted(progress) and len(progress) >= 3  # 1/3, 2/3, 1
    report = pane.report
    assert set(report.results) == {"lime", "shap"} and report.seeds == (0, 1)
    # the pane's report is the core's for the card's settings, seeds and noise
    expected = stability(photos["chelsea"], classifier, methods=("lime", "shap"), seeds=2, noise_repeats=1,
                         noise_sigma=2.0, k_top_segments=5, segmentation="slic",
                         segmentation_params=settings.segmentation_params(), fill=settings.fill,
                         settings={"lime": {"num_samples": 60}, "shap": {"estimator": "pool"}})
    assert report.settings == expected.settings and report.top == expected.top
    for method, per_class in expected.results.items():
        for label, e in per_class.items():
            s = report.results[method][label]
            for metric in ("seed_jaccard", "noise_jaccard", "seed_spearman", "noise_spearman", "lipschitz"):
                assert getattr(s, metric) == pytest.approx(getattr(e, metric), rel=1e-5), (method, label, metric)
            assert not math.isnan(s.noise_jaccard) and s.runs == 3
            np.testing.assert_allclose(s.std, e.std, rtol=1e-4, atol=1e-7)
    html = pane._table(report)
    assert "seed Jaccard" in html and report.top[0].name in html
    title, spread = pane.spread()
    label = report.top[0].index
    assert report.top[0].name in title and spread.shape == report.segmentation.labels.shape
    assert np.allclose(spread, report.results["lime"][label].std[report.segmentation.labels])
    page = pane._spread_html(report, label, "lime")
    assert page.count("<img") == 1 and "data:image/jpeg" in page and "std" in page
    from xai_panel.render.tiles import tile_cache

    misses = tile_cache().misses
    assert pane._spread_html(report, label, "lime") == page and tile_cache().misses == misses  # from the tile cache


def test_a_new_image_cancels_and_clears_the_report(photos):
    settings = ExplainerSettings.from_dict({"methods": ["lime"], "segmentation": "slic", "lime": {"num_samples": 3000}})
    pane = StabilityPane(image=photos["chelsea"], settings=settings, seeds=5, noise_repeats=5)
    job = pane.compute()
    pane.image = photos["coffee"]
    assert job.cancelled and pane.status == "idle" and pane.report is None
    pane.wait()
    assert pane.report is None  # the abandoned run published nothing


def test_without_an_image_it_asks_for_one():
    pane = StabilityPane()
    assert pane.compute() is None and pane.status == "error" and "image" in pane.error.lower()
