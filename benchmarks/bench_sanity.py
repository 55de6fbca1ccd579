"""The model-randomisation sanity check: where the randomised copies should run, and what it finds.

    .venv/bin/python benchmarks/bench_sanity.py                 # 3 photos, 5 stages, LIME 200 + SHAP on its pool
    .venv/bin/python benchmarks/bench_sanity.py --images 5 --samples 400 --methods lime,shap,occlusion

Part 1 (runtime of a randomised copy of EfficientNet-Lite0, batch 32, median of --repeats):
torch eager; ONNX Runtime with a fresh export of the copy (export time, then passes/s: what
a per-stage export costs); ONNX Runtime on one graph with the weights as inputs (exported once,
what ``sanity_check`` uses). Part 2: ``xp.sanity_check`` on photos of ../shared/data: per
method and stage the Spearman and top-5 IoU with the trained explanation, pass/fail, wall
time and passes.
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
PHOTOS = ("n02123045_tabby.JPEG", "n01440764_tench.JPEG", "n03028079_church.JPEG", "n03445777_golf_ball.JPEG",
          "n02099601_golden_retriever.JPEG")


def _speed(run, x: np.ndarray, repeats: int) -> float:
    run(x)  # the first batch plans the runtime's memory
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    return len(x) / statistics.median(times)


def runtimes(clf, repeats: int) -> None:
    import onnxruntime as ort
    import torch

    from xai_panel.metrics.sanity import _reinitialise, _WeightFedGraph, model_units

    module = copy.deepcopy(clf.torch_module).eval()
    for index, (_, unit) in enumerate(model_units(module)[-6:]):
        _reinitialise(unit, index)
    x = clf.preprocessing.normalise(np.random.default_rng(0).integers(0, 256, (32, 224, 224, 3), dtype=np.uint8))
    rows = []
    with torch.inference_mode():
        rows.append(("torch eager", 0.0, _speed(lambda b: module(torch.from_numpy(b)).numpy(), x, repeats)))
    t0 = time.perf_counter()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(2, 3, 224, 224), buffer, dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = min(torch.get_num_threads(), 8), 1
    session = ort.InferenceSession(buffer.getvalue(), sess_options=options, providers=["CPUExecutionProvider"])
    setup = time.perf_counter() - t0
    rows.append(("ORT, the copy exported (per stage)", setup,
                 _speed(lambda b: session.run(None, {"input": b})[0], x, repeats)))
    t0 = time.perf_counter()
    graph = _WeightFedGraph(module, 224, x[:2])
    setup = time.perf_counter() - t0
    run = graph.runner(module)
    rows.append(("ORT, weights as inputs (once)", setup, _speed(run, x, repeats)))
    print("\n| randomised Lite0 copy, batch 32 | setup s | passes/s |\n|---|---:|---:|")
    for name, s, speed in rows:
        print(f"| {name} | {s:.2f} | {speed:.1f} |")


def checks(clf, photos: list[Path], methods: tuple[str, ...], stages: int, samples: int) -> None:
    import xai_panel as xp

    print(f"\n| photo | class (p) | method | {' | '.join(f'stage {i + 1}' for i in range(stages))} | passes? | wall s "
          "| passes |\n|---|---|---|" + "---:|" * stages + "---|---:|---:|")
    for path in photos:
        image = xp.load_image(path)
        res = xp.sanity_check(image, clf, methods, stages=stages, settings={"lime": {"num_samples": samples}})
        for method in res.methods:
            cells = " | ".join(f"{s:+.2f} ({o:.2f})" for s, o in zip(res.similarity[method], res.top_overlap[method]))
            print(f"| {path.stem.split('_', 1)[1]} | {res.label.name} ({res.label.probability:.2f}) | {method} | "
                  f"{cells} | {'pass' if res.passed[method] else 'FAIL'} | {res.seconds:.1f} | {res.forward_passes} |")
    print(f"\nstages: {', '.join(res.stages)} (deepest unit re-initialised; {len(res.units)} units); "
          f"cells: Spearman (top-5 IoU) with the trained explanation; runtime {res.runtime}; "
          f"p of the class at the stages: {', '.join(f'{p:.3f}' for p in res.label_probability)} (last photo)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--stages", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200, help="LIME's pool per stage")
    parser.add_argument("--methods", default="lime,shap")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-runtimes", action="store_true")
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        sys.exit(f"the shared sample is not at {SAMPLE}")
    from xai_panel.models import load_classifier

    print(f"# bench_sanity · {machine()}")
    clf = load_classifier()
    if not args.skip_runtimes:
        runtimes(clf, args.repeats)
    photos = [SAMPLE / name for name in PHOTOS[: args.images]]
    checks(clf, photos, tuple(args.methods.split(",")), args.stages, args.samples)
    print(f"\n(load average at the end: {machine().rsplit('load average ', 1)[1]})")


if __name__ == "__main__":
    main()
