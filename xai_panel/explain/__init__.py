"""The explanation engine: segmentation, shared perturbations, LIME, Anchors, SHAP, stability."""

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
    "paint", "ALGORITHMS", "segment", "explain_shap", "MethodStability", "StabilityReport", "stability",
]
