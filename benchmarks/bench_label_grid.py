"""The label grid's costs: drawing a page of stored cards, and what it does to a click (issue #15).

    .venv/bin/python benchmarks/bench_label_grid.py [--images 12] [--clicks 8]

In one process, no server: a folder of ``--images`` photos of the shared ImageNet sample under one
label, a fresh store holding LIME and Grad-CAM results for all of them (small budgets: the page's
cost is reading and drawing, not the budget), the gallery, a session following its selection and a
``LabelGrid``. Measures:

- page, cold / warm: opening the grid until its page of cards is drawn (hash memo, store reads,
  overlays drawn and encoded), first with empty caches, then again (the tiles are cached);
- KB per card: the size of a card's picture (a JPEG data URL);
- click -> top-5: ``gallery.select`` until the session publishes the top classes, median of
  ``--clicks`` clicks on images not visited yet (so nothing comes from the memory cache), with the
  grid hidden, open, and open while "explain this label" runs in the compute lane.

Machines are shared and noisy: compare the ratios of one run; the load average is printed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import SAMPLE, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=12, help="photos in the label (one page)")
    parser.add_argument("--clicks", type=int, default=8, help="clicks per condition")
    args = parser.parse_args()

    from xai_panel.components import ExplainerSettings, ExplanationSession, Gallery
    from xai_panel.components.widgets import label_grid
    from xai_panel.data import image_hash, open_dataset
    from xai_panel.engine.service import ExplanationService
    from xai_panel.methods._gradients import GradientResult
    from xai_panel.methods.base import registry
    from xai_panel.runtime.cache import decoded_images, default_cache
    from xai_panel.runtime.jobs import classifier as load_model
    from xai_panel.store import ExplanationStore

    print(f"before: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-label-grid-"))
    files = sorted(SAMPLE.glob("*.JPEG"))
    if not files:
        sys.exit(f"the shared ImageNet sample is not at {SAMPLE}")
    n = args.images + 3 * args.clicks  # the label, then photos only clicked (never explained)
    label = tmp / "data" / "sample"
    label.mkdir(parents=True)
    for k, src in enumerate(files[:: max(1, len(files) // n)][:n]):  # renamed: a wnid in the name is a label
        shutil.copyfile(src, label / f"photo-{k:03d}.jpg")
    dataset = open_dataset(tmp / "data")
    store = ExplanationStore(tmp / "store.sqlite")
    pool = next(m for m, c in registry().items() if c.defines_pool)
    pixel = next(m for m, c in registry().items() if issubclass(c.result_type, GradientResult))
    settings = ExplainerSettings.from_dict({"methods": [pool, pixel], "segmentation": "grid", "grid_size": 4,
                                            pool: {"num_samples": 60}})
    gallery = Gallery(dataset=dataset, store=store, predict=False, page_size=200)
    session = ExplanationSession(source=gallery.param.selected_record, model=gallery.model, settings=settings,
                                 store=store, metrics=[])
    grid = label_grid.LabelGrid(gallery=gallery, settings=settings, store=store, page_size=args.images,
                                metrics=["faithfulness"], metric_settings={"steps": 4, "random_orders": 1})
    classifier = load_model(gallery.model)
    request = grid._request(dict(settings.request), grid.top_k)
    records = list(dataset)
    t0 = time.perf_counter()
    for record in records[: args.images]:
        image = record.load()
        ExplanationService(store=store).compute(classifier.prepare(image), classifier, request,
                                                image_hash=image_hash(image), record=record, write="each")
    print(f"stored {args.images} images ({pool}, {pixel}) in {time.perf_counter() - t0:.1f} s")
    default_cache().clear()

    rows = []

    def page(what: str) -> None:
        t = time.perf_counter()
        grid.param.update(active=True)
        gallery.label = "sample"
        grid._follow(force=True)
        grid.wait()
        cards = [c for c in grid.items() if c["detail"] != "not explained yet"]
        rows.append((what, f"{time.perf_counter() - t:.3f} s", f"{len(cards)} cards"))

    decoded_images().clear()
    page("page, cold (12 stored cards)" if args.images == 12 else f"page, cold ({args.images} cards)")
    kb = statistics.mean(len(c["src"]) for c in grid.items()) / 1024
    grid.active = False
    page("page, warm (tiles cached)")
    rows.append(("KB per card", f"{kb:.1f}", ""))

    clicked = iter(records[args.images:])

    def clicks(what: str) -> None:
        times = []
        for _ in range(args.clicks):
            record = next(clicked)
            t = time.perf_counter()
            gallery.select(record.id)
            while not session.top or session.requested != record.id or session.status == "loading":
                time.sleep(0.002)
            times.append(time.perf_counter() - t)
            session.cancel()
        rows.append((f"click -> top-5, {what}", f"{statistics.median(times):.3f} s",
                     f"median of {len(times)} (min {min(times):.3f})"))

    grid.active = False
    clicks("grid hidden")
    grid.active = True
    grid.wait()
    clicks("grid open")
    settings.seed = 1  # a request the store lacks: the label is explained again, image after image
    grid.wait()
    grid.explain_label()
    clicks("grid open, explain this label running")
    grid.cancel()
    grid.wait()

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")
    print(f"\nafter: {machine()}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
