"""Named settings shared by every entry point: the dashboards, ``explain`` and precompute.

A preset is a budget: the superpixels (algorithm and parameters) and each method's
settings, plus the methods it runs when none are named. ``interactive`` is the dashboards'
budget (SLIC superpixels, each registered method's ``Explainer.interactive`` settings, the
methods the dashboards tick); ``thorough`` is the library's defaults (quickshift, every
method's defaults, ``explain()``'s default methods). Both are built from the registry when
asked for, so a method registered later has its place in them.

Fill, seed and top-k are not part of a preset: they change what is explained, not how
much is spent on it, and are the same in both.

``xai-panel precompute`` uses ``interactive`` unless told otherwise, so what it stores is
what the dashboards look up; ``explain(..., preset="thorough")`` and the settings card's
``preset`` selector name the same objects.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["DASHBOARD_METRICS", "DASHBOARD_METRIC_SETTINGS", "DEFAULT_PRESET", "Preset",
           "preset", "preset_names", "presets", "matching_preset"]

DEFAULT_PRESET = "interactive"
"""The preset of the dashboards and of ``xai-panel precompute``."""
DASHBOARD_METRICS = ("faithfulness", "agreement")
"""The trust metrics the dashboards measure after every explanation, and ``xai-panel precompute``
stores unless told otherwise (``--metrics none``), so a precomputed image's trust pane comes from
the store too instead of costing the first click a measurement."""
DASHBOARD_METRIC_SETTINGS = {"steps": 10}
"""Their settings: deletion/insertion in 10 steps (about 400 passes for three methods and five classes,
against about 1200 at one superpixel per step)."""


@dataclass(frozen=True)
class Preset:
    """One named budget. ``segmentation_params`` and ``settings`` are given over the
    defaults (of the algorithm, of each method); :meth:`resolved` fills them in."""

    name: str
    description: str
    segmentation: str
    segmentation_params: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> over its defaults
    methods: tuple[str, ...] = ()  # run when no methods are named

    def as_settings(self) -> dict:
        """The settings as ``ExplainerSettings.from_dict`` and ``$XAI_PANEL_SETTINGS`` take them
        (``{"segmentation": "slic", "lime": {"num_samples": 400}, ...}``)."""
        out: dict = {"segmentation": self.segmentation}
        if self.segmentation_params:
            out["segmentation_params"] = dict(self.segmentation_params)
        out.update({m: dict(s) for m, s in self.settings.items()})
        return out

    def method_settings(self, method: str) -> dict:
        """Every parameter of ``method``'s explainer under this preset, defaults included."""
        from .methods.base import make_explainer

        return make_explainer(method, dict(self.settings.get(method, {}))).settings()

    def resolved_segmentation_params(self) -> dict:
        from .engine.segmentation import DEFAULTS

        return {**DEFAULTS[self.segmentation], **dict(self.segmentation_params)}

    def matches(self, segmentation: str, segmentation_params: Mapping | None,
                settings: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether these resolved settings (every default filled in, as ``ExplainRequest`` holds
        them) are this preset's: same superpixels and, for each method given, same settings."""
        from .engine.segmentation import DEFAULTS

        if segmentation != self.segmentation:
            return False
        given = {**DEFAULTS.get(segmentation, {}), **dict(segmentation_params or {})}
        if _plain(given) != _plain(self.resolved_segmentation_params()):
            return False
        return all(_plain(dict(s)) == _plain(self.method_settings(m)) for m, s in settings.items())


def _plain(value):
    """Settings compared by value: a tuple read back from JSON is a list (1 == 1.0 already holds)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _interactive() -> Preset:
    from .methods.base import dashboard_methods, registry

    return Preset(
        name="interactive",
        description="the dashboards' budget: SLIC superpixels (about 40 ms, where quickshift takes about 0.5 s) "
                    "and each method's interactive settings (a LIME pool of 400, anchors of at most 3 regions, "
                    "SHAP on 300 passes)",
        segmentation="slic",
        settings={m: dict(cls.interactive) for m, cls in registry().items() if cls.interactive},
        methods=dashboard_methods(),
    )


def _thorough() -> Preset:
    from .methods.base import default_methods

    return Preset(
        name="thorough",
        description="the library's defaults: lime's quickshift superpixels and every method's default settings "
                    "(a LIME pool of 1000, SHAP on 500 passes)",
        segmentation="quickshift",
        methods=default_methods(),
    )


_BUILDERS: dict[str, Callable[[], Preset]] = {"interactive": _interactive, "thorough": _thorough}


def preset_names() -> tuple[str, ...]:
    """The known presets, the dashboards' first."""
    return tuple(_BUILDERS)


def preset(name: "str | Preset") -> Preset:
    """The preset called ``name`` (built from the registry now); an unknown name is a
    ValueError that names the known ones."""
    if isinstance(name, Preset):
        return name
    builder = _BUILDERS.get(name) if isinstance(name, str) else None
    if builder is None:
        close = difflib.get_close_matches(str(name), list(_BUILDERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise ValueError(f"unknown preset {name!r}{hint} the presets are {', '.join(_BUILDERS)}")
    return builder()


def presets() -> dict[str, Preset]:
    """Every preset, by name."""
    return {name: build() for name, build in _BUILDERS.items()}


def matching_preset(segmentation: str, segmentation_params: Mapping | None,
                    settings: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The name of the preset these resolved settings are (None: custom settings)."""
    for candidate in presets().values():
        if candidate.matches(segmentation, segmentation_params, settings):
            return candidate.name
    return None
