"""Anchors (Ribeiro et al. 2018) for every top-k class: alibi's beam search, our samples.

alibi's ``AnchorBaseBeam`` does the search (KL-LUCB bandit, beam, precision bounds,
coverage), unchanged. What it is fed replaces ``AnchorImageSampler``'s perturbation path:
``_CoalitionSampler`` answers the same ``(anchor, num_samples, compute_labels)`` calls in
coalition space, evaluates coalitions through the engine (memoised, counted, cancellable)
and renders images only for the few examples kept at the end.

Samples are shared, which is where the passes are saved:

* alibi's sampler hides each superpixel outside the anchor with probability ``p_sample``;
  for ``p_sample = 0.5`` that is lime's uniform pool conditioned on the anchor being on, so
  pool rows whose anchor superpixels are all on are valid samples for that anchor.
* A fresh row drawn with a forced set ``F`` (and every other superpixel kept with
  probability ``1 - p_sample``) is a valid sample for any candidate ``B`` containing ``F``
  once conditioned on ``B`` being on. Every row drawn is kept in one ``_RowStore`` shared by
  the per-class searches, which all start from the same one-superpixel candidates, so the
  later classes find most of their samples already evaluated.
* Within one search a row is never counted twice for a candidate: rows alibi already counts
  for it (drawn for it, or inherited from its parent anchor) are skipped, so precision is
  always estimated from distinct samples.

Same engine, labels, pool and seed: same anchors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import param

from ..engine.perturbation import PerturbationEngine
from .base import Explainer

__all__ = ["AnchorExplainer", "AnchorResult", "explain_anchors", "class_ranks", "TOP1", "TOPK", "NO_TARGET"]

TOP1, TOPK, NO_TARGET = "top-1", "top-k", "none"
_COVERAGE_STREAM = 0x0C0FE  # seeds the coverage set apart from the sampling stream


@dataclass(frozen=True)
class AnchorResult:
    """An anchor: superpixels that, kept, hold the prediction with ``precision``."""

    label: int
    target: str  # "top-1", "top-k" or "none": what "holding the prediction" means for this class
    segments: tuple[int, ...]
    precision: float
    coverage: float
    examples: np.ndarray  # (k, H, W, 3) uint8 perturbed images that keep the prediction
    counter_examples: np.ndarray  # (k, H, W, 3) uint8 perturbed images that do not
    found: bool  # False: no anchor met the precision threshold (best effort returned)
    # (M,) region of each superpixel in the search: perturbations keep or hide whole regions
    # (``AnchorExplainer.regions``); None: every superpixel is a region of its own.
    region_of: np.ndarray | None = None
    # Said beside the anchor in the pane: why the class has the target it has (a class outside
    # the top-k), why no search was run (target "none"), or that the anchor is empty and why it
    # says nothing (``empty``); "" for an ordinary anchor of a top-k class.
    note: str = ""

    ranked: ClassVar[bool] = False  # a set of superpixels, not a ranking

    @property
    def empty(self) -> bool:
        """The anchor met the threshold with no superpixel at all: the target holds whatever is
        hidden, so the anchor says nothing about the image (derived, so stored results have it too)."""
        return self.found and not self.segments and self.target != NO_TARGET

    @property
    def status(self) -> str:
        """One word for the table: "found", "empty", "best effort" (below the threshold) or "not searched"."""
        if self.target == NO_TARGET:
            return "not searched"
        if self.empty:
            return "empty"
        return "found" if self.found else "best effort"

    @property
    def message(self) -> str:
        """What to say beside the anchor: ``note``, or for an empty anchor stored without one, why it is empty."""
        if self.note or not self.empty:
            return self.note
        return ("empty anchor: the class holds its target with every superpixel outside the anchor hidden at "
                "random and no superpixel kept, so no region is needed and this anchor says nothing about the "
                "image; try another fill or a smaller top-k")

    def vector(self, n_segments: int) -> np.ndarray:
        """0/1 membership of each superpixel in the anchor."""
        member = np.zeros(n_segments, np.float64)
        member[list(self.segments)] = 1.0
        return member

    def top_set(self, k: int) -> frozenset[int]:
        """The anchor itself, whatever ``k``."""
        return frozenset(int(s) for s in self.segments)


class AnchorExplainer(Explainer):
    """Anchors (Ribeiro et al. 2018) through ``alibi``'s AnchorImage search, on the engine.

    For the top class the anchor keeps it the top class; for the others it keeps the class
    within the top-k (``top_k``) of the perturbed image's prediction. A class asked for outside
    the top-k (``explain(labels=...)``) has the same "within the top-k" target, which the image
    itself misses: its anchor is what, kept, would bring the class into the top-k (usually
    none is found, and its precision says how far it is). With ``top_k=0`` no such target
    exists for a class that is not the top class: its result says so (``target="none"``).
    """

    method = "anchors"
    label = "Anchors"
    description = ("The smallest set of regions that, kept while the rest is hidden at random, holds the "
                   "prediction with the stated precision; coverage is how often such a perturbation keeps them.")
    caption = "what is enough to keep the prediction"
    result_type = AnchorResult
    order = 20
    interactive = {"n_examples": 4, "max_anchor_size": 3}
    rehearsal = {"batch_size": 20, "coverage_samples": 100, "n_examples": 1}
    card_parameters = ("threshold", "regions", "p_sample", "max_anchor_size", "n_examples")
    warm_imports = ("alibi.explainers.anchors.anchor_base",)

    threshold = param.Number(0.95, bounds=(0.5, 1.0), doc="Minimum precision an anchor must reach.")
    p_sample = param.Number(0.5, bounds=(0.05, 0.95), doc="Probability that a superpixel outside the anchor is hidden.")
    delta = param.Number(0.1, bounds=(0.01, 0.5), doc="Significance for the precision bound (1 - confidence).")
    tau = param.Number(0.15, bounds=(0.01, 0.5), doc="Bandit tolerance when choosing candidates.")
    batch_size = param.Integer(100, bounds=(10, 1000), doc="Coalitions sampled per bandit step.")
    regions = param.Integer(10, bounds=(2, 200), allow_None=True, doc=(
        "Search over about this many regions, each a union of neighbouring superpixels of the shared "
        "segmentation (alibi's classic image setting is slic with ~10 segments); None: over the superpixels "
        "themselves, which costs thousands of passes per class on ~35 superpixels."))
    max_anchor_size = param.Integer(6, bounds=(1, 64), allow_None=True, doc=(
        "Largest anchor (regions, or superpixels with regions=None); None: no limit. "
        "A class whose anchor needs more comes back with found=False."))
    coverage_samples = param.Integer(2000, bounds=(100, 100000), doc="Samples used to estimate coverage (no model calls).")
    n_examples = param.Integer(4, bounds=(0, 20), doc="Example perturbed images kept per class.")

    def needs_pool(self) -> bool:
        # The uniform pool is alibi's per-superpixel law only at p_sample 0.5 without regions.
        return self.regions is None and self.p_sample == 0.5

    def compute(self, engine, labels, *, seed, pool, top_k):
        from ..engine.segmentation import merge_regions

        region_of = None
        if self.regions is not None:
            region_of = merge_regions(engine.image, engine.segmentation.labels, self.regions)
        return explain_anchors(engine, labels, top_k=top_k, seed=seed, pool=pool, region_of=region_of, **{
            k: getattr(self, k) for k in ("threshold", "p_sample", "delta", "tau", "batch_size",
                                         "max_anchor_size", "coverage_samples", "n_examples")})


class _DropMisleadingWarning(logging.Filter):
    """alibi's 'no anchor' warning talks about tabular bins; ``found=False`` says it for images."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Could not find an anchor satisfying")


