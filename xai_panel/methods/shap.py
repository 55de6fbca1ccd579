"""Shapley values for superpixels (KernelSHAP) and pixels (shap's Partition explainer).

Three estimators, one result type (``ShapResult``):

``"pool"``
    KernelSHAP solved on the engine's *shared* uniform coalition pool (the one LIME uses):
    no forward passes beyond f(empty coalition). See ``shap_from_pool`` for why it is valid.
``"owen"`` (default)
    shap's Partition explainer over the superpixels, grouped into a spatial hierarchy:
    Owen values, deterministic (the seed changes nothing), every model call through the
    engine. See ``shap_owen``.
``"shared"``
    KernelSHAP on the shared pool plus ``nsamples`` paired draws from the Shapley kernel,
    combined by importance sampling: LIME's passes serve SHAP too. See ``shap_shared``.
``"kernel"``
    ``shap.KernelExplainer`` over superpixel coalitions, every model call through the
    engine (memoised, batched, counted, cancellable).
``"partition"``
    shap's Partition explainer (Owen values over an axis-aligned pixel hierarchy) with a
    blur Image masker: pixel-resolution heatmaps, independent of the superpixels except
    for the per-superpixel sums it also reports.

All requested classes come from the same model evaluations in every estimator.
"""

from __future__ import annotations

import heapq
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

import numpy as np
import param
from scipy.special import gammaln

from ..engine.perturbation import PerturbationEngine
from ..engine.results import ScoreResult
from .base import Explainer

__all__ = ["ShapExplainer", "ShapResult", "explain_shap", "shap_from_pool", "shap_owen", "owen_values", "shap_shared",
           "shapley_kernel_weights", "superpixel_hierarchy", "ESTIMATORS"]

ESTIMATORS = ("owen", "shared", "kernel", "pool", "partition")

@dataclass(frozen=True)
class ShapResult(ScoreResult):
    """Shapley values for one class: per superpixel, or per pixel (``heatmap``)."""

    label: int
    values: np.ndarray  # (M,) per superpixel; for estimator "partition" the heatmap summed per superpixel
    base_value: float  # f(all superpixels hidden)
    prediction: float  # f(x)
    estimator: str
    heatmap: np.ndarray | None = None  # (H, W) pixel-resolution values (partition estimator)

    @property
    def additivity_error(self) -> float:
        """|sum(values) + base - f(x)|: zero for exact Shapley values."""
        total = float(self.heatmap.sum()) if self.heatmap is not None else float(np.sum(self.values))
        return abs(total + self.base_value - self.prediction)


class ShapExplainer(Explainer):
    """Owen or Shapley values per superpixel, or per pixel (shap's Partition explainer)."""

    method = "shap"
    label = "SHAP"
    description = ("SHAP values per superpixel (Owen values by default: Shapley values with nearby "
                   "superpixels grouped; or per pixel): red raises the class's probability, blue "
                   "lowers it; Σ is their sum, the change from 'all hidden' to the image. One colour scale for "
                   "every class, so colours compare across classes.")
    caption = "each superpixel's share of the prediction, one scale"
    result_type = ShapResult
    order = 30
    interactive = {"estimator": "owen", "nsamples": 300}
    rehearsal = {"nsamples": 16}
    reduced = {"estimator": "pool"}  # KernelSHAP on the shared pool: no passes of its own
    card_parameters = ("estimator", "nsamples")
    warm_imports = ("shap",)

    estimator = param.Selector(default="owen", objects=list(ESTIMATORS), doc=(
        "'owen': shap's Partition explainer over a spatial hierarchy of the superpixels: Owen values, exact and "
        "deterministic (no sampling; the seed changes nothing), most detail where the values are largest; "
        "'shared': KernelSHAP on the shared pool (LIME's passes) plus nsamples paired draws from the Shapley "
        "kernel, combined by importance sampling (Shapley values, sampled; more accurate than 'kernel' for the "
        "same new passes); "
        "'kernel': shap.KernelExplainer through the engine; "
        "'pool': KernelSHAP on the shared pool alone (no extra passes, a rough first look); "
        "'partition': shap's Partition explainer with a blur Image masker (pixel resolution)."))
    nsamples = param.Integer(500, bounds=(16, 50000), doc=(
        "New model evaluations for 'owen', 'shared', 'kernel' and 'partition'."))
    blur = param.Integer(32, bounds=(3, 255), doc="Blur kernel of the Image masker ('partition' only).")

    def needs_pool(self) -> bool:
        return self.estimator == "pool"

    def compute(self, engine, labels, *, seed, pool, top_k):
        return explain_shap(engine, labels, estimator=self.estimator, nsamples=self.nsamples,
                            blur=self.blur, seed=seed, pool=pool)


