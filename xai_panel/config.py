"""Every ``XAI_PANEL_*`` environment variable, read in one place with one policy.

As ``panel/config.py`` does for ``PANEL_*``: a ``param.Parameterized`` whose parameters
are the settings, each declared once with its type, default, bounds and doc, and the
variable it is read from. ``config()`` reads the environment as it is now (tests and
``xai-panel serve`` set variables at run time) and returns a ``Config``.

The policy for a bad value is the same everywhere: it is ignored, the default is used,
and the problem is logged and kept in ``Config.problems``, which the dashboards show in
the page's notifications ("XAI_PANEL_MAX_QUEUE='lots' ignored: ..."). Nothing raises.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Mapping

import param

__all__ = ["Config", "config", "ENV"]

_log = logging.getLogger(__name__)
_reported: set[str] = set()


def _cpu_half() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class Config(param.Parameterized):
    """xai-panel's settings from the environment (one variable each; see ``ENV``)."""

    data = param.String(default=None, allow_None=True, doc=(
        "XAI_PANEL_DATA: the image folder the dashboards browse (default: the demo gallery)."))
    model = param.String(default="efficientnet_lite0", doc=(
        "XAI_PANEL_MODEL: the classifier (a model name or file; default: the embedded EfficientNet-Lite0)."))
    settings = param.Dict(default=None, allow_None=True, doc=(
        "XAI_PANEL_SETTINGS: the dashboards' explainer settings as JSON, replacing their interactive preset, "
        "e.g. {\"preset\": \"thorough\"} (what it leaves out takes the library's defaults, or the named preset's)."))
    store = param.String(default=None, allow_None=True, doc=(
        "XAI_PANEL_STORE: the explanation store file (default: store.sqlite in the cache folder)."))
    cache = param.String(default=None, allow_None=True, doc=(
        "XAI_PANEL_CACHE: the folder for ONNX exports, thumbnails and the default store "
        "(default: the user cache folder)."))
    port = param.Integer(default=5006, bounds=(0, 65535), doc="XAI_PANEL_PORT: the port of `xai-panel serve`.")
    max_upload_mb = param.Integer(default=20, bounds=(1, 1024), doc=(
        "XAI_PANEL_MAX_UPLOAD_MB: the largest upload the explorer accepts, in MB."))
    max_queue = param.Integer(default=8, bounds=(1, 10000), doc=(
        "XAI_PANEL_MAX_QUEUE: explanations and stability runs waiting or running at once; past it a click "
        "is told the server is busy."))
    compute_threads = param.Integer(default=None, allow_None=True, bounds=(1, 256), doc=(
        "XAI_PANEL_COMPUTE_THREADS: threads of the compute lane (default: one per two cores)."))

    gradient_threads = param.Integer(default=1, bounds=(1, 256), doc=(
        "XAI_PANEL_GRADIENT_THREADS: torch's threads while a gradient method runs (default 1: one image's "
        "forward and backward passes gain little from more, and on a busy 2-core machine two threads were "
        "measured 20x slower than one: 2.3 s against 0.1 s for Grad-CAM of EfficientNet-Lite0)."))

    problems = param.List(default=[], item_type=str, constant=True, doc=(
        "Variables that were set to something unusable, and why (read-only): each was ignored."))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """The settings as ``environ`` (default: ``os.environ``) gives them; bad values ignored and noted."""
        environ = os.environ if environ is None else environ
        values, problems = {}, []
        for name, variable in ENV.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                values[name] = cls._parse(name, text)
            except ValueError as exc:
                problems.append(f"{variable}={text!r} ignored: {exc}")
        cfg = cls(**values)
        with param.edit_constant(cfg):
            cfg.problems = problems
        for problem in problems:
            if problem not in _reported:  # said once per process, not on every read
                _reported.add(problem)
                _log.warning("%s", problem)
        return cfg

    @classmethod
    def _parse(cls, name: str, text: str):
        p = cls.param[name]
        if isinstance(p, param.Integer):
            try:
                value = int(text)
            except ValueError:
                raise ValueError("it must be a whole number") from None
            low, high = p.bounds
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"it must be between {low} and {high}")
            return value
        if isinstance(p, param.Dict):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"it is not JSON ({exc.msg} at character {exc.pos})") from None
            if not isinstance(value, dict):
                raise ValueError('it must be a JSON object, e.g. {"lime": {"num_samples": 500}}')
            return value
        return text

    @property
    def cache_folder(self) -> Path:
        """``cache`` or the user cache folder."""
        if self.cache:
            return Path(self.cache).expanduser()
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("xai-panel"))

    @property
    def threads(self) -> int:
        """The compute lane's thread count: ``compute_threads`` or one per two cores."""
        return self.compute_threads or _cpu_half()


ENV = {name: f"XAI_PANEL_{name.upper()}" for name in Config.param if name not in ("name", "problems")}
"""Parameter name -> the environment variable it is read from."""


def config() -> Config:
    """The settings as the environment gives them now."""
    return Config.from_environ()
