"""The classic LIME -> Anchors -> SHAP sequence against ``xai_panel.explain``, same images.

    python benchmarks/bench_explain.py [--images 3] [--seeds 3] [--skip-classic] [--quick] [--profile]

Pipelines, on each image's 224x224 view (``clf.prepare``), EfficientNet-Lite0:

* classic: what users do today (PERFORMANCE.md), torch eager, one library after another:
  lime ``explain_instance`` (its defaults: quickshift, 1000 samples, batch 10, top 5 labels),
  alibi ``AnchorImage`` (slic with alibi's default kwargs, top class only), shap Partition
  explainer with a ``blur(128,128)`` Image masker (500 evaluations, batch 10, top 5 outputs).
* ours-ort: ``xai_panel.explain(view, load_classifier(), top_k=5, seed=s)``, default settings
  (ONNX Runtime; LIME pool of 1000 shared by all methods; anchors for all 5 classes).
* ours-torch: the same on the torch backend (same model as classic): the engine's gain alone.

Per method it prints wall time, forward passes, overhead outside the model, efficiency
(passes x best per-pass time / wall) and seed-to-seed stability (definitions under the
table), then the speed-up of the full top-5 triple. The table is also written to
``benchmarks/results/bench_explain.txt``. Machines are shared and noisy: compare ratios
measured in one run, and read the load average printed with the table.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import itertools
import logging
import os
import platform
import pstats
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # lime draws a tqdm bar per call (tqdm >= 4.66 reads this)

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGES = REPO / ".." / "shared" / "data" / "imagenet-sample"
RESULTS = REPO / "benchmarks" / "results" / "bench_explain.txt"
TOP = 5  # superpixels per LIME / SHAP "top" set
PIXEL_FRACTION = 0.10  # top share of |heatmap| pixels for the pixel-level check


# -- budgets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budgets:
    lime_samples: int = 1000
    shap_evals: int = 500
    anchor_batch: int = 100  # samples per bandit step (alibi's default)
    classic_coverage: int = 10000  # alibi's default coverage_samples
    ours_coverage: int = 2000  # ours' default coverage_samples
    max_anchor_size: int | None = None  # no limit (both libraries' default)
    anchor_tau: float = 0.15  # bandit tolerance (both libraries' default)
    anchor_delta: float = 0.1  # 1 - confidence of the precision bounds (both libraries' default)

    def ours_settings(self) -> dict:
        full = Budgets()
        settings = {}
        if self.lime_samples != full.lime_samples:
            settings["lime"] = {"num_samples": self.lime_samples}
        if self.shap_evals != full.shap_evals:
            settings["shap"] = {"nsamples": self.shap_evals}
        if self != full:
            settings["anchors"] = {"batch_size": self.anchor_batch, "coverage_samples": self.ours_coverage,
                                   "max_anchor_size": self.max_anchor_size, "tau": self.anchor_tau,
                                   "delta": self.anchor_delta}
        return settings


# A smoke run. Anchors are loosened on both sides (at most 2 superpixels, tau and delta 0.3):
# with the defaults, ours' five anchors on ~30 quickshift superpixels take ~15k passes.
QUICK = Budgets(lime_samples=200, shap_evals=100, anchor_batch=50, classic_coverage=1000, ours_coverage=1000,
                max_anchor_size=2, anchor_tau=0.3, anchor_delta=0.3)


# -- one run's record ------------------------------------------------------------------------


@dataclass
class Step:
    """One method of one pipeline on one image and seed."""

    wall: float
    passes: int
    model: float  # seconds inside Classifier.predict_proba (normalise + runner + softmax)
    hits: int | None = None  # memoised coalitions (ours only)


@dataclass
class Run:
    pipeline: str
    image: str
    seed: int
    backend: str
    total_wall: float
    total_passes: int
    steps: dict[str, Step]
    masks: dict[str, np.ndarray]  # method -> (H, W) bool mask used for stability (top class)
    lime_weights: np.ndarray | None = None
    top_class: int = -1
    extra: dict = field(default_factory=dict)


def top_mask(segments: np.ndarray, values: np.ndarray, k: int = TOP) -> np.ndarray:
    """Pixel mask of the ``k`` superpixels with the largest positive values (lime's
    ``get_image_and_mask(positive_only=True, num_features=k)`` choice)."""
    values = np.asarray(values, np.float64)
    order = np.argsort(-values, kind="stable")[:k]
    order = order[values[order] > 0]
    keep = np.zeros(len(values), bool)
    keep[order] = True
    return keep[segments]


def top_pixels(heatmap: np.ndarray, fraction: float = PIXEL_FRACTION) -> np.ndarray:
    flat = np.abs(heatmap).ravel()
    k = max(1, int(round(fraction * flat.size)))
    keep = np.zeros(flat.size, bool)
    keep[np.argsort(-flat, kind="stable")[:k]] = True
    return keep.reshape(heatmap.shape)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def mean_pairwise_jaccard(masks: list[np.ndarray]) -> float | None:
    pairs = list(itertools.combinations(masks, 2))
    return None if not pairs else float(np.mean([jaccard(a, b) for a, b in pairs]))


# -- the classic sequence --------------------------------------------------------------------


class CountingFn:
    """The user's ``classifier_fn``: images in (any dtype), probabilities out, model time summed."""

    def __init__(self, clf):
        self.clf = clf
        self.model_seconds = 0.0

    def __call__(self, images):
        x = np.asarray(images)
        if x.dtype != np.uint8:  # alibi probes with float zeros; shap may hand floats
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        t0 = time.perf_counter()
        out = self.clf.predict_proba(x, batch_size=len(x))
        self.model_seconds += time.perf_counter() - t0
        return out