logging.getLogger("alibi.explainers.anchors.anchor_base").addFilter(_DropMisleadingWarning())


def class_ranks(probs: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """(n, C) probabilities -> (n, len(labels)) rank of each label (0 = top; ties by index, as ``top_k_of``)."""
    probs = np.asarray(probs)
    out = np.empty((len(probs), len(labels)), np.int32)
    for j, c in enumerate(labels):
        p = probs[:, [c]]
        out[:, j] = (probs > p).sum(1) + (probs[:, :c] == p).sum(1)
    return out


class _RowStore:
    """Every coalition drawn for the anchor searches of one image, with what it was drawn for.

    Row ``i`` was drawn with the superpixels of stratum ``strata[i]`` forced on and each other
    superpixel kept with probability ``1 - p_sample`` (stratum 0: nothing forced). ``ranks``
    holds, per row, the rank of every explained class, so a label costs no model call.
    """

    def __init__(self, engine: PerturbationEngine, labels: Sequence[int], p_sample: float,
                 rng: np.random.Generator, pool=None):
        self.engine = engine
        self.labels = [int(c) for c in labels]
        self.p_sample = float(p_sample)
        self.rng = rng
        m = engine.n_segments
        self.rows = np.zeros((0, m), bool)
        self.strata = np.zeros(0, np.int32)
        self.ranks = np.zeros((0, len(self.labels)), np.int32)
        self._stratum_masks = np.zeros((1, m), bool)  # stratum s forces _stratum_masks[s] on
        self._stratum_ids: dict[bytes, int] = {self._stratum_masks[0].tobytes(): 0}
        self.fresh = 0
        if pool is not None:
            coalitions, probs = pool
            coalitions = np.asarray(coalitions, bool)
            if coalitions.ndim != 2 or coalitions.shape[1] != m or len(probs) != len(coalitions):
                raise ValueError(f"pool of shape {coalitions.shape} does not fit {m} superpixels")
            # lime's row 0 is the unperturbed image, not a sample: leave it out
            self._append(coalitions[1:], 0, class_ranks(np.asarray(probs)[1:], self.labels))

    def _append(self, rows: np.ndarray, stratum: int, ranks: np.ndarray) -> np.ndarray:
        start = len(self.rows)
        # column-major: eligible() reads whole superpixel columns
        self.rows = np.asfortranarray(np.concatenate([self.rows, rows]))
        self.strata = np.concatenate([self.strata, np.full(len(rows), stratum, np.int32)])
        self.ranks = np.concatenate([self.ranks, ranks])
        return np.arange(start, len(self.rows))

    def _stratum(self, mask: np.ndarray) -> int:
        key = mask.tobytes()
        if key not in self._stratum_ids:
            self._stratum_ids[key] = len(self._stratum_masks)
            self._stratum_masks = np.concatenate([self._stratum_masks, mask[None]])
        return self._stratum_ids[key]

    def eligible(self, anchor: tuple[int, ...]) -> np.ndarray:
        """Ids (in drawing order) of rows that are samples of 'anchor kept, rest random'."""
        mask = np.zeros(self.rows.shape[1], bool)
        mask[list(anchor)] = True
        ok_strata = ~(self._stratum_masks & ~mask).any(axis=1)  # forced set within the anchor
        keep = ok_strata[self.strata]
        for f in anchor:
            keep &= self.rows[:, f]
        return np.flatnonzero(keep)

    def draw(self, anchor: tuple[int, ...], n: int) -> np.ndarray:
        """``n`` fresh rows with ``anchor`` forced on, evaluated through the engine; their ids."""
        rows = self.rng.random((n, self.rows.shape[1])) >= self.p_sample
        mask = np.zeros(self.rows.shape[1], bool)
        mask[list(anchor)] = True
        rows[:, mask] = True
        probs = self.engine.evaluate(rows)
        self.fresh += n
        return self._append(rows, self._stratum(mask), class_ranks(probs, self.labels))


class _RegionEngine:
    """The engine seen in region space: a coalition of regions is the union of their superpixels.

    Evaluations still go through the engine (same fill, memo, counts and cancellation).
    """

    def __init__(self, engine: PerturbationEngine, region_of: np.ndarray):
        self.engine = engine
        self.region_of = np.asarray(region_of, np.intp)
        self.n_segments = int(self.region_of.max()) + 1
        self.image = engine.image

    def expand(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows, bool)[:, self.region_of]

    def evaluate(self, rows: np.ndarray) -> np.ndarray:
        return self.engine.evaluate(self.expand(rows))

    def render(self, rows: np.ndarray) -> np.ndarray:
        return self.engine.render(self.expand(rows))

    def check_cancelled(self) -> None:
        self.engine.check_cancelled()


class _CoalitionSampler:
    """``AnchorImageSampler``'s call contract on the shared store, for one class and target.

    ``sampler((i, anchor), n)`` returns ``[covered_true, covered_false, labels, data, -1.0, i]``
    with ``data`` the (n, M) 0/1 coalitions and ``labels`` whether the target held on each;
    ``compute_labels=False`` returns ``[data]`` drawn from the perturbation distribution
    (alibi's coverage set), with this sampler's own seeded generator.
    """

    def __init__(self, store: _RowStore, position: int, top_n: int, seed: int, n_covered_ex: int):
        self.store = store
        self.position = position  # column of this class in store.ranks
        self.top_n = top_n  # the target holds when the class's rank < top_n
        self.p_sample = store.p_sample
        self.n_covered_ex = n_covered_ex
        self.coverage_rng = np.random.default_rng([seed, _COVERAGE_STREAM])
        self.beam = None
        self.handed: list[int] = []  # store id of alibi's sample i (alibi appends in call order)
        self.handed_for: list[tuple[int, ...]] = []

    def bind(self, beam) -> None:
        self.beam = beam

    def _choose_superpixels(self, num_samples: int, p_sample: float = 0.5) -> np.ndarray:
        # alibi's version uses the global np.random (and ignores p_sample for coverage)
        return (self.coverage_rng.random((num_samples, self.store.rows.shape[1])) >= p_sample).astype(np.uint8)

    def holds(self, ids: np.ndarray) -> np.ndarray:
        return self.store.ranks[ids, self.position] < self.top_n

    def counted(self, anchor: tuple[int, ...]) -> set[int]:
        """Store ids alibi already counts for ``anchor`` in this search (inherited or drawn)."""
        state = self.beam.state
        ids = {self.handed[i] for i in state["t_idx"].get(anchor, ())}
        ids.update(self.handed[i] for i in range(state["current_idx"], len(self.handed))
                   if self.handed_for[i] == anchor)  # handed in this batch, not yet stored
        return ids

    def __call__(self, anchor, num_samples: int, compute_labels: bool = True):
        self.store.engine.check_cancelled()
        features = tuple(sorted(int(f) for f in anchor[1]))
        if not compute_labels:
            data = self._choose_superpixels(num_samples, self.p_sample)
            data[:, list(features)] = 1
            return [data]
        ids = self.store.eligible(features)
        if len(ids):
            seen = np.zeros(len(self.store.rows), bool)
            seen[list(self.counted(features))] = True
            ids = ids[~seen[ids]][:num_samples]
        if len(ids) < num_samples:
            ids = np.concatenate([ids, self.store.draw(features, num_samples - len(ids))])
        self.handed.extend(int(i) for i in ids)
        self.handed_for.extend([features] * len(ids))
        labels = self.holds(ids)
        data = self.store.rows[ids].astype(np.uint8)
        covered_true = data[labels][: self.n_covered_ex]
        covered_false = data[~labels][: self.n_covered_ex]
        return [covered_true, covered_false, labels.astype(int), data, -1.0, anchor[0]]

    def samples_of(self, anchor: tuple[int, ...]) -> np.ndarray:
        """Store ids of the samples behind ``anchor``'s reported precision, in drawing order."""
        return np.asarray([self.handed[i] for i in sorted(self.beam.state["t_idx"].get(anchor, ()))], np.int64)


def _search(sampler: _CoalitionSampler, *, threshold, delta, tau, batch_size, max_anchor_size,
            coverage_samples) -> dict:
    from alibi.explainers.anchors.anchor_base import AnchorBaseBeam

    # alibi preallocates batch_size * sample_cache_size rows and grows them as needed
    beam = AnchorBaseBeam(samplers=[sampler], sample_cache_size=max(1, 2000 // batch_size), cache_margin=batch_size)
    sampler.bind(beam)
    return beam.anchor_beam(
        desired_confidence=threshold, delta=delta, epsilon=tau, batch_size=batch_size,
        coverage_samples=coverage_samples, beam_size=1, max_anchor_size=max_anchor_size,
        min_samples_start=batch_size,
    )


def _examples(engine: PerturbationEngine, sampler: _CoalitionSampler, ids: np.ndarray,
              n_examples: int) -> tuple[np.ndarray, np.ndarray]:
    empty = np.zeros((0, *engine.image.shape), np.uint8)
    if n_examples == 0 or len(ids) == 0:
        return empty, empty.copy()
    holds = sampler.holds(ids)
    chosen = [ids[holds][:n_examples], ids[~holds][:n_examples]]
    return tuple(engine.render(sampler.store.rows[c]) if len(c) else empty.copy() for c in chosen)


_DEFAULTS = AnchorExplainer.param.values()  # one source of truth for the function's defaults too


def explain_anchors(
    engine: PerturbationEngine,
    labels: Sequence[int],
    *,
    top_k: int,
    seed: int,
    pool: tuple[np.ndarray, np.ndarray] | None,
    threshold: float = _DEFAULTS["threshold"],
    p_sample: float = _DEFAULTS["p_sample"],
    delta: float = _DEFAULTS["delta"],
    tau: float = _DEFAULTS["tau"],
    batch_size: int = _DEFAULTS["batch_size"],
    max_anchor_size: int | None = _DEFAULTS["max_anchor_size"],
    coverage_samples: int = _DEFAULTS["coverage_samples"],
    n_examples: int = _DEFAULTS["n_examples"],
    share: bool = True,
    region_of: np.ndarray | None = None,
) -> dict[int, AnchorResult]:
    """An anchor for each class in ``labels`` (the top-k, most probable first, and any other class).

    Target ("the prediction holds") on a perturbed image, with ties broken by class index:

    * the top class of the image: it stays the top class (argmax == c), target ``"top-1"``;
    * every other class: it is within the top ``top_k`` classes (its rank among all
      classes is < ``top_k``), target ``"top-k"``. For a class ranked below the top-k on the
      image the target does not hold on the image itself: the search looks for what, kept,
      brings the class into the top-k, and ``note`` says so;
    * with ``top_k=0``, a class that is not the top class has no target: no search is run
      and the result (``target="none"``, ``found=False``, no superpixels) says why in ``note``.

    A perturbed image keeps every anchor superpixel and hides each other superpixel with
    probability ``p_sample`` (hidden superpixels show the engine's fill). ``precision`` is the
    fraction of such samples on which the target held (alibi's estimate from the samples
    behind the anchor); ``coverage`` the fraction of ``coverage_samples`` perturbations (no
    model calls) that keep the anchor. ``segments`` lists the anchor in the order alibi added
    the superpixels. An empty anchor (the target holds whatever is hidden) is reported with
    ``found=True``, ``coverage=1`` and its sampled precision (``empty`` and ``status`` say so), and
    ``note`` says why it says nothing about the image: the target, the fill, and whether the class
    survives even every superpixel hidden (one more pass, memoised); when no anchor reaches
    ``threshold`` the best candidate comes back with ``found=False``.

    ``pool`` is the shared uniform pool ``(coalitions, probs)`` (lime's, row 0 unperturbed);
    it is used only when ``p_sample == 0.5``, the distribution it was drawn from.
    ``share=False`` ignores the pool and gives each class its own samples (a baseline for
    benchmarks; the anchors are valid either way).

    ``region_of`` (the region of each superpixel, see ``merge_regions``) makes the search
    run over regions, each a union of superpixels: a perturbation keeps or hides whole
    regions, and the anchor is a set of regions (``segments`` lists their superpixels,
    region by region in the order alibi added them; ``region_of`` is kept on the result).
    This is alibi's classic setting (slic, ~10 segments): the bandit's cost grows with the
    number of candidates, so ~35 quickshift superpixels cost thousands of passes per class,
    10 regions a few hundred. The uniform pool only fits the per-superpixel distribution,
    so it is not used with regions.
    """
    labels = [int(c) for c in labels]
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not 0.0 < p_sample < 1.0:
        raise ValueError(f"p_sample must be in (0, 1), got {p_sample}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if max_anchor_size is not None and max_anchor_size < 1:
        raise ValueError(f"max_anchor_size must be >= 1 or None, got {max_anchor_size}")
    if region_of is not None:
        region_of = np.asarray(region_of, np.int32)
        if region_of.shape != (engine.n_segments,) or region_of.min() < 0:
            raise ValueError(f"region_of needs one region id per superpixel ({engine.n_segments}), "
                             f"got shape {region_of.shape}")
        if len(np.unique(region_of)) == engine.n_segments:  # one superpixel per region: no grouping
            region_of = None
    search_engine = engine if region_of is None else _RegionEngine(engine, region_of)
    use_pool = pool if share and p_sample == 0.5 and region_of is None else None
    rng = np.random.default_rng(seed)
    store = _RowStore(search_engine, labels, p_sample, rng, use_pool)
    results: dict[int, AnchorResult] = {}
    ranks = class_ranks(engine.predict_full()[None], labels)[0] if labels else []
    for position, label in enumerate(labels):
        if not share and position:
            store = _RowStore(search_engine, labels, p_sample, rng)
        rank = int(ranks[position])
        if rank > 0 and top_k < 1:
            results[label] = _no_target(engine, label, rank, region_of)
            continue
        target, top_n = (TOP1, 1) if rank == 0 else (TOPK, int(top_k))
        note = "" if rank < top_n else (
            f"ranked {rank + 1} on the image, outside the top {top_n}: the anchor is what, kept, would bring "
            f"the class into the top {top_n}")
        sampler = _CoalitionSampler(store, position, top_n, seed, n_covered_ex=max(n_examples, 1))
        found = _search(sampler, threshold=threshold, delta=delta, tau=tau, batch_size=batch_size,
                        max_anchor_size=max_anchor_size, coverage_samples=coverage_samples)
        features = tuple(int(f) for f in found["feature"])
        if features:
            precision, coverage = float(found["precision"][-1]), float(found["coverage"][-1])
        else:  # alibi returns the empty anchor only when it already meets the threshold
            precision, coverage = float(np.ravel(found["all_precision"])[0]), 1.0
        examples, counter = _examples(search_engine, sampler, sampler.samples_of(tuple(sorted(features))),
                                      n_examples)
        if region_of is not None:  # regions -> their superpixels, region by region
            features = tuple(int(s) for r in features for s in np.flatnonzero(region_of == r))
        if found["success"] and not features:
            empty = _empty_note(search_engine, label, target, top_n, precision, p_sample, getattr(engine, "fill", None))
            note = f"{note}; {empty}" if note else empty
        results[label] = AnchorResult(
            label=label, target=target, segments=features, precision=precision, coverage=coverage,
            examples=examples, counter_examples=counter, found=bool(found["success"]), region_of=region_of,
            note=note,
        )
    return results


_FILL_WORDS = {"mean": "each superpixel's mean colour", "blur": "a blur of the image", "constant": "one flat colour"}


def _empty_note(search_engine, label: int, target: str, top_n: int, precision: float, p_sample: float,
                fill: str | None) -> str:
    """Why an empty anchor says nothing, in the run's own terms (target, fill, what hiding all does).

    The image with every superpixel hidden is evaluated (one memoised pass, only for an empty anchor)
    so the note says whether the class survives even that, or only random partial hiding."""
    from ..engine.perturbation import FILLS

    holds = "stays the top class" if target == TOP1 else f"stays within the top {top_n}"
    nothing = np.zeros((1, search_engine.n_segments), bool)
    rank = int(class_ranks(search_engine.evaluate(nothing), [label])[0, 0])
    if rank < top_n:
        how = "even with every superpixel hidden"
    else:
        how = (f"in {precision:.0%} of perturbations that keep no superpixel and hide each with probability "
               f"{p_sample:g} (with every superpixel hidden it is ranked {rank + 1})")
    shown = f" (hidden superpixels show {_FILL_WORDS.get(fill, fill)})" if fill else ""
    others = [f for f in FILLS if f != fill]
    tries = f"another fill ({' or '.join(others)})"
    if target == TOPK:
        tries += " or a smaller top-k (with top-k 1 the class must become the top class)"
    return (f"empty anchor: the class {holds} {how}{shown}, so no region is needed and this anchor says "
            f"nothing about the image; try {tries}")


def _no_target(engine: PerturbationEngine, label: int, rank: int, region_of) -> AnchorResult:
    empty = np.zeros((0, *engine.image.shape), np.uint8)
    return AnchorResult(
        label=label, target=NO_TARGET, segments=(), precision=0.0, coverage=0.0, examples=empty,
        counter_examples=empty.copy(), found=False, region_of=region_of,
        note=(f"no anchor: the class is ranked {rank + 1}, not the top class, and with top_k=0 there is no "
              "top-k to stay within; explain it with top_k >= 1 (its target is then 'within the top-k')"))

