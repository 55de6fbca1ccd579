"""Scores per superpixel (``ScoreResult``): a diverging heatmap over the image, one colour scale.

``ScorePane`` draws any method whose results follow the score protocol (``values``, and a
pixel ``heatmap`` where the method has one), so a new per-superpixel method gets a pane
with no code of its own; ``ShapPane`` adds SHAP's additivity (Σφ) to the captions.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import param
from matplotlib import colormaps

from ...engine.results import ScoreResult
from ...methods.shap import ShapResult
from ...render.overlays import score_map, score_overlay, symmetric_limit
from ...render.tiles import colorbar_html
from .base import MethodPane, shown_classes

__all__ = ["ScorePane", "ShapPane", "score_overlay"]


class ScorePane(MethodPane):
    """Red raises the class's probability, blue lowers it; the scale is shared by all classes."""

    result_type = ScoreResult
    legend_text = "score: red for the class, blue against it (one scale for all classes)"

    alpha = param.Number(default=0.7, bounds=(0.1, 1.0), step=0.05, doc="Opacity of the heatmap over the image.")
    cmap = param.Selector(default="RdBu_r", objects=["RdBu_r", "coolwarm", "PiYG", "bwr"], doc="Diverging colour map.")

    def _dependencies(self) -> dict:
        return {"alpha": self.param.alpha, "cmap": self.param.cmap}

    def limit(self, explanation=None) -> float:
        """The colour scale's half-width: the largest |value| over every class."""
        explanation = explanation if explanation is not None else self.shown
        results = explanation.results.get(self.method) if explanation is not None else None
        if not results:
            return 1e-6
        memo = getattr(self, "_limit_memo", None)  # (results, limit): asked once per tile and for the legend
        if memo is None or memo[0] is not results:
            memo = self._limit_memo = (results, symmetric_limit(self.map_of(explanation, r) for r in results.values()))
        return memo[1]

    def _draw_key(self, explanation, **extra) -> tuple:
        return (*super()._draw_key(explanation, **extra), self.limit(explanation))

    def map_of(self, explanation, result) -> np.ndarray:
        """The HxW map drawn for one class's result: its per-superpixel scores, painted."""
        return score_map(explanation.segmentation.labels, result)

    def _draw(self, explanation, label, alpha, cmap, **_):
        values = self.map_of(explanation, self.results(explanation)[label])
        return score_overlay(explanation.image, values, self.limit(explanation), cmap, alpha)

    def _legend(self, explanation, alpha=None, cmap="RdBu_r", **extra) -> str:
        if not self.results(explanation):
            return ""
        return colorbar_html(colormaps[cmap], self.limit(explanation), f"{self.title} {self.legend_text}")

    def tiles(self) -> list[tuple[str, np.ndarray | None]]:
        """(caption, HxW map as drawn, or None) per slot (notebooks, tests)."""
        explanation = self.shown
        results = self.results(explanation)
        out = []
        classes = shown_classes(explanation, self.slots)
        for slot, caption in enumerate(self._captions(explanation, self.marked)):
            label = classes[slot].index if caption else None
            out.append((caption, self.map_of(explanation, results[label]) if label in results else None))
        return out

    def _controls(self) -> list:
        return [pn.widgets.FloatSlider.from_param(self.param.alpha, name="Heatmap opacity", width=200),
                pn.widgets.Select.from_param(self.param.cmap, name="Colour map", width=120)]


class ShapPane(ScorePane):
    """SHAP values: a ``ScorePane`` whose captions give Σφ, the values' sum."""

    result_type = ShapResult
    description = ("SHAP values per superpixel (Owen values by default: Shapley values with nearby "
                   "superpixels grouped; or per pixel): red raises the class's probability, blue "
                   "lowers it; Σφ is their sum, the change from 'all hidden' to the image. One colour scale for "
                   "every class, so colours compare across classes.")
    legend_text = "value: change in the class's probability (one scale for all classes)"

    def _suffix(self, explanation, label):
        # Σφ: how far the superpixels move the probability from "all hidden" to the image.
        return f" · Σφ {float(np.sum(self.results(explanation)[label].values)):+.2f}"
