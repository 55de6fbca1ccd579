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
from ...presets import preset

__all__ = ["ExplainerSettings", "FAST_SETTINGS", "fast_settings"]

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
        """``settings`` maps a method to its parameters, as for ``xai_panel.explain``."""
        names = self._add_method_parameters()
        for method in settings or {}:
            method_class(method)  # an unknown name gets a "did you mean"
        for method in names:  # make_explainer names the settings a method has when one is wrong
            params.setdefault(method, make_explainer(method, dict((settings or {}).get(method, {}))))
        params.setdefault("methods", [m for m in dashboard_methods()])
        super().__init__(**params)
        self.param.methods.objects = list(names)
        self._watchers: dict = {}
        self.param.watch(self._watch_explainers, list(names))
        self._watch_explainers()

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
        request = self.explain_kwargs()
        custom = {m: f"{type(getattr(self, m)).__module__}.{type(getattr(self, m)).__qualname__}"
                  for m in request["methods"] if type(getattr(self, m)) is not method_class(m)}
        if custom:  # a custom explainer class must not share cache entries with the stock one
            request["explainer_classes"] = custom
        with param.edit_constant(self):
            self.request = request

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
        common = pn.Param(self, parameters=["methods", "segmentation"], show_name=False,
                          widgets={"methods": {"type": pn.widgets.CheckButtonGroup, "button_type": "primary",
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
