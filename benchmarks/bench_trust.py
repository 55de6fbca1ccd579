"""How faithful are the explanations, and are ours at least as faithful as the classic libraries'?

On ``--images`` photos of ``../shared/data/imagenet-sample`` (every k-th file, full size), for
each method of ``xp.explain`` (the library's defaults: LIME, Anchors, SHAP), and scored by the
same protocol on the same view, superpixels, fill and random orders:

- the classic libraries' own outputs: ``lime``'s ``explain_instance`` weights (its defaults,
  1000 samples, on our superpixels through ``segmentation_fn``) and a shap ``Partition``
  explainer with a ``blur(128,128)`` Image masker (500 evaluations, as ``bench_explain``),
  its pixel values summed per superpixel;
- per method the mean deletion and insertion AUC for the top class and over all five
  classes, the random-order baselines, how many images beat chance, the agreement between
  methods (Spearman, top-k IoU, anchor inside top-k) and what the metrics cost (wall time
  and model passes, ``res.costs["faithfulness"]``).

Leaves out: the RISE pixel protocol (``--rise`` adds it for the top class), the
sanity check, and GPU runs. Classic outputs are scored on our superpixels, so a
classic method is judged by what it says about the same regions (LIME's own quickshift
superpixels differ only by its parameters: ours are the same algorithm, 4/200/0.2).

    python benchmarks/bench_trust.py [--images 20] [--steps N] [--orders 3] [--no-classic] [--rise] [--methods ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

SHARED_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-sample"


class Scores:
    """A classic library's per-superpixel scores, read by the metrics like one of our results."""

    ranked = True

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, np.float64)

    def vector(self, n_segments: int) -> np.ndarray:
        return self.values[:n_segments]


def classic_fn(clf):
    def fn(images):
        x = np.asarray(images)
        if x.dtype != np.uint8:
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return clf.predict_proba(x, batch_size=len(x))

    return fn


def classic_scores(clf, res, seed: int) -> tuple[dict, dict]:
    """lime's and shap's own scores for ``res``'s classes on ``res``'s superpixels; seconds each."""
    import shap
    from lime.lime_image import LimeImageExplainer

    view, segments = res.image, res.segmentation.labels
    m = int(segments.max()) + 1
    fn, out, seconds = classic_fn(clf), {}, {}
    t0 = time.perf_counter()
    exp = LimeImageExplainer(random_state=seed).explain_instance(
        view, fn, labels=list(res.labels), top_labels=None, num_samples=1000, batch_size=10,
        segmentation_fn=lambda image: segments, random_seed=seed)
    seconds["classic lime"] = time.perf_counter() - t0
    lime = {}
    for label in res.labels:
        weights = np.zeros(m)
        for feature, weight in exp.local_exp[label]:
            weights[feature] = weight
        lime[label] = Scores(weights)
    out["classic lime"] = lime

    t0 = time.perf_counter()
    masker = shap.maskers.Image("blur(128,128)", view.shape)
    explainer = shap.Explainer(fn, masker, output_names=list(clf.class_names))
    values = explainer(view[None], max_evals=500, batch_size=10, outputs=list(res.labels), silent=True).values[0]
    seconds["classic shap"] = time.perf_counter() - t0
    out["classic shap"] = {
        label: Scores(np.bincount(segments.ravel(), weights=values[..., j].sum(axis=-1).ravel(), minlength=m))
        for j, label in enumerate(res.labels)}
    return out, seconds


