"""How much an explanation moves when only the seed, or only invisible pixel noise, changes.

Two experiments on one image, both on ONE segmentation (computed once from the clean view
with ``base_seed``) so that superpixel ids line up across runs:

* **seeds**: the same clean view explained with seeds ``base_seed, base_seed + 1, ...``
  (lime #477: "the same settings highlight different regions each run");
* **input noise**: the view plus Gaussian noise of ``noise_sigma`` grey levels, rounded
  back to uint8, explained with ``base_seed``, and compared with the clean run of
  ``base_seed`` -- any difference then comes from the input alone.

Per method and class: mean pairwise Jaccard of the top superpixels and mean pairwise
Spearman correlation of the weights (GLIME, NeurIPS 2023), the same two under noise, the
per-superpixel mean and std over all runs, and the local Lipschitz estimate
max ||e(x) - e(x')||_2 / ||x - x'||_2 (Alvarez-Melis & Jaakkola 2018; Quantus' Max-Sensitivity
family), with x in uint8 grey levels of the model's view.

Pure core: no Panel. Runs reuse the engine's memo, so repeated coalitions cost nothing.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np
from scipy.stats import rankdata

from ..engine.perturbation import PerturbationEngine
from ..engine.results import Segmentation
from ..engine.segmentation import segment
from ..methods.base import Explainer, check_methods, default_methods, draw_shared_pool, make_explainer, run_order
from ..models.classifier import Classifier, ClassScore, top_k_of

__all__ = ["stability", "StabilityReport", "MethodStability", "add_noise", "jaccard", "spearman"]

_NOISE_STREAM = 0x5EED  # keeps the noise draws apart from every explanation's seed


@dataclass(frozen=True)
class MethodStability:
    """Stability of one method's explanation of one class.

    Top sets: for LIME and SHAP the ``k_top_segments`` superpixels with the largest signed
    weight (the evidence shown for the class); for Anchors the anchor itself. ``mean`` and
    ``std`` are per superpixel (M,) over every run (seeds and noise): LIME weights, SHAP
    values, or for Anchors the 0/1 membership (so ``mean`` is how often a superpixel was in
    the anchor). Spearman is NaN for Anchors (sets have no ranking) and for pairs where a
    weight vector is constant; the means skip NaN pairs.
    """

    method: str
    label: int
    seed_jaccard: float  # mean pairwise Jaccard of the top sets across seeds (clean view)
    seed_spearman: float  # mean pairwise Spearman of the weights across seeds
    noise_jaccard: float  # mean Jaccard between the clean run and each noisy run (same seed)
    noise_spearman: float  # mean Spearman between the clean run and each noisy run
    lipschitz: float  # max over noisy runs of ||e(x) - e(x')|| / ||x - x'|| (per grey level)
    mean: np.ndarray  # (M,)
    std: np.ndarray  # (M,)
    precision_mean: float = math.nan  # Anchors only: anchor precision over the seed runs
    precision_std: float = math.nan
    runs: int = 0

    @property
    def always_empty(self) -> bool:
        """Anchors only: every run's anchor was empty (the class holds with nothing kept), so the
        Jaccards of 1 compare empty sets and say nothing about stability."""
        return self.precision_mean > 0 and not np.any(self.mean)  # NaN > 0 is False: not an anchor


@dataclass(frozen=True)
class StabilityReport:
    """Everything ``stability`` measured for one image."""

    image: np.ndarray  # (H, W, 3) uint8: the clean view the model saw
    model_id: str
    segmentation: Segmentation  # the one segmentation every run used
    top: tuple[ClassScore, ...]  # the clean view's top-k (the classes explained in every run)
    results: Mapping[str, Mapping[int, MethodStability]]  # method -> class index -> stability
    seeds: tuple[int, ...]
    noise_sigma: float
    noise_distances: tuple[float, ...]  # ||x - x'||_2 of each noisy view, grey levels
    probability_changes: tuple[float, ...]  # max_c |p(c|x') - p(c|x)| of each noisy view
    top_class_changed: bool  # the noise changed the predicted top class at least once
    top_k_segments: int
    settings: Mapping[str, object] = field(default_factory=dict)
    forward_passes: int = 0
    seconds: float = 0.0

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(c.index for c in self.top)

    @property
    def max_probability_change(self) -> float:
        """Largest change of any class probability caused by the noise (0 without noise runs)."""
        return max(self.probability_changes, default=0.0)

    def __getitem__(self, key: tuple[str, int]) -> MethodStability:
        method, label = key
        return self.results[method][label]


# -- metrics -----------------------------------------------------------------------------------


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """|a & b| / |a | b|; two empty sets agree (1.0)."""
    a, b = set(a), set(b)
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either vector is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _vector(result, m: int) -> np.ndarray:
    if not hasattr(result, "vector"):
        raise TypeError(f"no stability vector for {type(result).__name__} (it has no vector(m) / top_set(k))")
    return np.asarray(result.vector(m), np.float64)


def _top_set(result, vector: np.ndarray, k: int) -> frozenset[int]:
    return frozenset(result.top_set(k))


def _summarise(method: str, label: int, seed_runs: list, noise_runs: list, distances: list[float],
               m: int, k: int) -> MethodStability:
    seed_vecs = [_vector(r, m) for r in seed_runs]
    noise_vecs = [_vector(r, m) for r in noise_runs]
    seed_sets = [_top_set(r, v, k) for r, v in zip(seed_runs, seed_vecs)]
    noise_sets = [_top_set(r, v, k) for r, v in zip(noise_runs, noise_vecs)]
    ranked = bool(getattr(type(seed_runs[0]), "ranked", True))
    pairs = list(itertools.combinations(range(len(seed_runs)), 2))
    clean_vec, clean_set = seed_vecs[0], seed_sets[0]
    lipschitz = [float(np.linalg.norm(clean_vec - v)) / d for v, d in zip(noise_vecs, distances) if d > 0]
    everything = np.stack(seed_vecs + noise_vecs)
    precision = [r.precision for r in seed_runs if getattr(r, "precision", None) is not None]
    return MethodStability(
        method=method,
        label=label,
        seed_jaccard=_nanmean([jaccard(seed_sets[i], seed_sets[j]) for i, j in pairs]),
        seed_spearman=_nanmean([spearman(seed_vecs[i], seed_vecs[j]) for i, j in pairs]) if ranked else math.nan,
        noise_jaccard=_nanmean([jaccard(clean_set, s) for s in noise_sets]),
        noise_spearman=_nanmean([spearman(clean_vec, v) for v in noise_vecs]) if ranked else math.nan,
        lipschitz=max(lipschitz) if lipschitz else math.nan,
        mean=everything.mean(axis=0),
        std=everything.std(axis=0),
        precision_mean=float(np.mean(precision)) if precision else math.nan,
        precision_std=float(np.std(precision)) if precision else math.nan,
        runs=len(everything),
    )


# -- the experiment --------------------------------------------------------------------------


def add_noise(view: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``view`` + N(0, sigma^2) per channel value, rounded and clipped back to uint8."""
    noisy = view.astype(np.float64) + rng.normal(0.0, sigma, view.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def stability(
    image: np.ndarray,
    classifier: Classifier | None = None,
    methods: Iterable[str] | None = None,
    *,
    seeds: int = 5,
    noise_repeats: int = 5,
    noise_sigma: float = 2.0,
    top_k: int = 5,
    k_top_segments: int = 5,
    base_seed: int = 0,
    settings: Mapping[str, Mapping | Explainer] | None = None,
    segmentation: str = "quickshift",
    segmentation_params: Mapping[str, object] | None = None,
    fill: str = "mean",
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> StabilityReport:
    """Explain ``image`` ``seeds`` times on the clean view and ``noise_repeats`` times on
    noisy copies of it, and report how much each method's explanations agree.

    ``noise_sigma`` is in uint8 grey levels of the prepared view (2.0 is invisible and
    barely moves the probabilities; the report says by how much: ``probability_changes``,
    ``top_class_changed``). Methods, settings, segmentation and fill mean what they mean in
    ``xai_panel.explain``; the classes explained are the clean view's ``top_k`` in every
    run. ``progress(done, total)`` is called after each run; ``cancel`` (a
    ``threading.Event``) is checked between model batches and raises ``Cancelled``.
    Same inputs, same report.
    """
    from ..engine.pipeline import _default_classifier

    classifier = classifier or _default_classifier()
    methods = run_order(default_methods() if methods is None else methods)
    settings = dict(settings or {})
    check_methods(settings)
    if not methods:
        raise ValueError("stability needs at least one method")
    if int(seeds) < 1 or int(noise_repeats) < 0:
        raise ValueError(f"need seeds >= 1 and noise_repeats >= 0, got {seeds} and {noise_repeats}")
    if not noise_sigma >= 0:
        raise ValueError(f"noise_sigma must be >= 0 grey levels, got {noise_sigma}")
    if int(k_top_segments) < 1:
        raise ValueError(f"k_top_segments must be >= 1, got {k_top_segments}")
    if not 1 <= int(top_k) <= min(classifier.num_classes, 20):
        raise ValueError(f"top_k must be between 1 and {min(classifier.num_classes, 20)}, got {top_k}")
    explainers = {m: make_explainer(m, settings.get(m)) for m in methods}  # in explain()'s run order

    t0 = time.perf_counter()
    view = classifier.prepare(np.asarray(image))
    segments = segment(view, segmentation, seed=0, **dict(segmentation_params or {}))  # as explain() does
    m, k = segments.n_segments, int(k_top_segments)
    total, done, passes = int(seeds) + int(noise_repeats), 0, 0

    def run(engine: PerturbationEngine, seed: int) -> dict[str, dict[int, object]]:
        nonlocal done, passes
        engine.check_cancelled()
        with engine.track("stability") as box:
            pool, out = None, {}
            for name, e in explainers.items():  # as explain() runs them: the pool drawn when first needed
                if pool is None and e.needs_pool():
                    pool = draw_shared_pool(explainers, engine, labels, seed)
                out[name] = e.compute(engine, labels, seed=seed, pool=pool, top_k=int(top_k))
        passes += box["cost"].forward_passes
        done += 1
        if progress is not None:
            progress(done, total)
        return out

    clean = PerturbationEngine(view, segments, classifier, fill, cancel=cancel)
    with clean.track("top-k") as box:
        clean_probs = clean.predict_full()
    passes += box["cost"].forward_passes
    top = tuple(top_k_of(clean_probs, classifier.class_names, int(top_k)))
    labels = [c.index for c in top]

    seed_list = [int(base_seed) + i for i in range(int(seeds))]
    seed_runs = [run(clean, s) for s in seed_list]
    noise_runs, distances, changes, flipped = [], [], [], False
    for r in range(int(noise_repeats)):
        noisy = add_noise(view, float(noise_sigma), np.random.default_rng([int(base_seed), r, _NOISE_STREAM]))
        engine = PerturbationEngine(noisy, segments, classifier, fill, cancel=cancel)
        with engine.track("top-k") as box:
            probs = engine.predict_full()
        passes += box["cost"].forward_passes
        distances.append(float(np.linalg.norm(noisy.astype(np.float64) - view.astype(np.float64))))
        changes.append(float(np.abs(probs - clean_probs).max()))
        flipped |= int(np.argmax(probs)) != int(np.argmax(clean_probs))
        noise_runs.append(run(engine, int(base_seed)))

    results = {
        name: {label: _summarise(name, label, [r[name][label] for r in seed_runs],
                                 [r[name][label] for r in noise_runs], distances, m, k)
               for label in labels}
        for name in explainers
    }
    return StabilityReport(
        image=view, model_id=classifier.model_id, segmentation=segments, top=top, results=results,
        seeds=tuple(seed_list), noise_sigma=float(noise_sigma), noise_distances=tuple(distances),
        probability_changes=tuple(changes), top_class_changed=bool(flipped), top_k_segments=k,
        settings={"segmentation": segmentation, "segmentation_params": dict(segments.params), "fill": fill,
                  "top_k": int(top_k), "noise_repeats": int(noise_repeats), "base_seed": int(base_seed),
                  **{name: e.settings() for name, e in explainers.items()}},
        forward_passes=passes, seconds=time.perf_counter() - t0,
    )