_DEFAULTS = ShapExplainer.param.values()  # one source of truth for the function's defaults too


# shap.KernelExplainer draws its coalitions from NumPy's *global* RNG (np.random.choice and
# np.random.permutation). We seed it for reproducibility and restore the caller's state
# afterwards; the lock keeps two of our own runs from interleaving their draws. Only the
# (cheap) sampling and regression happen under the lock: model calls run outside it, see
# ``_kernel``. Code elsewhere that draws from np.random's global state while the lock is
# held would still share the stream; nothing in xai_panel does.
_GLOBAL_RNG_LOCK = threading.Lock()


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    with _GLOBAL_RNG_LOCK:
        saved = np.random.get_state()
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(saved)


def explain_shap(
    engine: PerturbationEngine,
    labels: Iterable[int],
    *,
    estimator: str = _DEFAULTS["estimator"],
    nsamples: int = _DEFAULTS["nsamples"],
    blur: int = _DEFAULTS["blur"],
    seed: int = 0,
    pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, ShapResult]:
    """Shapley values of each class in ``labels`` for the engine's image.

    ``nsamples`` is the model-evaluation budget of ``"owen"``, ``"shared"``, ``"kernel"`` and ``"partition"`` (for
    ``"pool"`` it is the size of the pool drawn when none is given). ``blur`` is the
    Image masker's blur kernel (``"partition"`` only). Same inputs and seed, same values.
    """
    labels = [int(label) for label in labels]
    if not labels:
        return {}
    if estimator == "pool":
        if pool is None:
            from .lime import lime_pool

            pool = lime_pool(engine, int(nsamples), seed)
        return shap_from_pool(engine, labels, pool)
    if estimator == "owen":
        return shap_owen(engine, labels, int(nsamples))
    if estimator == "shared":
        if pool is None:  # no pool to share: the paired kernel draws alone
            pool = (np.zeros((0, engine.n_segments), bool), np.zeros((0, engine.classifier.num_classes)))
        return shap_shared(engine, labels, pool, int(nsamples), seed)
    if estimator == "kernel":
        return _kernel(engine, labels, int(nsamples), seed)
    if estimator == "partition":
        return _partition(engine, labels, int(nsamples), int(blur))
    raise ValueError(f"unknown SHAP estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")


# -- "pool": KernelSHAP on the shared uniform pool -------------------------------------------


def shapley_kernel_weights(sizes: np.ndarray, m: int) -> np.ndarray:
    """Shapley kernel pi(s) = (M-1) / (C(M,s) s (M-s)) for coalition sizes 0 < s < M,
    scaled so the largest is 1 (computed in logs: C(M,s) overflows float64 past M ~ 1000)."""
    s = np.asarray(sizes, np.float64)
    log_w = np.log(m - 1.0) - (gammaln(m + 1.0) - gammaln(s + 1.0) - gammaln(m - s + 1.0)) - np.log(s) - np.log(m - s)
    return np.exp(log_w - log_w.max())


def _constrained_wls(z: np.ndarray, y: np.ndarray, w: np.ndarray, total: np.ndarray) -> np.ndarray:
    """argmin_phi sum_k w_k (y_k - z_k . phi)^2 subject to sum(phi) = total, for each column of y.

    As shap does, eliminate the last variable (phi_M = total - sum of the others), which
    turns the constrained problem into an ordinary weighted least squares in M-1 unknowns.
    Solved with lstsq on sqrt(w)-scaled rows rather than the normal equations: the weights
    span orders of magnitude, and a pool can leave the system rank deficient (min-norm then).
    """
    last = z[:, -1:]
    x = z[:, :-1] - last  # (n, M-1)
    target = y - last * total[None, :]  # (n, L)
    root = np.sqrt(w)[:, None]
    head, *_ = np.linalg.lstsq(root * x, root * target, rcond=None)  # (M-1, L)
    return np.vstack([head, total[None, :] - head.sum(axis=0, keepdims=True)])  # (M, L)


