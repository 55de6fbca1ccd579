"""The ``xai-panel`` command: classify, serve, fetch, precompute, store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _classify(args) -> int:
    from .data import ImageError, load_image
    from .models import ModelError, load_classifier

    try:
        classifier = load_classifier(args.model, weights=args.weights, device=args.device, backend=args.backend)
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.images:
        try:
            image = load_image(path)
        except ImageError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}  ({classifier.model_id}, {classifier.backend})")
        print(f"  {'rank':>4}  {'class':>5}  {'probability':>11}  name")
        for rank, score in enumerate(classifier.top_k(image, args.top_k), 1):
            print(f"  {rank:>4}  {score.index:>5}  {score.probability:>11.4f}  {score.name}")
    return 1 if failures else 0


def _fetch(args) -> int:
    from .data import fetch_imagenette

    try:
        root = fetch_imagenette(size=args.size, dest=args.dest, url=args.url)
    except Exception as exc:  # network, integrity or extraction problems: say what happened
        print(f"error: could not fetch Imagenette: {exc}", file=sys.stderr)
        return 1
    print(root)
    return 0


def _serve(args) -> int:
    from .serve import serve

    try:
        return serve(data=args.data, model=args.model, port=args.port, address=args.address,
                     show=args.show, extra=args.panel_args) or 0
    except (FileNotFoundError, ValueError) as exc:  # a bad --data, --model or --port: a message, not a traceback
        print(f"xai-panel serve: error: {exc}", file=sys.stderr)
        return 2


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="efficientnet_lite0",
                        help="efficientnet_lite0 (embedded), a torchvision name such as resnet34, "
                             "or a TorchScript/ONNX file")
    parser.add_argument("--weights", default=None, help="weights file (state dict) for a torchvision architecture")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"])


def _methods(args) -> int:
    from .methods import registry

    for name, cls in registry().items():
        default = "default" if cls.in_default else "on request"
        print(f"{name:<12} {cls.label:<12} {default:<11} {cls.__module__}.{cls.__qualname__}")
    return 0


def _configured_port() -> int:
    from .config import config

    return config().port


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="xai-panel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"xai-panel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="print the top-k classes of images")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--top-k", type=int, default=5, choices=range(1, 21), metavar="K")
    _add_model_options(p)
    p.set_defaults(func=_classify)

    p = sub.add_parser("fetch", help="download a dataset (imagenette)")
    p.add_argument("dataset", choices=["imagenette"])
    p.add_argument("--size", type=int, default=160, choices=[160, 320])
    p.add_argument("--dest", type=Path, default=None)
    p.add_argument("--url", default=None, help="download from this address instead of fast.ai's (a mirror)")
    p.set_defaults(func=_fetch)

    p = sub.add_parser("methods", help="list the registered explanation methods")
    p.set_defaults(func=_methods)

    p = sub.add_parser("serve", help="serve the gallery and explorer dashboards")
    p.add_argument("--data", default=None, help="image folder (default: the built-in demo gallery)")
    p.add_argument("--model", default=None, help="model name or file (default: efficientnet_lite0)")
    p.add_argument("--port", type=int, default=_configured_port(),
                   help="port (default: $XAI_PANEL_PORT or 5006)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--show", action="store_true", help="open a browser")
    p.add_argument("panel_args", nargs=argparse.REMAINDER, help="extra arguments for panel serve, after --")
    p.set_defaults(func=_serve)

    try:
        from .cli_store import add_precompute_parser, add_store_parser
    except ImportError:
        pass
    else:
        add_precompute_parser(sub)
        add_store_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
