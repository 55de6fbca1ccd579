"""LIME through the ``lime`` package's regression, on the engine's shared coalition pool.

The pool is drawn exactly as ``lime_image.LimeImageExplainer.data_labels`` draws it
(``RandomState(seed).randint(0, 2, ...)``, first row all on), so for the same seed,
segmentation and fill the weights equal lime's own ``explain_instance`` (checked in the
tests); what changes is the cost: masks rendered vectorised, large batches, and the
predictions shared with SHAP and Anchors.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .engine import PerturbationEngine, uniform_coalitions
from .results import LimeResult

__all__ = ["explain_lime", "lime_pool"]


def _lime_kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def lime_pool(engine: PerturbationEngine, num_samples: int, seed: int,
              first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The shared uniform pool: (coalitions (n, M) bool, probabilities (n, C)).

    ``first``: only the pool's first rows (a smaller sample of the same law; the engine's
    memo makes them free when the whole pool is drawn afterwards).
    """
    coalitions = uniform_coalitions(num_samples, engine.n_segments, seed)[:first]
    return coalitions, engine.evaluate(coalitions)


def explain_lime(
    engine: PerturbationEngine,
    labels,
    *,
    num_samples: int = 1000,
    seed: int = 0,
    kernel_width: float = 0.25,
    pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, LimeResult]:
    """LIME surrogate weights over all superpixels for each class in ``labels``."""
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    if num_samples < 2:
        raise ValueError(f"LIME needs at least 2 samples, got {num_samples}")
    data, probs = pool if pool is not None else lime_pool(engine, num_samples, seed)
    data = data.astype(np.int64)
    distances = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    base = LimeBase(partial(_lime_kernel, kernel_width=kernel_width), random_state=np.random.RandomState(seed))
    results = {}
    for label in labels:
        engine.check_cancelled()
        intercept, pairs, score, local_pred = base.explain_instance_with_data(
            data, probs, distances, int(label), num_features=100000, feature_selection="auto"
        )
        weights = np.zeros(engine.n_segments, np.float64)
        for feature, weight in pairs:
            weights[feature] = weight
        results[int(label)] = LimeResult(
            label=int(label),
            weights=weights,
            intercept=float(intercept),
            score=float(score),
            local_prediction=float(np.ravel(local_pred)[0]),
        )
    return results
