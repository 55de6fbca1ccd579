"""``serve``: run the gallery and explorer dashboards with ``panel serve``.

The data folder and the model travel to the dashboards in ``XAI_PANEL_DATA`` and
``XAI_PANEL_MODEL`` (each session of ``panel serve`` runs the dashboard scripts afresh and
reads them), so ``panel serve dashboards/gallery.py`` with those variables set shows the
same thing as ``xai-panel serve --data DIR --model NAME``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

__all__ = ["serve", "check_model", "dashboard_paths", "panel_serve_args", "DASHBOARDS"]

DASHBOARDS = ("gallery", "explorer")


def dashboard_paths() -> list[Path]:
    """The app scripts ``panel serve`` runs: files of the installed package (``xai_panel/apps/scripts``),
    so an installed wheel serves ``/gallery`` and ``/explorer`` as a source checkout does."""
    folder = Path(__file__).resolve().parent / "apps" / "scripts"
    paths = [folder / f"{name}.py" for name in DASHBOARDS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"app scripts missing from the installed package: {', '.join(map(str, missing))}; "
                                "reinstall xai-panel")
    return paths


def panel_serve_args(port: int = 5006, address: str | None = "127.0.0.1", show: bool = False,
                     extra: Sequence[str] | None = None) -> list[str]:
    """The ``panel serve`` command line ``serve`` runs (without the program name)."""
    if not 0 <= int(port) < 65536:
        raise ValueError(f"port must be in [0, 65535], got {port}")
    args = ["serve", *map(str, dashboard_paths()), "--port", str(int(port)),
            "--setup", str(Path(__file__).resolve().parent / "runtime" / "warmup.py"),
            "--index", DASHBOARDS[0]]
    if address:
        args += ["--address", address]
    if int(port) and not any(str(a).startswith("--allow-websocket-origin") for a in extra or ()):
        hosts = dict.fromkeys(["localhost", "127.0.0.1", *([address] if address and address != "0.0.0.0" else [])])
        args += [f"--allow-websocket-origin={host}:{int(port)}" for host in hosts]
    if show:
        args.append("--show")
    extra = list(extra or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return args + extra


def check_model(model: str) -> None:
    """Refuse, before the server starts, a model name or file no session could ever load
    (the server would otherwise come up and fail on every page)."""
    if os.sep in model or model.endswith((".pt", ".pth", ".onnx", ".ts")):  # a file, as load_classifier decides
        if not Path(model).expanduser().is_file():
            raise FileNotFoundError(f"model file {model} does not exist")
        return
    import torchvision.models as tvm

    from .models.registry import DEFAULT_MODEL

    if model != DEFAULT_MODEL and model not in tvm.list_models(module=tvm):
        raise ValueError(f"unknown model {model!r}: give {DEFAULT_MODEL}, a torchvision classifier name "
                         "(resnet34, mobilenet_v3_large, ...) or a TorchScript/ONNX file")


def serve(data: str | os.PathLike | None = None, model: str | None = None, port: int = 5006,
          address: str | None = "127.0.0.1", show: bool = False, extra: Sequence[str] | None = None) -> int:
    """Serve the dashboards until interrupted; returns panel's exit status.

    ``data``: an image folder (default: the built-in demo gallery); ``model``: a model name
    or file (default: the embedded EfficientNet-Lite0); ``port`` 0 picks a free port;
    ``extra``: more ``panel serve`` arguments.
    """
    if data is not None:
        folder = Path(data).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"data folder {folder} does not exist or is not a folder")
        from .data.datasets import open_dataset

        open_dataset(folder)  # a folder without a usable image is refused here, with what was skipped
        os.environ["XAI_PANEL_DATA"] = str(folder.resolve())
    if model is not None:
        check_model(str(model))
        os.environ["XAI_PANEL_MODEL"] = str(model)
    import sys

    from panel.command import main as panel_main

    saved, sys.argv = sys.argv, ["panel", *panel_serve_args(port, address, show, extra)]
    try:  # panel's entry point reads sys.argv
        result = panel_main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return 0 if result in (None, True) else 1 if result is False else int(result)
