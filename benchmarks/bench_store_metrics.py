"""The trust metrics in the store: what measuring a precomputed store costs, what the metrics
add to it, and how fast a stored image and a faithfulness sort read back.

    .venv/bin/python benchmarks/bench_store_metrics.py [--images 8] [--lime-samples 300] [--steps 10]

N photos of the shared ImageNet sample (every 800/N-th file) are explained with LIME into a
fresh store (in this process, quickshift superpixels), then ``precompute --metrics
faithfulness,agreement`` runs twice on the same store: with one step per superpixel (the
default) and with ``--steps`` steps (a second set of metrics beside the first). Each run
only measures (no method runs again; checked). Printed: seconds per image for each pass,
the payload bytes the metrics add per image against the explanation's, ``store.get`` of a
measured image against a store without metrics (p50/p95 of 20 reads each), and
``summaries(sort_by="deletion_auc:lime")`` (p50 of 20). Only measured figures are printed;
on a shared machine they are what it gave at that load.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import machine, sample_folder  # noqa: E402


def _ms(fn, repeat: int = 20) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--lime-samples", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    from xai_panel.batch import precompute
    from xai_panel.data import image_hash, load_image
    from xai_panel.store import ExplainRequest, ExplanationStore

    kwargs = {"methods": ("lime",), "settings": {"lime": {"num_samples": args.lime_samples}}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = sample_folder(args.images, tmp / "images")
        path = tmp / "store.sqlite"
        t0 = time.perf_counter()
        first = precompute(folder, store=path, progress=False, **kwargs)
        explain_s = time.perf_counter() - t0 - first.startup_seconds
        src, dst = sqlite3.connect(path), sqlite3.connect(tmp / "plain.sqlite")
        src.backup(dst)  # the store is in WAL mode: a file copy could miss the last commits
        src.close()
        dst.close()
        with ExplanationStore(path) as store:
            rows_before = sorted((r.key, r.created_at) for r in store.results())
        passes = []
        for label, settings in (("one step per superpixel", {}), (f"{args.steps} steps", {"steps": args.steps})):
            t0 = time.perf_counter()
            report = precompute(folder, store=path, progress=False, metrics=("faithfulness", "agreement"),
                                metric_settings=settings, **kwargs)
            passes.append((label, report.measured, time.perf_counter() - t0 - report.startup_seconds))
        with ExplanationStore(path) as store:
            assert sorted((r.key, r.created_at) for r in store.results()) == rows_before, "a method ran again"
        raw = sqlite3.connect(path)
        result_bytes = raw.execute("SELECT SUM(length(payload)) FROM results").fetchone()[0]
        base_bytes = raw.execute("SELECT SUM(length(payload)) FROM bases").fetchone()[0]
        by_kind = dict(raw.execute("SELECT kind || ' ' || settings, SUM(length(payload)) FROM measures "
                                   "GROUP BY kind, settings").fetchall())
        raw.close()

        request = ExplainRequest.create(first.model_id, **kwargs)
        h = image_hash(load_image(sorted(folder.glob("*.JPEG"))[0]))
        with ExplanationStore(tmp / "plain.sqlite") as plain, ExplanationStore(path) as measured:
            got, bare = measured.get(h, request), plain.get(h, request)
            assert got.faithfulness and got.agreement, "the measured store returned no metrics"
            assert bare is not None and bare.lime and not bare.faithfulness, "the copy without metrics is wrong"
            plain_ms = _ms(lambda: plain.get(h, request))
            measured_ms = _ms(lambda: measured.get(h, request))
            sort_ms = _ms(lambda: measured.summaries(first.model_id, sort_by="deletion_auc:lime", descending=True))

    n = first.done
    print(f"# bench_store_metrics: {n} photos, LIME {args.lime_samples} samples, quickshift; {machine()}")
    print()
    print("| pass | images | s per image |")
    print("|---|---:|---:|")
    print(f"| explain (LIME) | {n} | {explain_s / max(n, 1):.2f} |")
    for label, count, seconds in passes:
        print(f"| measure only: faithfulness + agreement, {label} | {count} | {seconds / max(count, 1):.2f} |")
    print()
    print("| stored | bytes per image |")
    print("|---|---:|")
    print(f"| base (view, superpixels, top-k) | {base_bytes / n:,.0f} |")
    print(f"| LIME result | {result_bytes / n:,.0f} |")
    for kind, size in sorted(by_kind.items()):
        print(f"| {kind} | {size / n:,.0f} |")
    print()
    print("| read | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    print(f"| store.get, no metrics stored | {plain_ms[0]:.1f} | {plain_ms[1]:.1f} |")
    print(f"| store.get, with both metric sets stored | {measured_ms[0]:.1f} | {measured_ms[1]:.1f} |")
    print(f"| summaries sorted by deletion_auc:lime ({n} images) | {sort_ms[0]:.1f} | {sort_ms[1]:.1f} |")


if __name__ == "__main__":
    main()