def run_classic(clf, view: np.ndarray, seed: int, budgets: Budgets, image_id: str) -> Run:
    import shap
    from alibi.explainers import AnchorImage
    from lime.lime_image import LimeImageExplainer

    fn = CountingFn(clf)
    steps, masks, extra = {}, {}, {}

    def measure(name, call):
        passes0, model0 = clf.forward_passes, fn.model_seconds
        t0 = time.perf_counter()
        out = call()
        steps[name] = Step(time.perf_counter() - t0, clf.forward_passes - passes0, fn.model_seconds - model0)
        return out

    # 1. lime, its defaults (quickshift 4/200/0.2, mean fill, 1000 samples, batch 10)
    lime_exp = measure("lime", lambda: LimeImageExplainer(random_state=seed).explain_instance(
        view, fn, top_labels=5, num_samples=budgets.lime_samples, batch_size=10, random_seed=seed))
    top_class = int(lime_exp.top_labels[0])
    segments = lime_exp.segments
    weights = np.zeros(int(segments.max()) + 1)
    for feature, weight in lime_exp.local_exp[top_class]:
        weights[feature] = weight
    masks["lime"] = top_mask(segments, weights)

    # 2. alibi AnchorImage, slic with alibi's defaults, top class only
    def anchor():
        explainer = AnchorImage(predictor=fn, image_shape=view.shape, segmentation_fn="slic", seed=seed)
        kwargs = {}
        if budgets != Budgets():
            kwargs = dict(batch_size=budgets.anchor_batch, coverage_samples=budgets.classic_coverage,
                          min_samples_start=budgets.anchor_batch, max_anchor_size=budgets.max_anchor_size,
                          tau=budgets.anchor_tau, delta=budgets.anchor_delta)
        return explainer.explain(view, **kwargs)

    anchor_exp = measure("anchors", anchor)
    features = [int(f) for f in anchor_exp.data["raw"]["feature"]]
    masks["anchors"] = np.isin(anchor_exp.segments, features)
    extra["anchor_precision"] = float(np.ravel(anchor_exp.precision)[0]) if features else float("nan")
    extra["segments_hash"] = hash(np.ascontiguousarray(segments).tobytes())

    # 3. shap Partition explainer, blur(128,128) Image masker, top-5 outputs
    def partition():
        masker = shap.maskers.Image("blur(128,128)", view.shape)
        explainer = shap.Explainer(fn, masker, output_names=list(clf.class_names))
        return explainer(view[None], max_evals=budgets.shap_evals, batch_size=10,
                         outputs=shap.Explanation.argsort.flip[:5], silent=True)

    shap_exp = measure("shap", partition)
    heatmap = np.asarray(shap_exp.values[0][..., 0], np.float64).sum(axis=-1)  # top output, summed over RGB
    per_segment = np.bincount(segments.ravel(), weights=heatmap.ravel(), minlength=len(weights))
    masks["shap"] = top_mask(segments, per_segment)  # on lime's quickshift superpixels
    masks["shap_pixels"] = top_pixels(heatmap)

    total_wall = sum(s.wall for s in steps.values())
    total_passes = sum(s.passes for s in steps.values())
    return Run("classic", image_id, seed, clf.backend, total_wall, total_passes, steps, masks,
               lime_weights=weights, top_class=top_class, extra=extra)


