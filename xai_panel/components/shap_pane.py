"""SHAP: per class, Shapley values as a diverging heatmap over the image, one colour scale."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from .method_pane import GAP, MethodPane, frame_tile, montage, tile_title
from .rendering import grayscale, shap_map, symmetric_limit

__all__ = ["ShapPane"]


class ShapPane(MethodPane):
    """Red raises the class's probability, blue lowers it; the scale is shared by all classes."""

    method = "shap"
    title = "SHAP"
    description = ("Shapley values per superpixel (or per pixel): red raises the class's probability, blue "
                   "lowers it; Σφ is their sum, the change from 'all hidden' to the image. One colour scale for "
                   "every class, so colours compare across classes.")

    alpha = param.Number(default=0.7, bounds=(0.1, 1.0), step=0.05, doc="Opacity of the heatmap over the image.")
    cmap = param.Selector(default="RdBu_r", objects=["RdBu_r", "coolwarm", "PiYG", "bwr"], doc="Diverging colour map.")

    def _dependencies(self) -> dict:
        return {"alpha": self.param.alpha, "cmap": self.param.cmap}

    def limit(self, explanation=None) -> float:
        """The colour scale's half-width: the largest |value| over every class."""
        explanation = explanation if explanation is not None else self.shown
        results = self.results(explanation)
        if not results:
            return 1e-6
        return symmetric_limit(shap_map(explanation.segmentation.labels, r) for r in results.values())

    def _tile(self, explanation, label, alpha=None, cmap=None):
        result = explanation.shap[label]
        # Σφ: how far the superpixels move the probability from "all hidden" to the image.
        return shap_map(explanation.segmentation.labels, result), f" · Σφ {float(np.sum(result.values)):+.2f}"

    def tiles(self) -> list[tuple[str, np.ndarray | None]]:
        """(label, HxW Shapley values or None) per slot, as drawn now (notebooks, tests)."""
        return [(label, values) for label, values, _ in self._layers(self.shown, self.marked)]

    def _layers(self, explanation, selected):
        """Per slot: (label, values or None, grey image)."""
        side = explanation.image.shape[0] if explanation is not None else 224
        grey_blank = np.full((side, side, 3), 244, np.uint8)
        results = self.results(explanation)
        out = []
        for slot in range(self.slots):
            if explanation is None or slot >= len(explanation.top):
                out.append(("", None, grey_blank))
                continue
            score = explanation.top[slot]
            chosen = score.index == selected
            grey = grayscale(explanation.image, lift=0.35)
            if score.index in results:
                values, suffix = self._tile(explanation, score.index)
            else:
                values, suffix, grey = None, "", grey_blank
            out.append((tile_title(slot + 1, score.name, chosen, suffix), values, frame_tile(grey) if chosen else grey))
        return out

    def _render(self, explanation, selected, alpha, cmap):
        layers = self._layers(explanation, selected)
        side = layers[0][2].shape[0]
        base = montage([grey for _, _, grey in layers])
        nan = np.full((side, side), np.nan)
        heat = montage([values if values is not None else nan for _, values, _ in layers], fill=np.nan)
        if len(layers) > 1:
            heat[0, side] = 0.0  # one finite value in a (white) gap: an all-NaN image upsets the colour range
        if any(values is not None for _, values, _ in layers):
            for i, (label, _, _) in enumerate(layers):  # keep the inspected class's frame visible
                if label.startswith("▶"):
                    x0 = i * (side + GAP)
                    heat[:5, x0 : x0 + side] = heat[-5:, x0 : x0 + side] = np.nan
                    heat[:, x0 : x0 + 5] = heat[:, x0 + side - 5 : x0 + side] = np.nan
        h, w = base.shape[:2]
        limit = self.limit(explanation)
        opts = self._opts(w / h)
        ticks = self._ticks([label for label, _, _ in layers], side)
        bounds = (0, 0, w / h, 1)
        return (
            hv.RGB(base, bounds=bounds).opts(xticks=ticks, **opts)
            * hv.Image(heat, bounds=bounds, vdims=["SHAP value"]).opts(
                cmap=cmap, clim=(-limit, limit), alpha=alpha, colorbar=True, colorbar_opts={"width": 10},
                clipping_colors={"NaN": "transparent"}, tools=["hover"], **{k: v for k, v in opts.items() if k != "title"})
        ).opts(title="")

    def _controls(self) -> list:
        return [pn.widgets.FloatSlider.from_param(self.param.alpha, name="Heatmap opacity", width=200),
                pn.widgets.Select.from_param(self.param.cmap, name="Colour map", width=120)]
