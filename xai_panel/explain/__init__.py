"""The explanation engine: segmentation, shared perturbations, LIME, Anchors, SHAP, stability."""

from .api import METHODS, explain
from .engine import Cancelled, PerturbationEngine, fill_image, uniform_coalitions
from .explainers import EXPLAINERS, AnchorExplainer, Explainer, LimeExplainer, ShapExplainer, make_explainer
from .results import AnchorResult, ClassScore, Explanation, LimeResult, MethodCost, Segmentation, ShapResult, paint
from .segmentation import ALGORITHMS, segment

__all__ = [
    "METHODS", "explain", "Cancelled", "PerturbationEngine", "fill_image", "uniform_coalitions",
    "EXPLAINERS", "AnchorExplainer", "Explainer", "LimeExplainer", "ShapExplainer", "make_explainer",
    "AnchorResult", "ClassScore", "Explanation", "LimeResult", "MethodCost", "Segmentation", "ShapResult",
    "paint", "ALGORITHMS", "segment",
]