# -- ours ------------------------------------------------------------------------------------


def run_ours(clf, view: np.ndarray, seed: int, budgets: Budgets, image_id: str, pipeline: str) -> Run:
    from xai_panel.engine.pipeline import explain

    passes0 = clf.forward_passes
    t0 = time.perf_counter()
    res = explain(view, clf, methods=("lime", "anchors", "shap"), top_k=5, seed=seed,
                  settings=budgets.ours_settings())
    total_wall = time.perf_counter() - t0
    total_passes = clf.forward_passes - passes0
    booked = res.total_forward_passes
    steps = {m: Step(c.wall_seconds, c.forward_passes, c.model_seconds, c.cache_hits) for m, c in res.costs.items()}
    top_class = res.top[0].index
    labels = res.segmentation.labels
    shap_result = res.shap[top_class]
    masks = {
        "lime": top_mask(labels, res.lime[top_class].weights),
        "anchors": res.segmentation.mask(res.anchors[top_class].segments),
        "shap": top_mask(labels, shap_result.values),
    }
    if shap_result.heatmap is not None:
        masks["shap_pixels"] = top_pixels(shap_result.heatmap)
    extra = {
        "booked_passes": booked,
        "anchors_found": sum(a.found for a in res.anchors.values()),
        "shap_estimator": shap_result.estimator,
        "n_segments": res.segmentation.n_segments,
        "segments_hash": hash(np.ascontiguousarray(labels).tobytes()),
    }
    return Run(pipeline, image_id, seed, clf.backend, total_wall, total_passes, steps, masks,
               lime_weights=res.lime[top_class].weights, top_class=top_class, extra=extra)


# -- warm-up and the best per-pass time ------------------------------------------------------


def best_per_pass(clf, view: np.ndarray, batches=(10, 32, 64), n: int = 128, repeats: int = 1) -> tuple[float, int]:
    """Fastest seconds per image of ``clf.predict_proba`` on ``n`` noisy copies of ``view``."""
    rng = np.random.default_rng(0)
    images = np.clip(view[None].astype(np.int16) + rng.integers(-20, 21, (n, *view.shape)), 0, 255).astype(np.uint8)
    best = (float("inf"), 0)
    for batch in batches:
        clf.predict_proba(images[:batch], batch_size=batch)  # warm-up at this shape
        for _ in range(repeats):
            t0 = time.perf_counter()
            clf.predict_proba(images, batch_size=batch)
            best = min(best, ((time.perf_counter() - t0) / n, batch))
    return best


