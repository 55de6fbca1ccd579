"""Explainer settings as parameters, with widgets generated from them.

The per-method settings are the registered explainers' own parameter classes (one
``ClassSelector`` parameter per method, added from the registry), so bounds and docs are
declared once, in the method's file. ``request`` (read-only) is everything that changes a
result, as plain data: the session watches it, uses it as the cache key and passes it to
``xai_panel.explain``.
"""

from __future__ import annotations

import panel as pn
import param

from ...engine.perturbation import FILLS
from ...engine.segmentation import ALGORITHMS, DEFAULTS
from ...methods.base import available_methods, dashboard_methods, make_explainer, method_class, registry
from ...presets import matching_preset, preset, preset_names

__all__ = ["CUSTOM", "ExplainerSettings", "FAST_SETTINGS", "fast_settings"]

CUSTOM = "custom"
"""The ``preset`` shown when the settings are no preset's (edited by hand)."""

# Which of our flat segmentation parameters feeds which algorithm's keyword.
_SEGMENTATION_PARAMS = {
    "quickshift": {"kernel_size": "kernel_size", "max_dist": "max_dist"},
    "slic": {"n_segments": "n_segments", "compactness": "compactness"},
    "felzenszwalb": {"scale": "scale"},
    "grid": {"grid_size": ("rows", "cols")},
}


def fast_settings() -> dict:
    """The dashboards' interactive budget: the ``interactive`` preset's settings
    (``xai_panel.presets``), kept under its old name."""
    return preset("interactive").as_settings()


FAST_SETTINGS = fast_settings()
"""The ``interactive`` preset's settings (read when this module loads; call ``fast_settings`` or
``xai_panel.presets.preset("interactive")`` for methods registered later)."""