def _checked_pool(engine: PerturbationEngine, pool) -> tuple[np.ndarray, np.ndarray]:
    """``(coalitions (n, M) bool, probs (n, C))`` of a pool, its shapes checked against the engine."""
    coalitions, probs = np.asarray(pool[0], bool), np.asarray(pool[1])
    m = engine.n_segments
    if coalitions.ndim != 2 or coalitions.shape[1] != m or len(probs) != len(coalitions):
        raise ValueError(f"pool must be (coalitions (n, {m}), probs (n, C)); got {coalitions.shape} and {probs.shape}")
    return coalitions, probs


def shap_from_pool(
    engine: PerturbationEngine, labels: Iterable[int], pool: tuple[np.ndarray, np.ndarray]
) -> dict[int, ShapResult]:
    """KernelSHAP as a weighted linear regression on an existing uniform coalition pool.

    KernelSHAP (Lundberg & Lee 2017, Theorem 2) defines the Shapley values of a value
    function v as the solution of

        min_phi  sum_{0<|z|<M} pi(z) (v(z) - v(0) - z . phi)^2   s.t.  sum(phi) = v(1) - v(0)

    with the Shapley kernel pi(z) = (M-1) / (C(M,|z|) |z| (M-|z|)). shap approximates the
    sum by sampling coalitions *from* pi. Our pool instead samples uniformly (each of the
    2^M coalitions with probability q = 2^-M, lime's sampler). Importance weighting by
    pi(z)/q(z) makes the sample objective an unbiased estimate of the full objective
    (Covert & Lee 2021, "Improving KernelSHAP", treat this stochastic-approximation view of
    KernelSHAP and show the resulting estimator is consistent with negligible bias); since
    q is constant, the importance weight is simply pi(|z|) up to a scale that WLS ignores.
    The empty and full coalitions have infinite kernel weight: they are the exact
    constraints (phi_0 = v(0) and efficiency), not regression rows. A pool containing every
    coalition once reproduces the exact Shapley values.

    Variance trade-off: uniform sampling concentrates sizes near M/2 (Binomial(M, 1/2)),
    where pi is smallest, and almost never draws the small and large coalitions that carry
    most of pi's mass; the few extreme-size draws that occur get large weights. So for the
    same number of evaluations this estimator is noisier than sampling from pi (shap's
    own "kernel") -- in exchange it costs one forward pass (v(0)) instead of ``nsamples``.
    Measured on three photos (EfficientNet-Lite0, quickshift, M = 36-40, top-5 classes),
    against "kernel" with 4000 evaluations: a 1000-row pool gives mean Spearman 0.56-0.75
    and relative L2 error 0.78-1.04; "kernel" with 500 evaluations 0.60-0.82 and 0.46-0.57;
    a second 4000-evaluation kernel run 0.78-0.96 and 0.17-0.24 (the reference's own noise).
    Use it as a free first look; use "kernel" when the values matter.

    Duplicate rows count as separate draws (Monte Carlo multiplicity). Rows with an
    invalid shape are rejected. Costs exactly one engine evaluation (the empty coalition,
    often already memoised) plus the full image's (memoised by the pool's first row).
    """
    coalitions, probs = _checked_pool(engine, pool)
    labels = [int(label) for label in labels]
    m = engine.n_segments
    engine.check_cancelled()
    full = engine.predict_full()[labels].astype(np.float64)
    empty = engine.evaluate(np.zeros((1, m), bool))[0, labels].astype(np.float64)
    total = full - empty
    if m == 1:
        values = total[None, :]
    else:
        sizes = coalitions.sum(axis=1)
        inner = (sizes > 0) & (sizes < m)
        if not inner.any():
            raise ValueError("the pool has no coalition with 0 < size < M: nothing to regress on")
        z = coalitions[inner].astype(np.float64)
        y = probs[inner][:, labels].astype(np.float64) - empty[None, :]
        values = _constrained_wls(z, y, shapley_kernel_weights(sizes[inner], m), total)
    return {
        label: ShapResult(label=label, values=values[:, j].copy(), base_value=float(empty[j]),
                          prediction=float(full[j]), estimator="pool")
        for j, label in enumerate(labels)
    }


