"""The gradient methods (issue #13) on real photos: cost per method, the first explanation, faithfulness.

    python benchmarks/bench_gradients.py [--images 10] [--top-k 5] [--backend auto] [--threads 0]

On ``--images`` photos of the shared ImageNet sample (evenly spaced over its sorted names),
EfficientNet-Lite0 (``load_classifier(backend=...)``: ONNX Runtime for the forward passes by
default, the gradients from its torch module), the dashboards' interactive settings
(``FAST_SETTINGS``: SLIC superpixels, their budgets), top-``--top-k`` classes, one process:

- per method (Grad-CAM, Integrated Gradients, SmoothGrad, and LIME for scale): wall time
  (median and max), forward and backward passes, from ``res.costs``; the first photo is run
  once before, untimed (imports, the layer search, the runtimes' first batches);
- the first explanation: ``explain`` from the photo to Grad-CAM's maps (segmentation, top
  classes, Grad-CAM: ``costs["top-k"] + costs["gradcam"]``), the server-side share of the
  dashboards' click-to-first-pane (goal 0.3 s; ``bench_dashboard`` measures it in a browser);
- faithfulness (``xai_panel.metrics``, the superpixel protocol): the top class's deletion AUC
  of each method against the mean of random orders; the count of photos where the method
  beats random (lower deletion AUC) is the check of the issue.

The table is printed and appended to ``benchmarks/results/bench_gradients.txt``. Machines
are shared and noisy: read the load average printed with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine  # noqa: E402

SAMPLE = ROOT / ".." / "shared" / "data" / "imagenet-sample"
RESULTS = ROOT / "benchmarks" / "results" / "bench_gradients.txt"
METHODS = ("gradcam", "integrated_gradients", "smoothgrad", "lime")
GOAL_FIRST = 0.3


def photos(n: int) -> list[Path]:
    files = sorted(SAMPLE.glob("*.JPEG"))
    if not files:
        sys.exit(f"no photos in {SAMPLE} (the shared ImageNet sample)")
    step = max(1, len(files) // n)
    return files[::step][:n]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"])
    parser.add_argument("--threads", type=int, default=0,
                        help="torch's threads for the gradients (XAI_PANEL_GRADIENT_THREADS; 0: its default, 1)")
    args = parser.parse_args(argv)

    import numpy as np

    import xai_panel as xp
    from xai_panel.components.widgets.settings import fast_settings
    from xai_panel.data import load_image
    from xai_panel.models import load_classifier

    if args.threads:
        os.environ["XAI_PANEL_GRADIENT_THREADS"] = str(args.threads)
    from xai_panel.config import config
    clf = load_classifier(backend=args.backend)
    fast = fast_settings()
    kwargs = dict(methods=METHODS, top_k=args.top_k, segmentation=fast["segmentation"],
                  settings={m: fast.get(m, {}) for m in METHODS}, metrics=("faithfulness",))
    chosen = photos(args.images)
    lines = [f"bench_gradients · {time.strftime('%Y-%m-%d %H:%M')} · {machine()}",
             f"model {clf.model_id}, forward passes on {clf.backend}, gradients on torch ({clf.torch_device}, "
             f"{config().gradient_threads} thread(s)); {len(chosen)} photos; top-{args.top_k}; settings "
             f"{kwargs['segmentation']} + {kwargs['settings']}"]
    print(*lines, sep="\n", flush=True)
    xp.explain(load_image(chosen[0]), clf, **kwargs)  # untimed: imports, layer search, first batches

    costs: dict[str, list] = {m: [] for m in METHODS}
    first, beats, gaps = [], {m: 0 for m in METHODS}, {m: [] for m in METHODS}
    for path in chosen:
        res = xp.explain(load_image(path), clf, **kwargs)
        for m in METHODS:
            costs[m].append(res.costs[m])
            f = res.faithfulness[m][res.labels[0]]
            beats[m] += f.deletion_auc < f.random_deletion_auc
            gaps[m].append(f.random_deletion_auc - f.deletion_auc)
        first.append(res.costs["top-k"].wall_seconds + res.costs["gradcam"].wall_seconds)
        print(f"  {path.name[:40]:40} top-1 {res.top[0].name[:20]:20} first map {first[-1]:.2f} s  "
              + "  ".join(f"{m} {res.costs[m].wall_seconds:.2f} s" for m in METHODS), flush=True)

    def mm(values):
        return f"{statistics.median(values):7.2f} {max(values):7.2f}"

    table = [f"{'method':22} {'wall s med':>10} {'max':>7} {'forward':>8} {'backward':>8}   "
             f"{'deletion AUC < random':>22} {'mean gap':>9}"]
    for m in METHODS:
        fw = int(np.median([c.forward_passes for c in costs[m]]))
        bw = int(np.median([c.backward_passes for c in costs[m]]))
        table.append(f"{m:22} {mm([c.wall_seconds for c in costs[m]]):>18} {fw:8d} {bw:8d}   "
                     f"{beats[m]:>12d} of {len(chosen):<6d} {np.mean(gaps[m]):+9.3f}")
    table += ["", f"photo -> Grad-CAM maps (segment + top-k + Grad-CAM, in explain): {mm(first)} s (median, max); "
              f"goal for the click -> first pane: {GOAL_FIRST} s "
              f"({'met' if max(first) < GOAL_FIRST else 'missed'} on the max here, server side only)",
              "forward/backward: median passes per photo for all classes; mean gap: random deletion AUC minus the "
              "method's (positive: better than random)", f"after: {machine()}"]
    print(*table, sep="\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write("\n".join(lines + table) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
