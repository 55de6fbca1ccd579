"""Forward-pass throughput of the embedded model (and optionally others) per backend and batch size.

    python benchmarks/bench_model.py [--models efficientnet_lite0 resnet18] [--batches 1 10 32 64]

Prints a table of images/s (median of --repeats runs) at 224x224 on real photos' views.
Machines are shared and noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from xai_panel.models import ModelError, load_classifier


def measure(clf, images: np.ndarray, batch: int, repeats: int) -> float:
    clf.predict_proba(images[:batch], batch_size=batch)  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.predict_proba(images, batch_size=batch)
        rates.append(len(images) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["efficientnet_lite0"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 10, 32, 64])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from skimage import data

    base = load_classifier(backend="torch").prepare(data.chelsea())
    rng = np.random.default_rng(0)
    noise = rng.integers(-20, 21, (args.images, *base.shape))
    images = np.clip(base[None].astype(int) + noise, 0, 255).astype(np.uint8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, {args.images} images of 224x224\n")
    print(f"{'model':<20} {'backend':<12} " + " ".join(f"{'b=' + str(b):>8}" for b in args.batches) + "   (images/s)")
    for name in args.models:
        for backend in ("torch", "onnxruntime"):
            try:
                clf = load_classifier(name, backend=backend)
            except ModelError as exc:
                print(f"{name:<20} {backend:<12} unavailable: {exc}")
                continue
            rates = [measure(clf, images, b, args.repeats) for b in args.batches]
            print(f"{name:<20} {clf.backend:<12} " + " ".join(f"{r:8.1f}" for r in rates))


if __name__ == "__main__":
    main()
