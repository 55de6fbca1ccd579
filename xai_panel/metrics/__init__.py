"""Metrics of explanations: how stable they are (and, next, how faithful). Pure core: no Panel.

``xai_panel.stability`` is the stability experiment; this package holds its modules.
"""

from .stability import MethodStability, StabilityReport, add_noise, jaccard, spearman

__all__ = ["MethodStability", "StabilityReport", "add_noise", "jaccard", "spearman"]
