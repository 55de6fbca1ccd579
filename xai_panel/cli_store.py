"""``xai-panel precompute`` and ``xai-panel store info|prune|export|import``.

Wiring (in ``xai_panel/cli.py``)::

    sub = parser.add_subparsers(dest="command", required=True)
    add_precompute_parser(sub)
    add_store_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)          # an int exit code

Exit codes: 0 success, 1 some images failed (precompute; listed at the end), 2 the run
could not start or the store is unusable (the message says why).
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_precompute_parser", "add_store_parser", "configure_precompute_parser", "parse_metrics", "parse_settings",
           "run_precompute", "run_store", "main_precompute"]


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: a string setting such as estimator=kernel


def parse_settings(items: list[str] | None) -> tuple[dict, dict]:
    """``["lime.num_samples=300", "segmentation.kernel_size=6"]`` -> (settings, segmentation_params)."""
    settings: dict = {}
    seg: dict = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        method, dot, param = name.strip().partition(".")
        if not sep or not dot or not param:
            raise ValueError(f"--set takes METHOD.PARAM=VALUE (e.g. lime.num_samples=300), got {item!r}")
        target = seg if method == "segmentation" else settings.setdefault(method, {})
        target[param] = _parse_value(value.strip())
    return settings, seg


def parse_metrics(args: argparse.Namespace) -> tuple[tuple[str, ...], dict]:
    """``--metrics`` and ``--metric-*`` -> checked (metrics, metric settings); ValueError says what is wrong."""
    from .metrics.trust import check_metrics
    from .presets import DASHBOARD_METRIC_SETTINGS, DASHBOARD_METRICS

    if args.metrics is None:  # what the dashboards measure, with their settings (unless the flags say otherwise)
        names, given = list(DASHBOARD_METRICS), dict(DASHBOARD_METRIC_SETTINGS)
    elif args.metrics.strip().lower() == "none":
        names, given = [], {}
    else:
        names, given = [m.strip() for m in args.metrics.split(",") if m.strip()], {}
        if not names:
            raise ValueError("--metrics needs at least one name (faithfulness, agreement, rise) or 'none'")
    for flag, key, low, high, default in (("--metric-steps", "steps", 1, None, "one step per superpixel"),
                                          ("--metric-orders", "random_orders", 1, 100, "3"),
                                          ("--metric-k", "k", 1, 10_000, "5")):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if not names:
            raise ValueError(f"{flag} sets a trust metric's setting, and --metrics none measures none")
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(f"{flag} must be {bounds}, got {value} (leave it out for the default: {default})")
        given[key] = value
    return check_metrics(names, given)


def configure_precompute_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("data", metavar="DATA", help="folder of images (ImageNet wnid names/folders or class folders), "
                                                "or 'demo' for the bundled demo photos")
    p.add_argument("--model", default="efficientnet_lite0",
                   help="model name or file (default: the embedded efficientnet_lite0); a file must exist on every worker")
    p.add_argument("--preset", default="interactive", metavar="NAME",
                   help="named settings: interactive (the dashboards', the default: what the gallery looks up) "
                        "or thorough (the library's defaults); --methods, --segmentation and --set apply over it")
    p.add_argument("--methods", default=None,
                   help="comma-separated methods (default: the preset's methods; "
                        "'xai-panel methods' lists every registered one)")
    p.add_argument("--top-k", type=int, default=5, help="classes explained per image (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--segmentation", default=None,
                   help="superpixel algorithm (default: the preset's: slic for interactive, quickshift for thorough)")
    p.add_argument("--fill", default="mean", help="what hidden superpixels show: mean, blur, constant (default: mean)")
    p.add_argument("--set", dest="settings", action="append", metavar="METHOD.PARAM=VALUE",
                   help="a method setting, repeatable: lime.num_samples=300, shap.estimator=kernel, "
                        "segmentation.kernel_size=6")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="start a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask cluster (tcp://host:8786)")
    p.add_argument("--model-threads", type=int, metavar="N",
                   help="model threads per Dask worker (default 1: one worker per core)")
    p.add_argument("--metrics", default=None, metavar="NAMES",
                   help="trust metrics to store with the explanations, comma-separated: faithfulness, agreement, "
                        "rise, or 'none' (default: what the dashboards measure, faithfulness,agreement in 10 steps, "
                        "so the gallery shows a precomputed image's trust pane from the store too); images stored "
                        "without them are measured without being explained again")
    p.add_argument("--metric-steps", type=int, default=None, metavar="N",
                   help="deletion/insertion steps (default: 10 with the default metrics, else one per superpixel)")
    p.add_argument("--metric-orders", type=int, default=None, metavar="N",
                   help="random orders averaged for the faithfulness baseline (default: 3)")
    p.add_argument("--metric-k", type=int, default=None, metavar="K",
                   help="superpixels in each method's top set for the agreement (default: 5)")
    p.add_argument("--store", metavar="PATH", help="store file (default: $XAI_PANEL_STORE or the user cache dir)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_precompute)
    return p


def add_precompute_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``precompute`` on an ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "precompute", help="explain a folder of images into the store (resumable; Dask optional)",
        description="Explain every image of DATA into the explanation store. Images already stored for these "
                    "settings are skipped, so an interrupted run resumes; bad images are reported at the end.")
    return configure_precompute_parser(p)


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def run_precompute(args: argparse.Namespace) -> int:
    from .batch import precompute
    from .data import DatasetError
    from .store import ExplanationStore, StoreError

    prog = "xai-panel precompute"
    try:
        from .presets import preset

        preset(args.preset)  # an unknown name is refused before anything is opened
        settings, seg = parse_settings(args.settings)
        methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
        metrics, metric_settings = parse_metrics(args)  # checked before the store is opened
        store = ExplanationStore(args.store)
        report = precompute(
            args.data, store=store, model=args.model, methods=methods, top_k=args.top_k, seed=args.seed,
            segmentation=args.segmentation, segmentation_params=seg, fill=args.fill, settings=settings,
            preset=args.preset, workers=args.workers, scheduler=args.scheduler, model_threads=args.model_threads,
            limit=args.limit, metrics=metrics, metric_settings=metric_settings, progress=not args.no_progress)
    except (StoreError, DatasetError, ValueError, OSError) as exc:
        return _fail(prog, str(exc))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished images are stored, run again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # model load failures and the like: a message, not a traceback
        if type(exc).__name__ in ("ModelError", "TimeoutError", "OSError", "CommClosedError"):
            return _fail(prog, f"{type(exc).__name__}: {exc}")
        raise
    print(report.format())
    return 0 if report.ok else 1


def main_precompute(argv: list[str] | None = None) -> int:
    """``python -m xai_panel.batch ...``: precompute without the rest of the CLI."""
    parser = configure_precompute_parser(argparse.ArgumentParser(prog="python -m xai_panel.batch"))
    args = parser.parse_args(argv)
    return args.func(args)


# -- store ---------------------------------------------------------------------------
def add_store_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``store info|prune|export|import`` on an ``add_subparsers()`` object."""
    p = subparsers.add_parser("store", help="inspect, prune, export or import the explanation store",
                              description="Inspect, prune, export or import the explanation store.")
    actions = p.add_subparsers(dest="store_command", required=True, metavar="{info,prune,export,import}")

    info = actions.add_parser("info", help="size, schema and row counts per model, method and version")
    info.add_argument("--json", action="store_true", help="print JSON")

    prune = actions.add_parser("prune", help="delete stored results (every given condition must hold)")
    prune.add_argument("--model", metavar="MODEL_ID", help="rows of this model id (see store info)")
    prune.add_argument("--method", help="rows of this method")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="rows stored more than DAYS days ago")
    prune.add_argument("--other-versions", action="store_true", help="rows written by other xai-panel versions")
    prune.add_argument("--all", action="store_true", help="everything")
    prune.add_argument("--no-vacuum", action="store_true", help="do not compact the file afterwards")

    export = actions.add_parser("export", help="write stored results as JSON + PNGs (or one HTML report per image)")
    export.add_argument("ref", metavar="REF", help="image id, image hash or result key (or a 6+ digit prefix)")
    export.add_argument("--out", default="xai-panel-export", help="output folder (default: ./xai-panel-export)")
    export.add_argument("--html", action="store_true",
                        help="write one self-contained HTML report per image instead (every stored method's maps, "
                             "costs and trust metrics; no external resources)")

    load = actions.add_parser("import", help="store results written by store export (or a dashboard's numbers zip)")
    load.add_argument("paths", metavar="PATH", nargs="+",
                      help="an export folder, a result.json, or a zip downloaded from a dashboard")

    for sub in (info, prune, export, load):
        sub.add_argument("--store", metavar="PATH", help="store file (default: $XAI_PANEL_STORE or the user cache dir)")
        sub.set_defaults(func=run_store)
    return p


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run_store(args: argparse.Namespace) -> int:
    from .store import ExplanationStore, StoreError, export_result, find_results
    from .store.export import ExportError, import_results

    prog = f"xai-panel store {args.store_command}"
    try:
        store = ExplanationStore(args.store, create=args.store_command not in ("info", "export"))
        if args.store_command == "info":
            info = store.info()
            if args.json:
                print(json.dumps(info, indent=2))
                return 0
            print(f"store   {info['path']}  ({_human(info['bytes_on_disk'])}, schema {info['schema']})")
            print(f"images  {info['images']} summarised, {info['bases']} image/settings bases, "
                  f"{info['results']} results, {info['metrics']} metrics, {info['measures']} trust metrics")
            for g in info["groups"]:
                print(f"  {g['model_id']:<36} {g['method']:<8} v{g['version']:<10} {g['rows']:>7} rows "
                      f"{_human(g['payload_bytes'] or 0):>10}")
            return 0
        if args.store_command == "prune":
            if not (args.model or args.method or args.older_than is not None or args.other_versions or args.all):
                return _fail(prog, "say what to prune: --model, --method, --older-than, --other-versions or --all")
            n = store.prune(model_id=args.model, method=args.method,
                            older_than=None if args.older_than is None else args.older_than * 86400,
                            other_versions=args.other_versions, everything=args.all, vacuum=not args.no_vacuum)
            print(f"pruned {n} result(s) from {store.path}")
            return 0
        if args.store_command == "import":
            for path in args.paths:
                keys = import_results(store, path)
                print(f"imported {len(keys)} result(s) from {path} into {store.path}")
            return 0
        keys = find_results(store, args.ref)
        if not keys:
            return _fail(prog, f"nothing stored for {args.ref!r} in {store.path} (give an image id, image hash or key; "
                               "'xai-panel store info' lists what is stored)")
        if args.html:
            for path in write_reports(store, keys, args.out):
                print(path)
            return 0
        for key in keys:
            folder = export_result(store, key, args.out)
            print(folder)
        return 0
    except (StoreError, ExportError, OSError) as exc:
        return _fail(prog, str(exc))


def write_reports(store, keys: list[str], out: str) -> list:
    """One HTML report per image (and shared settings) of the stored ``keys``, in ``out``."""
    from pathlib import Path

    from .render.figures import safe_name
    from .render.report import report_html
    from .store.export import stored_explanations

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, explanation in stored_explanations(store, keys):
        path = folder / f"{safe_name(Path(name).stem)}_report.html"
        n = 2
        while path in written:  # the same image with other settings
            path, n = folder / f"{safe_name(Path(name).stem)}_report_{n}.html", n + 1
        path.write_text(report_html(explanation, title=name), encoding="utf-8")
        written.append(path)
    return written
