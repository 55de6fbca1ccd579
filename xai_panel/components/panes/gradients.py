"""The gradient methods (Grad-CAM, Integrated Gradients, SmoothGrad): per class, the pixel map
over the image, one colour scale per method.

A ``ScorePane`` whose tiles show the method's pixel map (``heatmap``) or, on request, its
mean per superpixel (what the trust metrics and the agreement score); Integrated
Gradients' captions give its completeness (Σ of the map and captum's error δ). A model
without gradients (a user's ONNX file) gets a note instead of a failure: the other methods'
panes are unaffected.
"""

from __future__ import annotations

import html

import numpy as np
import panel as pn
import param

from ...engine.results import paint
from ...methods._gradients import GradientResult
from ..state.session import PLACEHOLDER_SEGMENTATION
from .scores import ScorePane

__all__ = ["GradientPane"]

NEEDS_TORCH = "needs a torch model"


class GradientPane(ScorePane):
    """A gradient method's map per class, on one colour scale for all its classes."""

    result_type = GradientResult
    legend_text = "attribution: red for the class, blue against it (one scale for all classes)"

    view = param.Selector(default="pixels", objects=["pixels", "superpixels"], doc=(
        "The pixel map, or its mean per superpixel (what the trust metrics and the agreement compare)."))

    def _dependencies(self) -> dict:
        return {**super()._dependencies(), "view": self.param.view}

    def map_of(self, explanation, result) -> np.ndarray:
        """The pixel map, or its superpixel means painted (``view``; the pixel map until the image is
        segmented: a click's first maps come before its superpixels)."""
        if self.view == "superpixels" and explanation.segmentation.algorithm != PLACEHOLDER_SEGMENTATION:
            return paint(explanation.segmentation.labels, np.asarray(result.values, np.float64))
        return np.asarray(result.heatmap, np.float64)

    def limit(self, explanation=None) -> float:
        explanation = explanation if explanation is not None else self.shown
        results = explanation.results.get(self.method) if explanation is not None else None
        if not results:
            return 1e-6
        memo = getattr(self, "_gradient_limit", None)
        if memo is None or memo[0] is not results or memo[1] != self.view:  # by identity: results hold arrays
            limit = max(float(np.max(np.abs(self.map_of(explanation, r)))) for r in results.values())
            memo = self._gradient_limit = (results, self.view, limit if limit > 0 else 1e-6)
        return memo[2]

    def _suffix(self, explanation, label):
        result = self.results(explanation)[label]
        if hasattr(result, "delta"):  # Integrated Gradients: completeness
            return f" · Σ {float(np.sum(result.heatmap)):+.2f} (δ {float(result.delta):+.2f})"
        return f" · max {float(np.max(result.heatmap)):.2g}"

    def _state(self, explanation, busy, error) -> str:
        if error and NEEDS_TORCH in error:  # not a failure: this model has no gradients
            note = error.split(": ", 1)[1] if error.startswith("ModelError: ") else error
            return (f'<div class="xp-note xp-{self.method}-note" style="color: #92400e; background: #fffbeb; '
                    f'border: 1px solid #fde68a; border-radius: 6px; padding: 6px 10px">{html.escape(note)}</div>')
        return super()._state(explanation, busy, error)

    def _controls(self) -> list:
        return [*super()._controls(),
                pn.widgets.RadioButtonGroup.from_param(self.param.view, name="Show", button_type="light",
                                                       margin=(22, 10))]