# -- "shared": the pool plus paired draws from the Shapley kernel ------------------------------


def _log_binom(m: int, s: np.ndarray) -> np.ndarray:
    return gammaln(m + 1.0) - gammaln(s + 1.0) - gammaln(m - s + 1.0)


def kernel_size_distribution(m: int) -> np.ndarray:
    """P(|z| = s) for s = 1..M-1 when coalitions are drawn from the Shapley kernel."""
    s = np.arange(1, m, dtype=np.float64)
    p = (m - 1.0) / (s * (m - s))
    return p / p.sum()


def paired_kernel_coalitions(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` coalitions drawn from the Shapley kernel in complementary pairs (z, 1 - z).

    Paired (antithetic) sampling lowers KernelSHAP's variance (Covert & Lee, AISTATS 2021);
    the kernel is symmetric in s <-> M - s, so a complement is a draw from it too.
    """
    half = (n + 1) // 2
    sizes = rng.choice(np.arange(1, m), size=half, p=kernel_size_distribution(m))
    keys = rng.random((half, m))
    ranks = keys.argsort(axis=1).argsort(axis=1)
    rows = ranks < sizes[:, None]  # a uniformly random subset of each drawn size
    return np.concatenate([rows, ~rows])[:n] if n % 2 == 0 else np.concatenate([rows, ~rows[:-1]])


def shap_shared(
    engine: PerturbationEngine, labels: Iterable[int], pool: tuple[np.ndarray, np.ndarray], nsamples: int, seed: int
) -> dict[int, ShapResult]:
    """KernelSHAP on the shared uniform pool *plus* ``nsamples`` paired draws from the kernel.

    The two sources complement each other: the uniform pool (LIME's, already evaluated)
    covers coalition sizes near M/2, the paired kernel draws cover the small and large
    sizes that carry most of the Shapley kernel's mass and that a uniform pool almost never
    draws. The regression rows are the union, weighted by multiple importance sampling
    (balance heuristic): w(z) = pi(z) / q(z) with q the mixture of both samplers in
    proportion to their row counts, so the weighted objective stays an unbiased estimate of
    KernelSHAP's. Costs ``nsamples`` new passes (fewer when memoised) instead of the pool's.
    """
    coalitions, probs = _checked_pool(engine, pool)
    labels = [int(label) for label in labels]
    m = engine.n_segments
    if m < 3 or nsamples < 2:
        return {label: replace(r, estimator="shared") for label, r in shap_from_pool(engine, labels, pool).items()}
    engine.check_cancelled()
    rng = np.random.default_rng([seed, 0x5AA9])
    drawn = paired_kernel_coalitions(m, int(nsamples), rng)
    drawn_probs = engine.evaluate(drawn)
    full = engine.predict_full()[labels].astype(np.float64)
    empty = engine.evaluate(np.zeros((1, m), bool))[0, labels].astype(np.float64)
    total = full - empty
    sizes_pool = coalitions.sum(axis=1)
    inner = (sizes_pool > 0) & (sizes_pool < m)
    z = np.concatenate([coalitions[inner], drawn]).astype(np.float64)
    y = np.concatenate([probs[inner], drawn_probs])[:, labels].astype(np.float64) - empty[None, :]
    sizes = z.sum(axis=1)
    n_uniform, n_kernel = float(inner.sum()), float(len(drawn))
    log_c = _log_binom(m, sizes)
    log_pi = np.log(m - 1.0) - log_c - np.log(sizes) - np.log(m - sizes)  # kernel weight per coalition
    log_pk = np.log(kernel_size_distribution(m))[sizes.astype(int) - 1] - log_c  # kernel sampler's q(z)
    terms = [np.log(n_kernel) + log_pk]
    if n_uniform:
        terms.append(np.full_like(log_pk, np.log(n_uniform) - m * np.log(2.0)))  # uniform sampler's q(z)
    log_q = np.logaddexp.reduce(terms, axis=0)
    log_w = log_pi - log_q
    values = _constrained_wls(z, y, np.exp(log_w - log_w.max()), total)
    return {
        label: ShapResult(label=label, values=values[:, j].copy(), base_value=float(empty[j]),
                          prediction=float(full[j]), estimator="shared")
        for j, label in enumerate(labels)
    }


# -- "owen": shap's Partition explainer over a hierarchy of superpixels ----------------------


def superpixel_hierarchy(segments: np.ndarray, m: int) -> np.ndarray:
    """A binary hierarchy of the ``m`` superpixels (a SciPy linkage matrix): Ward clustering
    of their centroids, so each group is a compact region of the image."""
    from scipy.cluster.hierarchy import linkage

    flat = segments.ravel()
    ys, xs = np.indices(segments.shape)
    size = np.maximum(np.bincount(flat, minlength=m), 1)
    centroids = np.column_stack([np.bincount(flat, ys.ravel(), m) / size / segments.shape[0],
                                 np.bincount(flat, xs.ravel(), m) / size / segments.shape[1]])
    return linkage(centroids, "ward")


def shap_owen(engine: PerturbationEngine, labels: Iterable[int], nsamples: int) -> dict[int, ShapResult]:
    """Owen values of the superpixels, grouped by ``superpixel_hierarchy``, by the recursion of
    shap's Partition explainer; hidden superpixels show the engine's fill.

    The Owen value is the Shapley value averaged only over the orders in which every group
    of the hierarchy joins as a block: nearby superpixels enter together, as in shap's own
    Partition explainer for images (which groups pixels in fixed rectangles). It is computed
    exactly, without sampling, so the same image and settings give the same values whatever
    the seed. The recursion expands the groups with the largest values first and stops
    after ``nsamples`` evaluations; a group it did not expand shares its value evenly among
    its superpixels (the whole tree takes about 35 evaluations per superpixel). Additive:
    the values sum to f(image) - f(all hidden) exactly.
    """
    labels = [int(label) for label in labels]
    m = engine.n_segments
    full = engine.predict_full()[labels].astype(np.float64)
    empty = engine.evaluate(np.zeros((1, m), bool))[0, labels].astype(np.float64)
    if m < 2:
        values = (full - empty)[None, :]
    else:
        if nsamples < 4:
            raise ValueError(f"the owen estimator needs at least 4 evaluations, got {nsamples}")
        progress, done = engine.progress, [0]

        def model(masks):  # (n, M) bool rows: the superpixels kept
            probs = engine.evaluate(masks)[:, labels].astype(np.float64)
            done[0] += len(probs)
            if progress is not None:
                progress("shap", min(done[0], nsamples), nsamples)
            return probs

        engine.progress = None  # reported above against the budget, not per engine call
        try:
            values = owen_values(model, superpixel_hierarchy(engine.segments, m), int(nsamples), engine.batch_size)
        finally:
            engine.progress = progress
    return {
        label: ShapResult(label=label, values=values[:, j].copy(), base_value=float(empty[j]),
                          prediction=float(full[j]), estimator="owen")
        for j, label in enumerate(labels)
    }


def owen_values(model, clustering: np.ndarray, max_evals: int, batch_size: int) -> np.ndarray:
    """(M, L) Owen values of ``model`` (bool (n, M) coalitions -> float64 (n, L)) over the
    binary hierarchy ``clustering`` (a SciPy linkage matrix), at most ``max_evals`` evaluations.

    The recursion of shap's ``PartitionExplainer.owen`` (shap 0.49, ``fixed_context=None``)
    followed step by step, so the values are shap's, in plain NumPy: shap runs it through
    numba kernels (its masked model, mask matrix and ``lower_credit``) that it compiles in
    every new process, 5-8 s before the first SHAP value (issue #14: the first explanation
    cost 1.8x a warm one). One difference: where two groups have exactly the same priority
    shap breaks the tie with ``np.random.randn()`` (the global random state), this with the
    order they were queued in, so the values never depend on a random state.
    """
    m = clustering.shape[0] + 1
    left, right = clustering[:, 0].astype(int), clustering[:, 1].astype(int)
    size = np.concatenate([np.ones(m, int), clustering[:, 3].astype(int)])
    members = np.zeros((2 * m - 1, m), bool)  # the superpixels of every node of the hierarchy
    members[np.arange(m), np.arange(m)] = True
    for k in range(m - 1):
        members[m + k] = members[left[k]] | members[right[k]]

    none = np.zeros(m, bool)
    f00, f11 = model(np.stack([none, ~none]))
    dvalues = np.zeros((2 * m - 1, f00.shape[0]))
    budget = max_evals - 2  # shap counts the two above against max_evals
    queue = [(0.0, 0, (none, f00, f11, 2 * m - 2, 1.0))]
    queued = 1
    evals = 0
    while queue:
        if evals >= budget:  # out of evaluations: what is left stays on its group
            for _, _, (m00, f00, f11, node, weight) in queue:
                dvalues[node] += (f11 - f00) * weight
            break
        batch, masks = [], []
        while queue and len(masks) < batch_size and evals + len(masks) < budget:
            m00, f00, f11, node, weight = heapq.heappop(queue)[2]
            if node < m:  # a superpixel: its marginal contribution in this context
                dvalues[node] += (f11 - f00) * weight
                continue
            lnode, rnode = left[node - m], right[node - m]
            m10, m01 = m00 | members[lnode], m00 | members[rnode]
            batch.append((m00, m10, m01, f00, f11, lnode, rnode, weight))
            masks += [m10, m01]
        if not batch:
            continue
        out = model(np.stack(masks))
        evals += len(masks)
        for i, (m00, m10, m01, f00, f11, lnode, rnode, weight) in enumerate(batch):
            f10, f01 = out[2 * i], out[2 * i + 1]
            half = weight / 2
            for args in ((m00, f00, f10, lnode, half), (m00, f00, f01, rnode, half),
                         (m01, f01, f11, lnode, half), (m10, f10, f11, rnode, half)):
                heapq.heappush(queue, (-np.max(np.abs(args[2] - args[1])) * half, queued, args))
                queued += 1

    values = dvalues.copy()  # each group's value shared among its members by size (shap's lower_credit)
    stack = [(2 * m - 2, 0.0)]
    while stack:
        node, value = stack.pop()
        values[node] += value
        if node >= m:
            for child in (left[node - m], right[node - m]):
                stack.append((child, values[node] * size[child] / size[node]))
    return values[:m]


# -- "kernel": shap.KernelExplainer over superpixel coalitions --------------------------------


def _kernel_values(model, m: int, n_out: int, nsamples: int, seed: int) -> np.ndarray:
    """shap.KernelExplainer on coalitions: background all hidden, instance all kept. -> (M, L)."""
    import shap

    with _seeded_global_rng(seed):
        explainer = shap.KernelExplainer(model, np.zeros((1, m)))
        phi = explainer.shap_values(np.ones(m), nsamples=nsamples, l1_reg=False, silent=True)
    return np.asarray(phi, np.float64).reshape(m, n_out)


def _kernel(engine: PerturbationEngine, labels: list[int], nsamples: int, seed: int) -> dict[int, ShapResult]:
    """shap.KernelExplainer with f(Z) = engine.evaluate(Z)[:, labels].

    shap's coalitions do not depend on model outputs (with ``l1_reg=False``), so it runs
    twice with the same seed: first with a recording stub that returns zeros, which yields
    the exact set of coalitions shap will ask for; then those are evaluated through the
    engine in full batches *outside* the global-RNG lock; then shap runs again, reading
    the stored outputs. The lock is thus held only for shap's own sampling and solve.
    """
    m, n_out = engine.n_segments, len(labels)
    asked: list[np.ndarray] = []

    def record(z):
        z = np.asarray(z) > 0.5
        asked.append(z)
        return np.zeros((len(z), n_out))

    _kernel_values(record, m, n_out, nsamples, seed)
    coalitions = np.unique(np.concatenate(asked), axis=0)
    outputs = engine.evaluate(coalitions)[:, labels].astype(np.float64)
    table = {row.tobytes(): out for row, out in zip(np.packbits(coalitions, axis=1), outputs)}

    def lookup(z):
        keys = np.packbits(np.asarray(z) > 0.5, axis=1)
        return np.stack([table[k.tobytes()] for k in keys])

    values = _kernel_values(lookup, m, n_out, nsamples, seed)
    full = engine.predict_full()[labels].astype(np.float64)
    empty = engine.evaluate(np.zeros((1, m), bool))[0, labels].astype(np.float64)
    results = {}
    for j, label in enumerate(labels):
        result = ShapResult(label=label, values=values[:, j].copy(), base_value=float(empty[j]),
                            prediction=float(full[j]), estimator="kernel")
        if result.additivity_error > 1e-6:
            raise RuntimeError(f"KernelSHAP values for class {label} violate efficiency by "
                               f"{result.additivity_error:.3g}: shap's constrained solve failed")
        results[label] = result
    return results


# -- "partition": shap's Partition explainer with a blur masker -------------------------------


_MASKERS: dict[tuple, object] = {}
_MASKERS_LOCK = threading.Lock()


def _blur_masker(shape: tuple[int, ...], blur: int):
    """A fresh ``shap.maskers.Image`` blur masker, without rebuilding its partition tree.

    Building the axis-aligned pixel hierarchy takes seconds for 224x224x3 and depends only
    on the shape, so a prototype is kept per (shape, blur) and shallow-copied: the copy
    shares the read-only tree but gets its own blur cache (shap keys that cache on
    ``id(image)``, which must not leak between images or threads).
    """
    import copy

    import shap

    key = (tuple(shape), int(blur))
    with _MASKERS_LOCK:
        prototype = _MASKERS.get(key)
        if prototype is None:
            prototype = _MASKERS[key] = shap.maskers.Image(f"blur({blur},{blur})", tuple(shape))
    masker = copy.copy(prototype)
    masker.last_xid, masker._blur_value_cache = None, None
    return masker


def _partition(engine: PerturbationEngine, labels: list[int], nsamples: int, blur: int) -> dict[int, ShapResult]:
    """Owen values per pixel; ``values`` are the per-superpixel sums of the heatmap.

    Hidden pixels show ``cv2.blur(image, (blur, blur))``, so ``base_value`` is the
    prediction for the fully blurred image (not the superpixel fill the other estimators
    use). Model calls go straight to the classifier (shap builds the masked images); they
    are counted here, image by image, and booked to the engine with ``engine.charge``.
    Deterministic: the Partition explainer draws no random numbers.
    """
    import shap

    if nsamples < 4:
        raise ValueError(f"the partition estimator needs at least 4 evaluations, got {nsamples}")
    image = engine.image
    classifier = engine.classifier
    count = {"passes": 0, "seconds": 0.0}

    def model(batch):
        engine.check_cancelled()
        batch = np.asarray(batch)
        if batch.dtype != np.uint8:
            batch = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
        t0 = time.perf_counter()
        out = classifier.predict_proba(batch, batch_size=engine.batch_size)
        count["seconds"] += time.perf_counter() - t0
        count["passes"] += len(batch)
        if engine.progress is not None:
            engine.progress("shap", min(count["passes"], nsamples), nsamples)
        return out

    masker = _blur_masker(image.shape, blur)
    explainer = shap.Explainer(model, masker, algorithm="partition", output_names=list(classifier.class_names))
    try:
        explanation = explainer(image[None], max_evals=nsamples, batch_size=engine.batch_size,
                                outputs=np.asarray(labels), silent=True)
    finally:
        engine.charge(count["passes"], count["seconds"])
    pixel_values = np.asarray(explanation.values[0], np.float64)  # (H, W, 3, L)
    heatmaps = pixel_values.sum(axis=2)  # (H, W, L)
    base = np.asarray(explanation.base_values, np.float64).reshape(-1)
    full = engine.predict_full()[labels].astype(np.float64)
    segments, m = engine.segments.ravel(), engine.n_segments
    results = {}
    for j, label in enumerate(labels):
        heatmap = heatmaps[..., j]
        values = np.bincount(segments, weights=heatmap.ravel(), minlength=m)
        results[label] = ShapResult(label=label, values=values, base_value=float(base[j]),
                                    prediction=float(full[j]), estimator="partition", heatmap=heatmap)
    return results