class ExplainerSettings(pn.viewable.Viewer):
    """What to compute and how: methods, superpixels, fill, seed and each method's budget.

    Each registered method has a parameter of its own name holding its explainer
    (``settings.lime.num_samples = 300``; assign a subclass instance for a custom variant).
    """

    preset = param.Selector(default=CUSTOM, objects=[*preset_names(), CUSTOM], doc=(
        "Named settings (xai_panel.presets): choosing one sets the superpixels and every method's settings "
        "(not which methods run); editing any of them by hand makes it 'custom'."))
    methods = param.ListSelector(default=[], objects=[],
                                 doc="Methods to run (the one that draws the shared pool always runs first).")
    segmentation = param.Selector(default="quickshift", objects=list(ALGORITHMS),
                                  doc="Superpixel algorithm shared by every method.")
    kernel_size = param.Number(DEFAULTS["quickshift"]["kernel_size"], bounds=(1, 20), step=0.5,
                               doc="quickshift: Gaussian kernel width (larger, fewer superpixels).")
    max_dist = param.Number(DEFAULTS["quickshift"]["max_dist"], bounds=(10, 500), step=10,
                            doc="quickshift: cut-off distance between points.")
    n_segments = param.Integer(DEFAULTS["slic"]["n_segments"], bounds=(4, 400),
                               doc="slic: approximate number of superpixels.")
    compactness = param.Number(DEFAULTS["slic"]["compactness"], bounds=(0.1, 100), step=0.5,
                               doc="slic: balance of colour and space (higher, squarer).")
    scale = param.Number(DEFAULTS["felzenszwalb"]["scale"], bounds=(1, 1000), step=10,
                         doc="felzenszwalb: larger scale, larger superpixels.")
    grid_size = param.Integer(DEFAULTS["grid"]["rows"], bounds=(2, 16), doc="grid: cells per side.")
    fill = param.Selector(default="mean", objects=list(FILLS),
                          doc="What hidden superpixels show: their mean colour, a blur, or black.")
    seed = param.Integer(0, bounds=(0, 2**31 - 1), doc="Seed of the segmentation and of every sampler.")

    request = param.Dict(default={}, constant=True,
                         doc="Everything that changes a result, as plain data (read-only).")

    @classmethod
    def _add_method_parameters(cls) -> tuple[str, ...]:
        """One ClassSelector per registered method (methods registered later are added then)."""
        for name, explainer in registry().items():
            if name in cls.param:
                existing = cls.param[name]
                if not (isinstance(existing, param.ClassSelector)
                        and getattr(existing.class_, "method", None) == name):
                    raise ValueError(f"a method cannot be called {name!r}: the settings already have a {name!r}")
                existing.class_ = explainer  # the class now registered under that name
                continue
            ExplainerSettings.param.add_parameter(name, param.ClassSelector(
                class_=explainer, instantiate=True, doc=f"{explainer.label}'s settings."))
        return available_methods()

    def __init__(self, settings: dict | None = None, **params):
        """``settings`` maps a method to its parameters, as for ``xai_panel.explain``; with
        ``preset``, they and the other parameters given apply over the preset's."""
        names = self._add_method_parameters()
        for method in settings or {}:
            method_class(method)  # an unknown name gets a "did you mean"
        chosen = params.pop("preset", CUSTOM)
        if chosen != CUSTOM:
            chosen = preset(chosen)  # an unknown name is refused with the known ones
            params = {**self._preset_values(chosen), **params}
            settings = {m: {**chosen.settings.get(m, {}), **dict((settings or {}).get(m, {}))}
                        for m in {*chosen.settings, *(settings or {})}}
        for method in names:  # make_explainer names the settings a method has when one is wrong
            params.setdefault(method, make_explainer(method, dict((settings or {}).get(method, {}))))
        params.setdefault("methods", [m for m in dashboard_methods()])
        self._applying = True  # one request once everything is set, not one per parameter
        super().__init__(**params)
        self.param.methods.objects = list(names)
        self._watchers: dict = {}
        self.param.watch(self._watch_explainers, list(names))
        self._applying = False
        self._watch_explainers()

    @staticmethod
    def _preset_values(chosen) -> dict:
        """Our segmentation parameters under ``chosen``: its algorithm with its parameters, every
        other algorithm at its defaults."""
        values = {"segmentation": chosen.segmentation}
        for algorithm, ours in _SEGMENTATION_PARAMS.items():
            resolved = chosen.resolved_segmentation_params() if algorithm == chosen.segmentation else DEFAULTS[algorithm]
            for name, theirs in ours.items():
                values[name] = resolved[theirs[0] if isinstance(theirs, tuple) else theirs]
        return values

    @param.depends("preset", watch=True)
    def _apply_preset(self) -> None:
        """Choosing a preset sets the superpixels and every method's settings ('custom' changes nothing)."""
        if self.preset == CUSTOM or self._applying:
            return
        chosen = preset(self.preset)
        self._applying = True
        try:
            self.param.update(**self._preset_values(chosen))
            for method in self.param.methods.objects:
                getattr(self, method).param.update(**chosen.method_settings(method))
        finally:
            self._applying = False
        self._update_request()

    def matching_preset(self) -> str:
        """The preset the current settings are, or 'custom' (a custom explainer class is custom)."""
        names = self.param.methods.objects
        if any(type(getattr(self, m)) is not method_class(m) for m in names):
            return CUSTOM
        found = matching_preset(self.segmentation, self.segmentation_params(),
                                {m: getattr(self, m).settings() for m in names})
        return found or CUSTOM

    @classmethod
    def from_dict(cls, values: dict) -> "ExplainerSettings":
        """From plain data: method names map to their settings, other keys are parameters
        (``{"methods": ["lime"], "segmentation": "slic", "lime": {"num_samples": 300}}``)."""
        values = dict(values)
        names = cls._add_method_parameters()
        per_method = {m: values.pop(m) for m in names if m in values}
        unknown = set(values) - set(cls.param) - {"name"} | set(values) & {"request"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        return cls(settings=per_method, **values)

    def _watch_explainers(self, *events) -> None:
        for method in self.param.methods.objects:
            explainer = getattr(self, method)
            old = self._watchers.get(method)
            if old is not None and old[0] is explainer:
                continue
            if old is not None:
                old[0].param.unwatch(old[1])
            self._watchers[method] = (explainer, explainer.param.watch(self._update_request, list(explainer.settings())))
        self._update_request()

    @param.depends("methods", "segmentation", "kernel_size", "max_dist", "n_segments", "compactness", "scale",
                   "grid_size", "fill", "seed", watch=True)
    def _update_request(self, *events) -> None:
        if self._applying:
            return
        request = self.explain_kwargs()
        custom = {m: f"{type(getattr(self, m)).__module__}.{type(getattr(self, m)).__qualname__}"
                  for m in request["methods"] if type(getattr(self, m)) is not method_class(m)}
        if custom:  # a custom explainer class must not share cache entries with the stock one
            request["explainer_classes"] = custom
        shown = self.matching_preset()
        self._applying = True  # showing the preset the settings are must not apply it again
        try:
            with param.edit_constant(self):
                self.param.update(request=request, preset=shown)
        finally:
            self._applying = False

    def explainer(self, method: str):
        """A fresh copy of ``method``'s explainer (same class, same settings)."""
        explainer = getattr(self, method)
        return type(explainer)(**explainer.settings())

    def segmentation_params(self) -> dict:
        params = {}
        for ours, theirs in _SEGMENTATION_PARAMS[self.segmentation].items():
            for key in (theirs if isinstance(theirs, tuple) else (theirs,)):
                params[key] = getattr(self, ours)
        return params

    def explain_kwargs(self) -> dict:
        """Keyword arguments for ``xai_panel.explain`` (methods in the engine's order)."""
        from ...methods.base import run_order

        methods = list(run_order(self.methods))
        return {
            "methods": methods,
            "segmentation": self.segmentation,
            "segmentation_params": self.segmentation_params(),
            "fill": self.fill,
            "seed": int(self.seed),
            "settings": {m: getattr(self, m).settings() for m in methods},
        }

    def _card_parameters(self, method: str) -> list[str]:
        chosen = method_class(method).card_parameters
        return list(chosen) if chosen is not None else list(getattr(self, method).settings())

    @staticmethod
    def _card_widgets(explainer) -> dict:
        """Integer budgets as number inputs (a slider over 10..50000 is useless), in steps of 100;
        an optional integer (None: no limit) as an input that may stay empty."""
        widgets = {}
        for name, p in explainer.param.objects("existing").items():
            if isinstance(p, param.Integer) and not isinstance(p, param.Boolean):
                low, high = p.bounds or (None, None)
                if p.allow_None:
                    widgets[name] = {"type": pn.widgets.IntInput, "placeholder": "no limit"}
                elif high is None or low is None or high - low > 1000:
                    widgets[name] = {"type": pn.widgets.IntInput, "step": 100}
        return widgets

    def __panel__(self):
        common = pn.Param(self, parameters=["preset", "methods", "segmentation"], show_name=False,
                          widgets={"preset": {"type": pn.widgets.RadioButtonGroup, "button_type": "primary",
                                              "button_style": "outline"},
                                   "methods": {"type": pn.widgets.CheckButtonGroup, "button_type": "primary",
                                               "button_style": "outline"}})
        per_algorithm = {
            algorithm: pn.Param(self, parameters=list(_SEGMENTATION_PARAMS[algorithm]), show_name=False)
            for algorithm in ALGORITHMS
        }
        segmentation = pn.Column(*per_algorithm.values(), sizing_mode="stretch_width")
        for algorithm, widget in per_algorithm.items():
            widget.visible = self.param.segmentation.rx() == algorithm
        shared = pn.Param(self, parameters=["fill", "seed"], show_name=False,
                          widgets={"seed": pn.widgets.IntInput})
        per_method = [
            pn.Card(pn.Param(getattr(self, m), parameters=self._card_parameters(m), show_name=False,
                             widgets=self._card_widgets(getattr(self, m))),
                    title=method_class(m).label, collapsed=i > 0, sizing_mode="stretch_width", margin=(4, 0))
            for i, m in enumerate(self.param.methods.objects)
        ]
        return pn.Column(common, segmentation, shared, *per_method, sizing_mode="stretch_width")
