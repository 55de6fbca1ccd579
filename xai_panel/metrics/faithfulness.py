"""Faithfulness: does hiding what a method calls important hurt the class, and revealing it help?

The superpixel protocol, for every ranked per-superpixel result (``ScoreResult``: LIME,
SHAP, occlusion, the gradient methods' per-superpixel means) and every class:

- order the superpixels by the method's score for the class, descending, ties by
  superpixel id (a stable sort);
- **deletion**: step k = 0..M hides the first k superpixels (they show the engine's
  fill, as for every method); the curve is the class probability at each step, and the
  AUC is the trapezoid area over x = k/M in [0, 1]. Lower is better: a faithful
  explanation names first what the class needs most;
- **insertion**: start with every superpixel hidden and reveal them in the same order;
  AUC likewise. Higher is better;
- a **random-order baseline**: the same curves for ``random_orders`` random orders drawn
  from ``seed`` (the same orders for every method and class), averaged; a method's AUC
  reads against it;
- ``steps``: by default every superpixel is one step (M + 1 points). A smaller number
  of steps hides ``round(i * M / steps)`` superpixels at step i (coarser, cheaper); the
  hidden counts are reported in ``Faithfulness.hidden``.

Every step is a coalition evaluated by the ``PerturbationEngine``: batched, memoised
(the all-kept and all-hidden coalitions, a step another method or class shares and
anything an explanation already evaluated are free) and counted in
``res.costs["faithfulness"]``.

The RISE pixel protocol (Petsiuk et al., BMVC 2018, as in the authors' evaluation code,
eclique/RISE) for pixel maps, so figures can be set beside published ones: pixels are
ordered by the map (a pixel ``heatmap`` when the result has one, else the per-superpixel
scores painted, ties by pixel index), 224 x 8 pixels change per step (28 steps on a
224 x 224 view, 29 points); deletion replaces them with zeros after normalisation (the
dataset mean), insertion starts from the image blurred by a Gaussian (kernel 11, sigma 5,
on the normalised image) and puts the original pixels back. AUC is the trapezoid area
over [0, 1], as RISE's ``auc``. Computed for the top class by default (``rise_labels``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

import numpy as np

from ..engine.perturbation import PerturbationEngine
from ..engine.results import Explanation, paint

__all__ = [
    "Faithfulness", "PixelFaithfulness", "faithfulness", "faithfulness_of", "ranking", "auc",
    "hidden_counts", "rise_curves", "RISE_STEP", "RANDOM_ORDERS", "ranked_methods",
]

RANDOM_ORDERS = 3
"""Random orders averaged for the baseline by default."""
RISE_STEP = 224 * 8
"""Pixels changed per step in the RISE protocol (its evaluation code's ``step``)."""


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under ``y`` over ``x`` (x in [0, 1])."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def ranking(scores: np.ndarray) -> np.ndarray:
    """Superpixel ids by score, highest first; ties by id (a stable sort)."""
    return np.argsort(-np.asarray(scores, np.float64), kind="stable")


def hidden_counts(n_segments: int, steps: int | None = None) -> np.ndarray:
    """Superpixels hidden at each step: 0..M one by one, or ``round(i * M / steps)`` for i = 0..steps."""
    m = int(n_segments)
    if steps is None or int(steps) >= m:
        return np.arange(m + 1)
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1 (or None: one superpixel per step), got {steps}")
    return np.unique(np.round(np.arange(int(steps) + 1) * m / int(steps)).astype(np.int64))


def _prefix_masks(order: np.ndarray, hidden: np.ndarray, m: int) -> np.ndarray:
    """(len(hidden), M) bool: True where superpixel ``order[j]`` is among the first k."""
    rank = np.empty(m, np.int64)
    rank[order] = np.arange(m)
    return rank[None, :] < hidden[:, None]


@dataclass(frozen=True)
class PixelFaithfulness:
    """The RISE pixel protocol's curves for one class (28 steps of 224 x 8 pixels on 224 x 224)."""

    label: int
    x: np.ndarray  # (S+1,) fraction of pixels changed
    deletion: np.ndarray  # (S+1,) class probability, pixels set to the zero substrate
    insertion: np.ndarray  # (S+1,) class probability, pixels put back on the blurred image
    deletion_auc: float
    insertion_auc: float
    step: int  # pixels per step
    source: str  # "heatmap" (a pixel map) or "superpixels" (scores painted, ties by pixel index)


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion for one method and class, with their random-order baselines."""

    label: int
    n_segments: int
    hidden: np.ndarray  # (S+1,) superpixels hidden (deletion) or revealed (insertion) at each step
    deletion: np.ndarray  # (S+1,) class probability
    insertion: np.ndarray
    deletion_auc: float  # lower is better
    insertion_auc: float  # higher is better
    random_deletion: np.ndarray  # (S+1,) mean over the random orders
    random_insertion: np.ndarray
    random_deletion_auc: float
    random_insertion_auc: float
    random_orders: int
    seed: int
    pixel: PixelFaithfulness | None = None  # the RISE protocol, when computed for this class

    @property
    def x(self) -> np.ndarray:
        """Fraction of superpixels hidden (deletion) or revealed (insertion) at each step."""
        return np.asarray(self.hidden, np.float64) / max(self.n_segments, 1)

    @property
    def deletion_gain(self) -> float:
        """How far below chance the deletion AUC is (positive: better than a random order)."""
        return float(self.random_deletion_auc - self.deletion_auc)

    @property
    def insertion_gain(self) -> float:
        """How far above chance the insertion AUC is (positive: better than a random order)."""
        return float(self.insertion_auc - self.random_insertion_auc)


def ranked_methods(explanation: Explanation) -> tuple[str, ...]:
    """The methods of ``explanation`` whose results rank the superpixels (faithfulness applies)."""
    return tuple(m for m in explanation.methods
                 if any(hasattr(r, "vector") and getattr(type(r), "ranked", True)
                        for r in explanation.results[m].values()))


def _engine_for(explanation: Explanation, classifier, **kwargs) -> PerturbationEngine:
    """An engine on the explanation's view, superpixels and fill (``progress``, ``cancel``)."""
    fill = explanation.settings.get("fill", "mean")
    return PerturbationEngine(explanation.image, explanation.segmentation, classifier, fill, **kwargs)


def faithfulness_of(
    engine: PerturbationEngine,
    results: Mapping[str, Mapping[int, object]],
    *,
    steps: int | None = None,
    random_orders: int = RANDOM_ORDERS,
    seed: int = 0,
) -> dict[str, dict[int, Faithfulness]]:
    """Deletion/insertion of each ranked result in ``results[method][label]``, through ``engine``.

    Every coalition of every method, class and random order goes to the engine in one
    call, so they are batched together and each distinct one runs once.
    """
    if not isinstance(random_orders, (int, np.integer)) or not 1 <= random_orders <= 100:
        raise ValueError(f"random_orders must be an integer in [1, 100], got {random_orders!r}")
    m = engine.n_segments
    hidden = hidden_counts(m, steps)
    n = len(hidden)
    rng = np.random.default_rng(seed)
    chance = [rng.permutation(m) for _ in range(int(random_orders))]
    blocks: list[np.ndarray] = []
    for order in chance:
        prefix = _prefix_masks(order, hidden, m)
        blocks += [~prefix, prefix]  # deletion keeps the rest; insertion keeps the prefix
    jobs = []
    for method, per_label in results.items():
        for label, result in per_label.items():
            if not (hasattr(result, "vector") and getattr(type(result), "ranked", True)):
                continue
            scores = np.asarray(result.vector(m), np.float64)
            if scores.shape != (m,) or not np.all(np.isfinite(scores)):
                raise ValueError(f"{method}'s scores for class {label} are not {m} finite numbers")
            prefix = _prefix_masks(ranking(scores), hidden, m)
            jobs.append((method, int(label), len(blocks)))
            blocks += [~prefix, prefix]
    if not jobs:
        return {}
    probs = engine.evaluate(np.concatenate(blocks))

    def curve(block: int, label: int) -> np.ndarray:
        return probs[block * n : (block + 1) * n, label].astype(np.float64)

    x = hidden / max(m, 1)
    out: dict[str, dict[int, Faithfulness]] = {}
    baselines: dict[int, tuple] = {}
    for method, label, block in jobs:
        if label not in baselines:
            dels = [curve(2 * i, label) for i in range(len(chance))]
            ins = [curve(2 * i + 1, label) for i in range(len(chance))]
            baselines[label] = (np.mean(dels, axis=0), np.mean(ins, axis=0),
                                float(np.mean([auc(x, d) for d in dels])), float(np.mean([auc(x, c) for c in ins])))
        rd, ri, rd_auc, ri_auc = baselines[label]
        d, i = curve(block, label), curve(block + 1, label)
        out.setdefault(method, {})[label] = Faithfulness(
            label=label, n_segments=m, hidden=hidden.copy(), deletion=d, insertion=i,
            deletion_auc=auc(x, d), insertion_auc=auc(x, i), random_deletion=rd, random_insertion=ri,
            random_deletion_auc=rd_auc, random_insertion_auc=ri_auc, random_orders=int(random_orders), seed=int(seed))
    return out


# -- the RISE pixel protocol -----------------------------------------------------------------
def _rise_blur(x: np.ndarray, klen: int = 11, nsig: float = 5.0) -> np.ndarray:
    """RISE's ``blur``: a per-channel Gaussian (its ``gkern``) by zero-padded convolution."""
    import torch
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((klen, klen))
    delta[klen // 2, klen // 2] = 1
    k = gaussian_filter(delta, nsig)
    kern = np.zeros((3, 3, klen, klen), np.float32)
    for c in range(3):
        kern[c, c] = k
    with torch.no_grad():
        out = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(kern), padding=klen // 2)
    return out.numpy()


def rise_curves(classifier, view: np.ndarray, saliency: np.ndarray, label: int, *, step: int = RISE_STEP,
                engine: PerturbationEngine | None = None, source: str = "heatmap") -> PixelFaithfulness:
    """The RISE deletion and insertion curves of ``saliency`` (H, W) for ``label`` on ``view``."""
    import time

    x0 = classifier.preprocessing.normalise(np.asarray(view, np.uint8)[None])  # (1, 3, H, W)
    h, w = x0.shape[2:]
    saliency = np.asarray(saliency, np.float64)
    if saliency.shape != (h, w):
        raise ValueError(f"saliency map {saliency.shape} does not match the view ({h}, {w})")
    if not np.all(np.isfinite(saliency)):
        raise ValueError("the saliency map has NaN or infinite values")
    hw = h * w
    n_steps = (hw + step - 1) // step
    order = np.argsort(-saliency.ravel(), kind="stable")
    rank = np.empty(hw, np.int64)
    rank[order] = np.arange(hw)
    changed = (rank[None, :] < (np.arange(n_steps + 1) * step)[:, None]).reshape(n_steps + 1, 1, h, w)
    substrate = np.zeros_like(x0)
    blurred = _rise_blur(x0)
    deletion_in = np.where(changed, substrate, x0).astype(np.float32)
    insertion_in = np.where(changed, x0, blurred).astype(np.float32)
    t0, probs = time.perf_counter(), []
    batch = classifier.batch_size
    cancel = engine.cancel if engine is not None else None
    for stack in (deletion_in, insertion_in):
        for start in range(0, len(stack), batch):
            if engine is not None:
                engine.check_cancelled()
            probs.append(classifier.forward_normalised(stack[start : start + batch], cancel=cancel)[:, int(label)])
    curves = np.concatenate(probs).astype(np.float64)
    if engine is not None:
        engine.charge(2 * (n_steps + 1), time.perf_counter() - t0)
    x = np.minimum(np.arange(n_steps + 1) * step, hw) / hw
    d, i = curves[: n_steps + 1], curves[n_steps + 1 :]
    # RISE's auc(arr) = (sum - first/2 - last/2) / (len - 1): the trapezoid over uniform steps.
    return PixelFaithfulness(label=int(label), x=x, deletion=d, insertion=i,
                             deletion_auc=float((d.sum() - d[0] / 2 - d[-1] / 2) / n_steps),
                             insertion_auc=float((i.sum() - i[0] / 2 - i[-1] / 2) / n_steps),
                             step=int(step), source=source)


def _pixel_map(result, segments: np.ndarray) -> tuple[np.ndarray, str]:
    heatmap = getattr(result, "heatmap", None)
    if heatmap is not None and np.shape(heatmap) == segments.shape:
        return np.asarray(heatmap, np.float64), "heatmap"
    return paint(segments, result.vector(int(segments.max()) + 1)), "superpixels"


# -- on an Explanation -----------------------------------------------------------------------
def faithfulness(
    explanation: Explanation,
    classifier=None,
    methods: Iterable[str] | None = None,
    *,
    labels: Iterable[int] | None = None,
    steps: int | None = None,
    random_orders: int = RANDOM_ORDERS,
    seed: int = 0,
    rise_labels: Iterable[int] | None = None,
    engine: PerturbationEngine | None = None,
) -> dict[str, dict[int, Faithfulness]]:
    """Score a computed, stored or loaded ``explanation`` by deletion and insertion.

    ``classifier`` must be the model that was explained (its ``model_id`` is checked).
    ``methods`` default to every ranked method of the explanation, ``labels`` to its top
    classes; ``rise_labels`` (default: the top class; ``()`` for none) also get the RISE
    pixel protocol. ``engine`` reuses an engine of the same image (``explain`` passes its
    own, so passes it already made are free); otherwise one is made with the
    explanation's fill.
    """
    if classifier is None:
        from ..models import load_classifier

        classifier = load_classifier()
    if classifier.model_id != explanation.model_id:
        raise ValueError(f"the explanation is of model {explanation.model_id!r}; this classifier is "
                         f"{classifier.model_id!r}: faithfulness must be measured on the model that was explained")
    available = ranked_methods(explanation)
    chosen = available if methods is None else tuple(dict.fromkeys([methods] if isinstance(methods, str) else methods))
    for method in chosen:
        if method not in available:
            why = "it has no results here" if method not in explanation.results else "its results do not rank superpixels"
            raise ValueError(f"no faithfulness for {method!r}: {why} (ranked methods here: {', '.join(available) or 'none'})")
    wanted = explanation.labels if labels is None else tuple(int(c) for c in labels)
    unknown = set(wanted) - set(explanation.labels)
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} were not explained (explained: {list(explanation.labels)})")
    rise = explanation.labels[:1] if rise_labels is None else tuple(int(c) for c in rise_labels)
    engine = engine or _engine_for(explanation, classifier)
    subset = {m: {c: r for c, r in explanation.results[m].items() if c in wanted} for m in chosen}
    out = faithfulness_of(engine, subset, steps=steps, random_orders=random_orders, seed=seed)
    for method, per_label in out.items():
        for label, scores in per_label.items():
            if label in rise:
                saliency, source = _pixel_map(explanation.results[method][label], explanation.segmentation.labels)
                pixel = rise_curves(classifier, explanation.image, saliency, label, engine=engine, source=source)
                per_label[label] = replace(scores, pixel=pixel)
    return out
