"""SHAP: per class, Shapley values as a diverging heatmap over the image, one colour scale."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from .method_pane import MethodPane, selected_title
from .rendering import grayscale, shap_map, symmetric_limit

__all__ = ["ShapPane"]


class ShapPane(MethodPane):
    """Red raises the class's probability, blue lowers it; the scale is shared by all classes."""

    method = "shap"
    title = "SHAP"
    description = ("Shapley values per superpixel (or per pixel): red raises the class's probability, blue "
                   "lowers it. One colour scale for every class, so colours compare across classes.")

    alpha = param.Number(default=0.7, bounds=(0.1, 1.0), step=0.05, doc="Opacity of the heatmap over the image.")
    cmap = param.Selector(default="RdBu_r", objects=["RdBu_r", "coolwarm", "PiYG", "bwr"], doc="Diverging colour map.")

    def _dependencies(self) -> dict:
        return {"alpha": self.param.alpha, "cmap": self.param.cmap}

    def _limit(self, explanation) -> float:
        results = self.results(explanation)
        return symmetric_limit(shap_map(explanation.segmentation.labels, r) for r in results.values())

    def _layers(self, image, values, title, limit, alpha, cmap, slot):
        opts = self._opts()
        last = slot == self.slots - 1
        base = hv.RGB(grayscale(image, lift=0.35), bounds=(0, 0, 1, 1)).opts(**opts)
        heat = hv.Image(values, bounds=(0, 0, 1, 1), vdims=["SHAP value"]).opts(
            cmap=cmap, clim=(-limit, limit), alpha=alpha, colorbar=last, tools=["hover"], **opts,
            **({"colorbar_opts": {"width": 10}} if last else {}))
        return (base * heat).opts(title=title)

    def _frame(self, explanation, slot, rank, label, name, chosen, alpha, cmap):
        result = explanation.shap[label]
        values = shap_map(explanation.segmentation.labels, result)
        # Σφ: how far the superpixels move the probability from "all hidden" to the image.
        total = f" · Σφ {float(np.sum(result.values)):+.2f}"
        return self._layers(explanation.image, values, selected_title(rank, name, chosen, total),
                            self._limit(explanation), alpha, cmap, slot)

    def _placeholder(self, slot, opts, title=""):
        image = np.full((8, 8, 3), 243, np.uint8)
        return self._layers(image, np.zeros((8, 8)), title, 1e-6, self.alpha, self.cmap, slot)

    def _controls(self) -> list:
        return [pn.widgets.FloatSlider.from_param(self.param.alpha, name="Heatmap opacity", width=200),
                pn.widgets.Select.from_param(self.param.cmap, name="Colour map", width=120)]
