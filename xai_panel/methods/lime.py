"""LIME through the ``lime`` package's regression, on the engine's shared coalition pool.

The pool is drawn exactly as ``lime_image.LimeImageExplainer.data_labels`` draws it
(``RandomState(seed).randint(0, 2, ...)``, first row all on), so for the same seed,
segmentation and fill the weights equal lime's own ``explain_instance`` (checked in the
tests); what changes is the cost: masks rendered vectorised, large batches, and the
predictions shared with SHAP and Anchors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import param

from ..engine.perturbation import PerturbationEngine, shared_pool, uniform_coalitions
from ..engine.results import ScoreResult
from .base import Explainer

__all__ = ["LimeExplainer", "LimeResult", "explain_lime", "lime_pool", "stable_pool"]


@dataclass(frozen=True)
class LimeResult(ScoreResult):
    """LIME's linear surrogate for one class over the superpixels."""

    label: int
    weights: np.ndarray  # (M,)
    intercept: float
    score: float  # R^2 of the weighted surrogate on its samples
    local_prediction: float

    @property
    def values(self) -> np.ndarray:
        """The surrogate's weights: the (M,) score protocol of per-superpixel results."""
        return self.weights

    def top_segments(self, num_features: int = 5, positive_only: bool = True) -> np.ndarray:
        """Segment ids of the ``num_features`` largest weights (by value, or by |value|)."""
        key = -self.weights if positive_only else -np.abs(self.weights)
        order = np.argsort(key, kind="stable")[:num_features]
        if positive_only:
            order = order[self.weights[order] > 0]
        return order

    def mask(self, segments: np.ndarray, num_features: int = 5, positive_only: bool = True) -> np.ndarray:
        """(H, W) int8: +1 where a chosen superpixel supports the class, -1 where it opposes it."""
        chosen = self.top_segments(num_features, positive_only)
        signs = np.zeros(len(self.weights), np.int8)
        signs[chosen] = np.sign(self.weights[chosen]).astype(np.int8)
        return signs[segments]


class LimeExplainer(Explainer):
    """LIME (Ribeiro et al. 2016) with the ``lime`` package's weighted ridge surrogate.

    Its uniform coalitions are the shared pool: it runs first, and the other methods
    sample from its passes where their law allows.
    """

    method = "lime"
    label = "LIME"
    description = ("Green: the superpixels whose presence most raises the class's probability in LIME's "
                   "linear surrogate; red (if shown): the ones that lower it most. R² is the surrogate's fit.")
    caption = "superpixels for and against each class"
    result_type = LimeResult
    order = 10
    defines_pool = True
    interactive = {"num_samples": 400}
    rehearsal = {"num_samples": 40}
    reduced = {"num_samples": 200}
    pool_parameter = "num_samples"
    card_parameters = ("num_samples", "kernel_width")
    warm_imports = ("lime.lime_base", "sklearn.linear_model", "sklearn.metrics")

    num_samples = param.Integer(1000, bounds=(10, 50000), doc=(
        "Coalitions sampled (the shared pool's size); with stop_when_stable, the most that are drawn."))
    kernel_width = param.Number(0.25, bounds=(0.01, 10.0), doc="Width of LIME's exponential kernel on cosine distance.")
    stop_when_stable = param.Boolean(False, doc=(
        "Draw the pool in steps of check_every samples (from min_samples) and stop once every class's five "
        "most supporting superpixels and the ranking of all its weights (Spearman >= stable_rank) have not "
        "moved for two checks in a row; off: always num_samples (lime's classic fixed budget)."))
    min_samples = param.Integer(200, bounds=(10, 50000), doc="Samples drawn before the first stopping check.")
    check_every = param.Integer(50, bounds=(10, 10000), doc="Samples drawn between two stopping checks.")
    stable_rank = param.Number(0.95, bounds=(0.0, 1.0), doc=(
        "Spearman correlation of the weights between two checks above which the ranking counts as unmoved."))

    def pool_size(self) -> int:
        return int(self.num_samples)

    def draw_pool(self, engine, labels, *, seed):
        if not self.stop_when_stable:
            return lime_pool(engine, int(self.num_samples), seed)
        return stable_pool(engine, labels, seed=seed, max_samples=self.num_samples, min_samples=self.min_samples,
                           step=self.check_every, stable_rank=self.stable_rank, kernel_width=self.kernel_width)

    def compute(self, engine, labels, *, seed, pool, top_k):
        return explain_lime(engine, labels, num_samples=self.num_samples, seed=seed,
                            kernel_width=self.kernel_width, pool=pool)


def _lime_kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def lime_pool(engine: PerturbationEngine, num_samples: int, seed: int,
              first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """LIME's samples: the engine's shared uniform pool (see ``shared_pool``)."""
    return shared_pool(engine, num_samples, seed, first)


STABLE_CHECKS = 2
"""Consecutive checks at which the surrogate must not move before ``stable_pool`` stops."""


def _moved(before: dict[int, LimeResult], after: dict[int, LimeResult], k: int, stable_rank: float) -> bool:
    """Whether any class's top-``k`` supporting superpixels or its weights' ranking moved."""
    from scipy.stats import spearmanr

    for label, now in after.items():
        was = before[label]
        if set(was.top_segments(k)) != set(now.top_segments(k)):
            return True
        if np.ptp(was.weights) == 0 or np.ptp(now.weights) == 0:
            return True
        if spearmanr(was.weights, now.weights).statistic < stable_rank:
            return True
    return False


def stable_pool(engine: PerturbationEngine, labels, *, seed: int, max_samples: int, min_samples: int = 200,
                step: int = 50, stable_rank: float = 0.95, kernel_width: float = 0.25, k: int = 5,
                checks: int = STABLE_CHECKS) -> tuple[np.ndarray, np.ndarray]:
    """The shared pool, drawn until LIME's surrogate stops moving: a prefix of ``lime_pool``.

    A sequential check on the surrogate: after ``min_samples`` samples and then every
    ``step`` more, LIME is refitted on the samples so far; when no class's ``k`` most
    supporting superpixels changed and every class's weights rank (Spearman) at least
    ``stable_rank`` alike for ``checks`` checks in a row, no more are drawn. The pool is
    always a prefix of lime's sampler for ``seed`` (row 0 the image), so with
    ``max_samples`` reached it is exactly ``lime_pool(engine, max_samples, seed)``. The
    refits cost no model passes (a ridge regression per class on at most ``max_samples`` rows).
    """
    max_samples = int(max_samples)
    labels = [int(label) for label in labels]
    full = uniform_coalitions(max_samples, engine.n_segments, seed)
    n = min(max(int(min_samples), 2), max_samples)
    previous, calm, probs = None, 0, np.zeros((0, 0))
    while True:
        engine.check_cancelled()
        new = engine.evaluate(full[len(probs):n])  # only the rows drawn since the last check
        probs = new if not len(probs) else np.concatenate([probs, new])
        pool = full[:n], probs
        if n >= max_samples or not labels:
            return pool
        fitted = explain_lime(engine, labels, num_samples=n, seed=seed, kernel_width=kernel_width, pool=pool)
        calm = 0 if previous is None or _moved(previous, fitted, k, stable_rank) else calm + 1
        if calm >= checks:
            return pool
        previous, n = fitted, min(n + int(step), max_samples)


def explain_lime(
    engine: PerturbationEngine,
    labels,
    *,
    num_samples: int = LimeExplainer.param.num_samples.default,
    seed: int = 0,
    kernel_width: float = LimeExplainer.param.kernel_width.default,
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