class Probes:
    """The best per-pass time of each backend, looked for repeatedly because the load varies."""

    def __init__(self, classifiers: dict, view: np.ndarray):
        self.classifiers = classifiers
        self.view = view
        self.seen: dict[str, list[float]] = {b: [] for b in classifiers}
        self.batch: dict[str, int] = {}
        self._best: dict[str, tuple[float, int]] = {}

    def _note(self, backend: str, result: tuple[float, int]) -> None:
        self.seen[backend].append(result[0])
        if result < self._best.get(backend, (float("inf"), 0)):
            self._best[backend] = result
            self.batch[backend] = result[1]

    def full(self) -> None:
        for backend, clf in self.classifiers.items():
            self._note(backend, best_per_pass(clf, self.view))

    def quick(self) -> None:
        for backend, clf in self.classifiers.items():
            self._note(backend, best_per_pass(clf, self.view, batches=(self.batch[backend],)))

    def best(self) -> dict[str, float]:
        return {b: v[0] for b, v in self._best.items()}


def warm_up_libraries(view: np.ndarray) -> None:
    """Import and JIT-compile (shap's numba code) outside the timed runs, on a free fake model."""
    import shap
    from alibi.explainers import AnchorImage
    from lime.lime_image import LimeImageExplainer

    logits = np.random.default_rng(0).normal(size=1000)

    def fake(images):
        p = np.exp(logits - logits.max())
        return np.tile(p / p.sum(), (len(images), 1)).astype(np.float32)

    LimeImageExplainer(random_state=0).explain_instance(view, fake, top_labels=5, num_samples=20, batch_size=10)
    AnchorImage(predictor=fake, image_shape=view.shape, segmentation_fn="slic", seed=0).explain(
        view, batch_size=10, coverage_samples=100, min_samples_start=10)
    explainer = shap.Explainer(fake, shap.maskers.Image("blur(128,128)", view.shape))
    explainer(view[None], max_evals=50, batch_size=10, outputs=shap.Explanation.argsort.flip[:5], silent=True)


# -- images ----------------------------------------------------------------------------------


