"""Precompute throughput with 1 and 2 Dask workers, and cached-click latency from the store.

    .venv/bin/python benchmarks/bench_precompute.py [--images 12] [--lime-samples 300]
                                                    [--methods lime,anchors,shap] [--quick]

Throughput: N photos of the shared ImageNet sample (every 800/N-th file) explained into a
fresh store, on a Dask LocalCluster of 1 and of 2 single-threaded workers (models loaded
and warmed before the clock starts, so cluster start-up is not counted), and in this
process (ONNX Runtime using every core) for reference. Cached click: for each stored
image, ``store.get`` alone and a full click (decode the file, hash it, ``store.get``),
repeated; p50/p95 in ms. Goal: 2 workers >= 1.8x one worker where 2 free cores exist;
cached read < 50 ms.

Only measured figures are printed. Left out: cluster start-up and the workers' model load
(before the clock), and any machine but this one: on a shared machine the two workers, the
client and the scheduler compete with other jobs for the cores, so the measured ratio is
what this machine gave at that load (printed), not what two free cores would give.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine, sample_folder  # noqa: E402


def _run_dask(folder: Path, workers: int, store_path: Path, kwargs: dict) -> tuple[float, int]:
    from distributed import Client, LocalCluster

    from xai_panel.batch import precompute
    from xai_panel.batch.tasks import worker_model_id

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.run(worker_model_id, "efficientnet_lite0", 1)  # load on every worker before timing
        cpu0, own0 = client.run(time.process_time), time.process_time()
        t0 = time.perf_counter()
        report = precompute(folder, store=store_path, client=client, progress=False, **kwargs)
        seconds = time.perf_counter() - t0
        cpu1, own1 = client.run(time.process_time), time.process_time()
    if report.failed:
        print(report.format(), file=sys.stderr)
    workers_cpu = sum(cpu1[w] - cpu0[w] for w in cpu1)
    return seconds, report.done, workers_cpu, own1 - own0


def _run_local(folder: Path, store_path: Path, kwargs: dict) -> tuple[float, int]:
    from xai_panel.batch import precompute
    from xai_panel.models import load_classifier

    load_classifier()
    own0, t0 = time.process_time(), time.perf_counter()
    report = precompute(folder, store=store_path, progress=False, **kwargs)
    return time.perf_counter() - t0, report.done, float("nan"), time.process_time() - own0


def _latency(folder: Path, store_path: Path, kwargs: dict, rounds: int) -> tuple[list[float], list[float]]:
    from xai_panel.data import image_hash, load_image
    from xai_panel.models import load_classifier
    from xai_panel.store import ExplainRequest, ExplanationStore

    store = ExplanationStore(store_path)
    model_id = load_classifier().model_id
    request = ExplainRequest.create(model_id, kwargs["methods"], settings=kwargs.get("settings"),
                                    segmentation=kwargs.get("segmentation", "quickshift"))
    paths = sorted(folder.glob("*.JPEG"))
    hashes = [image_hash(load_image(p)) for p in paths]
    store.get(hashes[0], request)  # first read opens the connection
    get_ms, click_ms = [], []
    for _ in range(rounds):
        for path, h in zip(paths, hashes):
            t0 = time.perf_counter()
            got = store.get(h, request)
            get_ms.append(1e3 * (time.perf_counter() - t0))
            assert got is not None and set(got.methods) == set(request.methods), path
            t0 = time.perf_counter()
            store.get(image_hash(load_image(path)), request)
            click_ms.append(1e3 * (time.perf_counter() - t0))
    store.close()
    return get_ms, click_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--methods", default="lime,anchors,shap")
    parser.add_argument("--lime-samples", type=int, default=300, help="LIME samples = the shared pool size")
    parser.add_argument("--rounds", type=int, default=10, help="repetitions of the cached reads")
    parser.add_argument("--quick", action="store_true", help="LIME only on a 6x6 grid, 4 images (smoke test)")
    args = parser.parse_args()
    methods = tuple(m.strip() for m in args.methods.split(","))
    kwargs = {"methods": methods, "settings": {"lime": {"num_samples": args.lime_samples}}}
    if args.quick:
        args.images = min(args.images, 4)
        kwargs = {"methods": ("lime",), "segmentation": "grid", "settings": {"lime": {"num_samples": 60}}}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = sample_folder(args.images, tmp / "images")
        n = len(list(folder.iterdir()))
        print(f"machine: {machine()}")
        print(f"workload: {n} photos of the shared ImageNet sample; methods {', '.join(kwargs['methods'])}; "
              f"segmentation {kwargs.get('segmentation', 'quickshift')} (defaults); "
              f"lime num_samples {kwargs['settings']['lime']['num_samples']} (shared pool); "
              "other settings default; top-k 5; model efficientnet_lite0 (ONNX Runtime)")
        rows = []
        for label, run in (("dask, 1 worker x 1 thread", lambda p: _run_dask(folder, 1, p, kwargs)),
                           ("dask, 2 workers x 1 thread", lambda p: _run_dask(folder, 2, p, kwargs)),
                           ("in-process (ORT on all cores)", lambda p: _run_local(folder, p, kwargs))):
            store_path = tmp / f"{len(rows)}.sqlite"
            seconds, done, workers_cpu, client_cpu = run(store_path)
            rows.append((label, done, seconds, 60.0 * done / seconds, workers_cpu / done, client_cpu / done))
            print(f"  ... {label}: {done} images in {seconds:.1f} s", file=sys.stderr, flush=True)
        get_ms, click_ms = _latency(folder, tmp / "0.sqlite", kwargs, args.rounds)

    one = rows[0][3]
    print()
    print(f"{'run':<32} {'images':>6} {'seconds':>8} {'images/min':>11} {'vs 1 worker':>12} "
          f"{'worker CPU s/img':>17} {'client CPU s/img':>17}")
    for label, done, seconds, per_min, worker_cpu, client_cpu in rows:
        print(f"{label:<32} {done:>6} {seconds:>8.1f} {per_min:>11.2f} {per_min / one:>11.2f}x "
              f"{worker_cpu:>17.2f} {client_cpu:>17.2f}")
    print()
    print(f"{'cached read':<32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   (n={len(get_ms)})")
    for label, values in (("store.get (all methods)", get_ms), ("click: decode+hash+get", click_ms)):
        v = np.asarray(values)
        print(f"{label:<32} {np.percentile(v, 50):>8.1f} {np.percentile(v, 95):>8.1f} {v.max():>8.1f}")
    speedup = rows[1][3] / one
    print()
    print(f"measured: 2 workers / 1 worker = {speedup:.2f}x (goal >= 1.8x with 2 free cores; "
          f"{machine()} at the end); cached get p95 {np.percentile(get_ms, 95):.1f} ms (goal < 50 ms)")


if __name__ == "__main__":
    main()