def pick(n: int) -> list[Path]:
    files = sorted(p for p in SHARED_IMAGES.rglob("*") if p.suffix.lower() in {".jpeg", ".jpg", ".png"})
    if not files:
        raise SystemExit(f"no photos under {SHARED_IMAGES}: this benchmark needs ../shared/data")
    step = max(1, len(files) // n)
    return files[::step][:n]


def mean(xs) -> float:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--steps", type=int, default=None, help="deletion steps (default: one superpixel each)")
    parser.add_argument("--orders", type=int, default=3, help="random orders for the baseline")
    parser.add_argument("--no-classic", action="store_true", help="skip the classic lime and shap outputs")
    parser.add_argument("--rise", action="store_true", help="add RISE's pixel protocol for the top class")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods (default: explain()'s, LIME, Anchors and SHAP), e.g. "
                             "lime,shap,gradcam,integrated_gradients,smoothgrad")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # lime's progress bar

    import xai_panel as xp
    from xai_panel.data import load_image
    from xai_panel.metrics.faithfulness import _engine_for, faithfulness_of

    started, load_before = time.strftime("%Y-%m-%d %H:%M:%S"), machine()
    clf = xp.load_classifier()
    settings = {"steps": args.steps, "random_orders": args.orders}
    metrics = ("faithfulness", "agreement") + (("rise",) if args.rise else ())
    methods = None if args.methods is None else tuple(m.strip() for m in args.methods.split(",") if m.strip())
    rows: dict[str, dict[str, list]] = {}
    agree: dict[tuple[str, str], dict[str, list]] = {}
    cost = {"explain s": [], "explain passes": [], "metrics s": [], "metrics passes": [], "classic s": [],
            "classic metric passes": [], "superpixels": []}
    files = pick(args.images)
    for i, path in enumerate(files, 1):
        photo = load_image(path)
        t0 = time.perf_counter()
        res = xp.explain(photo, clf, methods=methods, seed=0, metrics=metrics, metric_settings=settings)
        if res.errors:
            raise SystemExit(f"{path.name}: {res.errors}")
        wall = time.perf_counter() - t0
        fc = res.costs["faithfulness"]
        cost["metrics s"].append(fc.wall_seconds)
        cost["metrics passes"].append(fc.forward_passes)
        cost["explain s"].append(wall - fc.wall_seconds)
        cost["explain passes"].append(sum(c.forward_passes for k, c in res.costs.items() if k != "faithfulness"))
        cost["superpixels"].append(res.segmentation.n_segments)
        scored = {m: dict(per) for m, per in res.faithfulness.items()}
        if not args.no_classic:
            classic, seconds = classic_scores(clf, res, seed=0)
            cost["classic s"].append(sum(seconds.values()))
            engine = _engine_for(res, clf)
            before = clf.forward_passes
            scored.update(faithfulness_of(engine, classic, steps=args.steps, random_orders=args.orders, seed=0))
            cost["classic metric passes"].append(clf.forward_passes - before)
            # how the classic scores agree with ours, on the same superpixels
            from scipy.stats import spearmanr

            m = res.segmentation.n_segments
            for ours, theirs in (("lime", "classic lime"), ("shap", "classic shap")):
                if ours in res.results and res.labels[0] in res.results[ours]:
                    u, v = res.results[ours][res.labels[0]].vector(m), classic[theirs][res.labels[0]].vector(m)
                    entry = agree.setdefault((ours, theirs), {"spearman": [], "iou": [], "inside": []})
                    entry["spearman"].append(float(spearmanr(u, v)[0]))
                    a_set, b_set = set(np.argsort(-u, kind="stable")[:5]), set(np.argsort(-v, kind="stable")[:5])
                    entry["iou"].append(len(a_set & b_set) / len(a_set | b_set))
        top = res.labels[0]
        for method, per in scored.items():
            row = rows.setdefault(method, {k: [] for k in (
                "del", "rdel", "ins", "rins", "del5", "rdel5", "ins5", "rins5", "beat_del", "beat_ins",
                "rise_del", "rise_ins")})
            f = per[top]
            row["del"].append(f.deletion_auc)
            row["rdel"].append(f.random_deletion_auc)
            row["ins"].append(f.insertion_auc)
            row["rins"].append(f.random_insertion_auc)
            row["beat_del"].append(f.deletion_auc < f.random_deletion_auc)
            row["beat_ins"].append(f.insertion_auc > f.random_insertion_auc)
            row["del5"].append(mean(g.deletion_auc for g in per.values()))
            row["rdel5"].append(mean(g.random_deletion_auc for g in per.values()))
            row["ins5"].append(mean(g.insertion_auc for g in per.values()))
            row["rins5"].append(mean(g.random_insertion_auc for g in per.values()))
            if f.pixel is not None:
                row["rise_del"].append(f.pixel.deletion_auc)
                row["rise_ins"].append(f.pixel.insertion_auc)
        a = res.agreement[top]
        for x, p in enumerate(a.methods):
            for y, q in enumerate(a.methods):
                if x < y:
                    first, second = (y, x) if not a.ranked[y] else (x, y)  # an anchor's share inside the other's top-k
                    entry = agree.setdefault((a.methods[first], a.methods[second]), {"spearman": [], "iou": [], "inside": []})
                    entry["spearman"].append(float(a.spearman[x, y]))
                    entry["iou"].append(float(a.iou[x, y]))
                    entry["inside"].append(float(a.inside[first, second]))
        print(f"[{i}/{len(files)}] {path.name}: {res.segmentation.n_segments} superpixels, explain "
              f"{wall - fc.wall_seconds:.1f} s, metrics {fc.wall_seconds:.1f} s / {fc.forward_passes} passes",
              file=sys.stderr, flush=True)

    n = len(files)
    out = [f"bench_trust: {n} photos of ../shared/data/imagenet-sample (full size), model {clf.model_id} on "
           f"{clf.backend}; {time.strftime('%Y-%m-%d %H:%M:%S')} (started {started})",
           f"machine: {load_before} at the start; {machine()} at the end",
           f"protocol: superpixel deletion/insertion, "
           f"{'one superpixel per step' if args.steps is None else f'{args.steps} steps'}, the engine's fill (mean), "
           f"{args.orders} random orders (seed 0) as the baseline; "
           f"superpixels per photo {min(cost['superpixels'])}-{max(cost['superpixels'])}",
           "", "top class (lower deletion / higher insertion is better; 'beats' = images better than the random "
           "baseline)",
           f"{'method':<14}{'deletion':>9}{'random':>8}{'beats':>7}{'insertion':>10}{'random':>8}{'beats':>7}"
           f"{'del all5':>9}{'rnd':>6}{'ins all5':>9}{'rnd':>6}" + (f"{'RISE del':>9}{'RISE ins':>9}" if args.rise else "")]
    for method, r in rows.items():
        line = (f"{method:<14}{mean(r['del']):>9.3f}{mean(r['rdel']):>8.3f}{sum(r['beat_del']):>4}/{n:<2}"
                f"{mean(r['ins']):>10.3f}{mean(r['rins']):>8.3f}{sum(r['beat_ins']):>4}/{n:<2}"
                f"{mean(r['del5']):>9.3f}{mean(r['rdel5']):>6.3f}{mean(r['ins5']):>9.3f}{mean(r['rins5']):>6.3f}")
        if args.rise:
            line += f"{mean(r['rise_del']):>9.3f}{mean(r['rise_ins']):>9.3f}"
        out.append(line)
    out += ["", "agreement, top class (mean over photos)", f"{'pair':<28}{'spearman':>9}{'top-5 IoU':>10}"
            f"{'first inside second top-5':>27}"]
    for (p, q), v in agree.items():
        out.append(f"{p + ' / ' + q:<28}{mean(v['spearman']):>9.3f}{mean(v['iou']):>10.3f}{mean(v['inside']):>27.3f}")
    out += ["", "cost per photo (mean)",
            f"  explanation {mean(cost['explain s']):.2f} s, {mean(cost['explain passes']):.0f} passes; "
            f"metrics {mean(cost['metrics s']):.2f} s, {mean(cost['metrics passes']):.0f} passes "
            f"(deletion+insertion for every method, class and random order, memoised)"]
    if cost["classic s"]:
        out.append(f"  classic lime + shap {mean(cost['classic s']):.2f} s; scoring them "
                   f"{mean(cost['classic metric passes']):.0f} passes")
    print("\n".join(out))
    if os.environ.get("BENCH_TRUST_OUT"):
        Path(os.environ["BENCH_TRUST_OUT"]).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