def pick_images(n: int) -> tuple[str, list]:
    """``n`` records: every k-th file of ../shared/data/imagenet-sample, else the demo gallery."""
    from xai_panel.data import open_dataset

    if SHARED_IMAGES.is_dir():
        dataset, source = open_dataset(SHARED_IMAGES), "../shared/data/imagenet-sample"
    else:
        dataset, source = open_dataset(), "built-in demo gallery (../shared/data absent)"
    records = sorted(dataset, key=lambda r: r.id)
    step = max(1, len(records) // max(1, n))
    return source, [records[i * step] for i in range(min(n, len(records)))]


# -- the report ------------------------------------------------------------------------------


def fmt(x, spec: str, width: int) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return f"{'n/a':>{width}}"
    return f"{x:{width}{spec}}"


def table(runs: list[Run], per_pass: dict[str, float], n_seeds: int) -> list[str]:
    pipelines = [p for p in ("classic", "ours-ort", "ours-torch") if any(r.pipeline == p for r in runs)]
    best = min(per_pass.values())
    header = (f"{'pipeline':<11}{'backend':<13}{'method':<9}{'wall s':>8}{'passes':>8}{'model s':>9}"
              f"{'overhead s':>11}{'cache hits':>11}{'eff(best)':>10}{'eff(own)':>9}{'stability':>10}")
    lines = [header, "-" * len(header)]
    for pipeline in pipelines:
        mine = [r for r in runs if r.pipeline == pipeline]
        backend = mine[0].backend
        methods = list(dict.fromkeys(m for r in mine for m in r.steps))
        rows = [(m, [r.steps[m] for r in mine if m in r.steps]) for m in methods]
        rows.append(("total", [Step(r.total_wall, r.total_passes, sum(s.model for s in r.steps.values()),
                                    sum(s.hits or 0 for s in r.steps.values()) if pipeline != "classic" else None)
                               for r in mine]))
        for method, steps in rows:
            wall = statistics.fmean(s.wall for s in steps)
            passes = statistics.fmean(s.passes for s in steps)
            model = statistics.fmean(s.model for s in steps)
            hits = None if steps[0].hits is None else statistics.fmean(s.hits for s in steps)
            stab = None
            if method in ("lime", "anchors", "shap") and n_seeds > 1:
                per_image = [mean_pairwise_jaccard([r.masks[method] for r in mine if r.image == image])
                             for image in dict.fromkeys(r.image for r in mine)]
                per_image = [x for x in per_image if x is not None]  # images run with one seed have none
                stab = statistics.fmean(per_image) if per_image else None
            lines.append(
                f"{pipeline:<11}{backend:<13}{method:<9}{wall:8.2f}{passes:8.0f}{model:9.2f}"
                f"{max(0.0, wall - model):11.2f}{fmt(hits, '.0f', 11)}"
                f"{passes * best / wall if wall else 0:10.2f}{passes * per_pass[backend] / wall if wall else 0:9.2f}"
                f"{fmt(stab, '.2f', 10)}"
            )
        lines.append("")
    return lines


def report(runs, probes, args, budgets, source, images, started, load_before, elapsed) -> str:
    from importlib import metadata

    import alibi
    import onnxruntime
    import shap
    import torch

    out = []
    out.append(f"bench_explain: {started:%Y-%m-%d %H:%M:%S} UTC, {elapsed / 60:.1f} min; host {platform.node()}, "
               f"{os.cpu_count()} cores, torch {torch.get_num_threads()} threads")
    out.append(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
               + " ".join(f"{x:.2f}" for x in os.getloadavg())
               + "  (shared machine: other jobs ran at the same time; trust ratios over absolute seconds)")
    out.append(f"versions: lime {metadata.version('lime')}, alibi {alibi.__version__}, shap {shap.__version__}, "
               f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}")
    out.append(f"images ({len(images)}, from {source}): " + ", ".join(r.id for r in images))
    out.append(f"seeds: {list(range(args.seeds))}; budgets: {'QUICK ' if args.quick else ''}lime {budgets.lime_samples} samples, "
               f"classic shap {budgets.shap_evals} evals, anchor batch {budgets.anchor_batch}, coverage samples "
               f"classic {budgets.classic_coverage} / ours {budgets.ours_coverage}, max anchor size "
               f"{budgets.max_anchor_size or 'unlimited'}, anchor tau {budgets.anchor_tau} delta {budgets.anchor_delta}"
               + (f"; ours-torch on the first {args.ours_torch_runs} (image, seed) pair(s) only"
                  if args.ours_torch_runs is not None else ""))
    per_pass = probes.best()
    out.append("best per-pass time (predict_proba on 128 noisy copies of the first view at batch 10, 32 and 64 "
               "before and after the runs, and at the best batch before every (image, seed)): " + "; ".join(
                   f"{b} {per_pass[b] * 1e3:.2f} ms = {1 / per_pass[b]:.0f} img/s at batch {probes.batch[b]} "
                   f"(median of {len(probes.seen[b])} probes {1 / statistics.median(probes.seen[b]):.0f} img/s)"
                   for b in per_pass))
    out.append("")
    out.extend(table(runs, per_pass, args.seeds))

    # per image triple totals
    out.append("full top-5 triple per image (mean wall s over seeds; passes):")
    pipelines = list(dict.fromkeys(r.pipeline for r in runs))
    for image in dict.fromkeys(r.image for r in runs):
        cells = []
        for p in pipelines:
            mine = [r for r in runs if r.pipeline == p and r.image == image]
            if not mine:
                continue
            walls = [r.total_wall for r in mine]
            cells.append(f"{p} {statistics.fmean(walls):6.1f} s [{min(walls):.1f}-{max(walls):.1f}] "
                         f"{statistics.fmean(r.total_passes for r in mine):5.0f} passes")
        out.append(f"  {image:<40} " + " | ".join(cells))
    out.append("")

    mean_total = {p: statistics.fmean(r.total_wall for r in runs if r.pipeline == p) for p in pipelines}
    if "classic" in mean_total:
        classic = {(r.image, r.seed): r for r in runs if r.pipeline == "classic"}
        for p in (q for q in pipelines if q != "classic"):
            pairs = [(classic[(r.image, r.seed)], r) for r in runs if r.pipeline == p and (r.image, r.seed) in classic]
            c = statistics.fmean(a.total_wall for a, _ in pairs)
            o = statistics.fmean(b.total_wall for _, b in pairs)
            cp = statistics.fmean(a.total_passes for a, _ in pairs)
            op = statistics.fmean(b.total_passes for _, b in pairs)
            out.append(f"full top-5 triple: classic {c:.1f} s (anchors top-1 only) vs {p} {o:.1f} s (anchors top-5) "
                       f"-> {c / o:.2f}x   [passes {cp:.0f} vs {op:.0f}; mean over {len(pairs)} matched runs]")
    else:
        out.append("full top-5 triple: classic skipped (--skip-classic); ours "
                   + ", ".join(f"{p} {mean_total[p]:.1f} s" for p in pipelines))

    # goals
    out.append("")
    best = min(per_pass.values())
    goals = []
    if "classic" in mean_total and "ours-ort" in mean_total:
        speed = mean_total["classic"] / mean_total["ours-ort"]
        goals.append(f"speed-up >= 10x: {speed:.1f}x {'MET' if speed >= 10 else 'NOT MET'}")
    if "ours-ort" in mean_total:
        ours = [r for r in runs if r.pipeline == "ours-ort"]
        eff = statistics.fmean(r.total_passes for r in ours) * best / mean_total["ours-ort"]
        goals.append(f"efficiency >= 0.8: {eff:.2f} {'MET' if eff >= 0.8 else 'NOT MET'}")
    if "classic" in mean_total and "ours-ort" in mean_total and args.seeds > 1:
        verdicts = []
        for method in ("lime", "anchors", "shap"):
            s = {}
            for p in ("classic", "ours-ort"):
                mine = [r for r in runs if r.pipeline == p]
                s[p] = statistics.fmean(mean_pairwise_jaccard([r.masks[method] for r in mine if r.image == i])
                                        for i in dict.fromkeys(r.image for r in mine))
            verdicts.append(f"{method} {s['ours-ort']:.2f} vs {s['classic']:.2f} "
                            f"{'ok' if s['ours-ort'] >= s['classic'] - 1e-9 else 'WORSE'}")
        goals.append("stability no worse (ours vs classic): " + ", ".join(verdicts))
    out.append("goals: " + "; ".join(goals))

    # checks
    checks = []
    classic_runs = {(r.image, r.seed): r for r in runs if r.pipeline == "classic"}
    ours_runs = [r for r in runs if r.pipeline == "ours-ort"]
    if classic_runs and ours_runs:
        agree = [jaccard(r.masks["lime"], classic_runs[(r.image, r.seed)].masks["lime"]) for r in ours_runs
                 if (r.image, r.seed) in classic_runs]
        diffs = [float(np.max(np.abs(r.lime_weights - classic_runs[(r.image, r.seed)].lime_weights)))
                 for r in ours_runs if (r.image, r.seed) in classic_runs
                 and r.lime_weights.shape == classic_runs[(r.image, r.seed)].lime_weights.shape]
        same_top = all(r.top_class == classic_runs[(r.image, r.seed)].top_class for r in ours_runs
                       if (r.image, r.seed) in classic_runs)
        checks.append(f"LIME ours vs classic, same seed: top-5 mask Jaccard {statistics.fmean(agree):.2f}, "
                      f"max |weight difference| {max(diffs) if diffs else float('nan'):.1e}; same top class: {same_top}")
    for p in ("ours-ort", "ours-torch"):
        mine = [r for r in runs if r.pipeline == p]
        if mine:
            mismatch = [r for r in mine if r.extra["booked_passes"] != r.total_passes]
            checks.append(f"{p}: passes booked in res.costs == classifier counter delta in "
                          f"{len(mine) - len(mismatch)}/{len(mine)} runs; anchors found (of 5) mean "
                          f"{statistics.fmean(r.extra['anchors_found'] for r in mine):.1f}; "
                          f"SHAP estimator '{mine[0].extra['shap_estimator']}'; superpixels mean "
                          f"{statistics.fmean(r.extra['n_segments'] for r in mine):.1f}")
    for p in dict.fromkeys(r.pipeline for r in runs):
        mine = [r for r in runs if r.pipeline == p]
        distinct = [len({r.extra["segments_hash"] for r in mine if r.image == i}) for i in dict.fromkeys(r.image for r in mine)]
        checks.append(f"{p}: distinct quickshift segmentations across seeds, per image: {distinct}")
    classic_list = list(classic_runs.values())
    if classic_list and args.seeds > 1:
        px = statistics.fmean(mean_pairwise_jaccard([r.masks["shap_pixels"] for r in classic_list if r.image == i])
                              for i in dict.fromkeys(r.image for r in classic_list))
        checks.append(f"classic SHAP pixel-level stability (top {PIXEL_FRACTION:.0%} |heatmap| pixels): {px:.2f}")
    if checks:
        out.append("checks: " + "\n        ".join(checks))

    out.append("")
    out.append("definitions:")
    out.append("  wall s: mean wall time per (image, seed); for ours the method rows are res.costs (lime includes the")
    out.append("    shared 1000-coalition pool that anchors and shap reuse; 'top-k' = segmentation + 1 pass), 'total' is")
    out.append("    the wall time of the whole explain() call; classic 'total' = lime + anchors + shap steps.")
    out.append("  passes: images through the model (Classifier.forward_passes delta / MethodCost.forward_passes).")
    out.append("  model s: time inside Classifier.predict_proba (normalise + runner + softmax); overhead = wall - model.")
    out.append("  eff(best) = passes x best per-pass time of the fastest backend / wall; eff(own) the same with the")
    out.append("    best per-pass time of the backend the pipeline used (1.0 = nothing but model passes at full speed).")
    out.append("  stability: seed-to-seed, mean pairwise Jaccard over the seeds on each image, averaged over images,")
    out.append("    top class only, on pixel masks (superpixel ids can differ between segmentations):")
    out.append(f"    lime: the {TOP} superpixels with the largest positive weights (lime's get_image_and_mask default);")
    out.append("    anchors: the anchor's superpixels (classic: alibi's slic; ours: the shared quickshift), empty = empty;")
    out.append(f"    shap: the {TOP} superpixels with the largest positive values; for classic Partition the pixel values")
    out.append("      summed per superpixel of lime's quickshift segmentation of the same view (ours: the values of")
    out.append("      the SHAP estimator named under checks, on its own quickshift superpixels). The Partition")
    out.append("      explainer draws no random numbers, nor does ours by default ('owen').")
    out.append("  seeds: classic lime random_state=random_seed=s, AnchorImage(seed=s); ours explain(seed=s). lime's")
    out.append("    SegmentationAlgorithm drops random_seed (skimage's quickshift calls it rng), so classic quickshift")
    out.append("    always runs with rng=42; ours runs quickshift with rng=0 whatever the seed (the superpixels belong to")
    out.append("    the image, the seed to the sampling), so both compare the same superpixels across seeds.")
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=None, help="images to explain (default 3; 1 with --quick)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per image and pipeline (default 3; 2 with --quick)")
    ap.add_argument("--skip-classic", action="store_true", help="run only our pipelines")
    ap.add_argument("--skip-ours-torch", action="store_true", help="run ours on ONNX Runtime only")
    ap.add_argument("--ours-torch-runs", type=int, default=None,
                    help="run ours on torch for the first N (image, seed) pairs only (default: all; it is slow)")
    ap.add_argument("--quick", action="store_true", help="smaller budgets for a smoke run")
    ap.add_argument("--profile", action="store_true", help="after the runs, cProfile one ours-ort explain()")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the table too")
    args = ap.parse_args()
    args.images = args.images if args.images is not None else (1 if args.quick else 3)
    args.seeds = args.seeds if args.seeds is not None else (2 if args.quick else 3)
    if args.skip_ours_torch:
        args.ours_torch_runs = 0
    if args.images < 1 or args.seeds < 1:
        ap.error("--images and --seeds must be >= 1")
    budgets = QUICK if args.quick else Budgets()

    logging.getLogger("alibi").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    started, load_before, t_start = dt.datetime.now(dt.timezone.utc), os.getloadavg(), time.perf_counter()

    from xai_panel.models import load_classifier

    ort = load_classifier()
    if ort.backend != "onnxruntime":
        print(f"warning: load_classifier() gave backend {ort.backend!r}, not onnxruntime", file=sys.stderr)
    torch_clf = load_classifier(backend="torch")
    source, records = pick_images(args.images)
    views = {r.id: torch_clf.prepare(r.load()) for r in records}
    first_view = next(iter(views.values()))

    print(f"[{time.strftime('%H:%M:%S')}] warming up and measuring the best per-pass time ...", file=sys.stderr)
    if not args.skip_classic:
        warm_up_libraries(first_view)
    from xai_panel.engine.pipeline import explain

    explain(first_view, ort, top_k=1, seed=0, settings={  # imports, ORT and alibi code paths, untimed
        "lime": {"num_samples": 50}, "anchors": {"max_anchor_size": 1, "batch_size": 10, "coverage_samples": 100}})
    probes = Probes({ort.backend: ort, torch_clf.backend: torch_clf}, first_view)
    probes.full()

    runs: list[Run] = []
    pipelines = [p for p, skip in (("classic", args.skip_classic), ("ours-ort", False),
                                   ("ours-torch", args.skip_ours_torch)) if not skip]
    for record in records:
        view = views[record.id]
        for seed in range(args.seeds):
            probes.quick()  # the load changes: look for the machine's best moment all along
            for pipeline in pipelines:  # interleaved, so load changes hit every pipeline alike
                if pipeline == "ours-torch" and args.ours_torch_runs is not None and \
                        sum(r.pipeline == "ours-torch" for r in runs) >= args.ours_torch_runs:
                    continue
                if pipeline == "classic":
                    run = run_classic(torch_clf, view, seed, budgets, record.id)
                else:
                    clf = ort if pipeline == "ours-ort" else torch_clf
                    run = run_ours(clf, view, seed, budgets, record.id, pipeline)
                runs.append(run)
                print(f"[{time.strftime('%H:%M:%S')}] {record.id} seed {seed} {pipeline:<10} "
                      f"{run.total_wall:6.1f} s {run.total_passes:5d} passes  "
                      + " ".join(f"{m} {s.wall:.1f}s/{s.passes}" for m, s in run.steps.items()),
                      file=sys.stderr)

    probes.full()
    text = report(runs, probes, args, budgets, source, records, started, load_before,
                  time.perf_counter() - t_start)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"\n(written to {args.out})")

    if args.profile:
        profile_ours(ort, first_view, budgets)


def profile_ours(clf, view: np.ndarray, budgets: Budgets) -> None:
    """Where ours spends its time outside the model: cProfile of one explain() on ONNX Runtime."""
    from xai_panel.engine.pipeline import explain

    profiler = cProfile.Profile()
    profiler.enable()
    explain(view, clf, top_k=5, seed=123, settings=budgets.ours_settings())
    profiler.disable()
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key).print_stats(25)
        print(f"\ncProfile of one ours-ort explain() (seed 123), top 25 by {key}:")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:6000])


if __name__ == "__main__":
    main()
