"""The explanation engine: segmentation, shared perturbations, LIME, Anchors, SHAP, stability."""

import sys as _sys
import types as _types

from .anchors import explain_anchors
from .api import METHODS, explain
from .engine import Cancelled, PerturbationEngine, fill_image, uniform_coalitions
from .explainers import EXPLAINERS, AnchorExplainer, Explainer, LimeExplainer, ShapExplainer, make_explainer
from .results import AnchorResult, ClassScore, Explanation, LimeResult, MethodCost, Segmentation, ShapResult, paint
from .segmentation import ALGORITHMS, segment
from .shap import explain_shap
from .stability import MethodStability, StabilityReport, stability

__all__ = [
    "METHODS", "explain", "Cancelled", "PerturbationEngine", "fill_image", "uniform_coalitions",
    "EXPLAINERS", "AnchorExplainer", "Explainer", "LimeExplainer", "ShapExplainer", "make_explainer",
    "AnchorResult", "ClassScore", "Explanation", "LimeResult", "MethodCost", "Segmentation", "ShapResult",
    "paint", "ALGORITHMS", "segment", "explain_anchors", "explain_shap", "MethodStability", "StabilityReport", "stability",
]


class _CallableModule(_types.ModuleType):
    """``xai_panel.explain(...)`` is the public entry point, yet ``xai_panel.explain`` is also
    this subpackage: importing any submodule rebinds the package attribute to the module.
    Making the module callable keeps both spellings working. (Renaming the subpackage is the
    cleaner fix; noted for the next release.)"""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
