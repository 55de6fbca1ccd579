"""Explainer settings as parameters, with widgets generated from them.

The per-method settings are the explainers' own parameter classes (``LimeExplainer``,
``AnchorExplainer``, ``ShapExplainer``), so bounds and docs are declared once, in the
engine. ``request`` (read-only) is everything that changes a result, as plain data: the
session watches it, uses it as the cache key and passes it to ``xai_panel.explain``.
"""

from __future__ import annotations

import panel as pn
import param

from ..explain.api import METHODS
from ..explain.engine import FILLS
from ..explain.explainers import AnchorExplainer, LimeExplainer, ShapExplainer, make_explainer
from ..explain.segmentation import ALGORITHMS, DEFAULTS

__all__ = ["ExplainerSettings", "FAST_SETTINGS"]

# Which of our flat segmentation parameters feeds which algorithm's keyword.
_SEGMENTATION_PARAMS = {
    "quickshift": {"kernel_size": "kernel_size", "max_dist": "max_dist"},
    "slic": {"n_segments": "n_segments", "compactness": "compactness"},
    "felzenszwalb": {"scale": "scale"},
    "grid": {"grid_size": ("rows", "cols")},
}

FAST_SETTINGS = {"segmentation": "slic", "lime": {"num_samples": 400},
                 "anchors": {"n_examples": 4, "max_anchor_size": 3}, "shap": {"estimator": "owen", "nsamples": 300}}
"""A budget that keeps the dashboards responsive on a laptop CPU: SLIC superpixels (about 40 ms
for a 224-pixel view, where lime's quickshift takes about 0.5 s) and a LIME pool of 400."""


class ExplainerSettings(pn.viewable.Viewer):
    """What to compute and how: methods, superpixels, fill, seed and each method's budget."""

    methods = param.ListSelector(default=list(METHODS), objects=list(METHODS),
                                 doc="Methods to run (LIME always runs first: it draws the shared pool).")
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
    lime = param.ClassSelector(class_=LimeExplainer, instantiate=True, doc="LIME's settings.")
    anchors = param.ClassSelector(class_=AnchorExplainer, instantiate=True, doc="Anchors' settings.")
    shap = param.ClassSelector(class_=ShapExplainer, instantiate=True, doc="SHAP's settings.")

    request = param.Dict(default={}, constant=True,
                         doc="Everything that changes a result, as plain data (read-only).")

    _method_widgets = {
        "lime": ["num_samples", "kernel_width"],
        "anchors": ["threshold", "regions", "p_sample", "max_anchor_size", "n_examples"],
        "shap": ["estimator", "nsamples"],
    }

    def __init__(self, settings: dict | None = None, **params):
        """``settings`` maps a method to its parameters, as for ``xai_panel.explain``."""
        unknown = set(settings or {}) - set(METHODS)
        if unknown:
            raise ValueError(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
        for method in METHODS:  # make_explainer names the settings a method has when one is wrong
            params.setdefault(method, make_explainer(method, dict((settings or {}).get(method, {}))))
        super().__init__(**params)
        self._watchers: dict = {}
        self._watch_explainers()

    @classmethod
    def from_dict(cls, values: dict) -> "ExplainerSettings":
        """From plain data: method names map to their settings, other keys are parameters
        (``{"methods": ["lime"], "segmentation": "slic", "lime": {"num_samples": 300}}``)."""
        values = dict(values)
        per_method = {m: values.pop(m) for m in METHODS if m in values}
        unknown = set(values) - set(cls.param) - {"name"} | set(values) & {"request", "lime", "anchors", "shap"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        return cls(settings=per_method, **values)

    @param.depends("lime", "anchors", "shap", watch=True)
    def _watch_explainers(self) -> None:
        for method in METHODS:
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
        stock = {"lime": LimeExplainer, "anchors": AnchorExplainer, "shap": ShapExplainer}
        custom = {m: f"{type(getattr(self, m)).__module__}.{type(getattr(self, m)).__qualname__}"
                  for m in request["methods"] if type(getattr(self, m)) is not stock[m]}
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
        methods = [m for m in METHODS if m in self.methods]
        return {
            "methods": methods,
            "segmentation": self.segmentation,
            "segmentation_params": self.segmentation_params(),
            "fill": self.fill,
            "seed": int(self.seed),
            "settings": {m: getattr(self, m).settings() for m in methods},
        }

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
            pn.Card(pn.Param(getattr(self, m), parameters=self._method_widgets[m], show_name=False,
                             widgets={"max_anchor_size": {"type": pn.widgets.IntInput, "placeholder": "no limit"},
                                      "num_samples": {"type": pn.widgets.IntInput, "step": 100},
                                      "nsamples": {"type": pn.widgets.IntInput, "step": 100}}),
                    title={"lime": "LIME", "anchors": "Anchors", "shap": "SHAP"}[m], collapsed=m != "lime",
                    sizing_mode="stretch_width", margin=(4, 0))
            for m in METHODS
        ]
        return pn.Column(common, segmentation, shared, *per_method, sizing_mode="stretch_width")
