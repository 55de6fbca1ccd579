"""LIME: for each top class, the superpixels that support it (and optionally oppose it)."""

from __future__ import annotations

import panel as pn
import param

from ...methods.lime import LimeResult
from ...render.overlays import lime_overlay
from .base import MethodPane

__all__ = ["LimePane"]


class LimePane(MethodPane):
    """Per class, the ``num_features`` strongest superpixels of LIME's linear surrogate."""

    result_type = LimeResult
    description = ("Green: the superpixels whose presence most raises the class's probability in LIME's "
                   "linear surrogate; red (if shown): the ones that lower it most. R² is the surrogate's fit.")

    num_features = param.Integer(default=5, bounds=(1, 30),
                                 doc="Superpixels shown per sign (a display filter: nothing is recomputed).")
    show_negative = param.Boolean(default=False, doc="Also show the superpixels that speak against the class.")
    show_boundaries = param.Boolean(default=True, doc="Draw superpixel boundaries.")

    def _dependencies(self) -> dict:
        return {"num_features": self.param.num_features, "show_negative": self.param.show_negative,
                "show_boundaries": self.param.show_boundaries}

    def _draw(self, explanation, label, num_features, show_negative, show_boundaries):
        return lime_overlay(explanation.image, explanation.segmentation.labels, self.results(explanation)[label], num_features,
                            show_negative=show_negative, show_boundaries=show_boundaries)

    def _suffix(self, explanation, label):
        return f" · R² {self.results(explanation)[label].score:.2f}"

    def _controls(self) -> list:
        low, high = self.param.num_features.bounds
        slider = pn.widgets.IntSlider(name="Superpixels per class", start=low, end=high,
                                      value=self.param.num_features, width=220)
        # The images follow the slider when it is released: every drag step would redraw them.
        slider.param.watch(lambda e: setattr(self, "num_features", e.new), "value_throttled")
        return [
            slider,
            pn.widgets.Checkbox.from_param(self.param.show_negative, name="show negative", margin=(22, 10)),
            pn.widgets.Checkbox.from_param(self.param.show_boundaries, name="boundaries", margin=(22, 10)),
        ]
