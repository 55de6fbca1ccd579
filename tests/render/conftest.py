"""The component tests' real photos and explanation, shared here, and one explanation by every method."""

import pytest

from tests.components.conftest import QUICK, folder, lime_shap, photos, wait_until  # noqa: F401

EVERY_METHOD = {
    "lime": {"num_samples": 40}, "anchors": {"batch_size": 20, "coverage_samples": 100, "max_anchor_size": 2,
                                             "threshold": 0.6, "regions": 3, "n_examples": 2},
    "shap": {"estimator": "pool"}, "occlusion": {}, "gradcam": {}, "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 2},
}
"""Every registered method, on budgets that explain a photo in seconds (3x3 grid superpixels)."""


def explain_every_method(classifier, image, top_k: int = 3):
    """A real explanation of ``image`` by every method in ``EVERY_METHOD``, with its trust metrics."""
    from xai_panel.engine.pipeline import explain

    return explain(image, classifier, methods=tuple(EVERY_METHOD), settings=EVERY_METHOD, segmentation="grid",
                   segmentation_params={"rows": 3, "cols": 3}, top_k=top_k, metrics=("faithfulness", "agreement"),
                   metric_settings={"steps": 3, "random_orders": 1})


@pytest.fixture(scope="session")
def every_method(classifier, chelsea):
    """The cat photo explained by every method (``explain_every_method``)."""
    return explain_every_method(classifier, chelsea)
