"""xai-panel: explain image-classifier predictions (LIME, Anchors, SHAP, occlusion, ...) in HoloViz.

The top-level names are imported lazily so that ``import xai_panel`` (and the CLI's
``--help``) stays fast; torch and the explainers load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_classifier": "xai_panel.models",
    "available_models": "xai_panel.models",
    "Classifier": "xai_panel.models",
    "ModelError": "xai_panel.models",
    "load_image": "xai_panel.data",
    "ImageError": "xai_panel.data",
    "open_dataset": "xai_panel.data",
    "demo_dataset": "xai_panel.data",
    "fetch_imagenette": "xai_panel.data",
    "explain": "xai_panel.engine",
    "Explanation": "xai_panel.engine",
    "Cancelled": "xai_panel.engine",
    "segment": "xai_panel.engine",
    "Preset": "xai_panel.presets",
    "preset": "xai_panel.presets",
    "presets": "xai_panel.presets",
    "preset_names": "xai_panel.presets",
    "Explainer": "xai_panel.methods",
    "available_methods": "xai_panel.methods",
    "OcclusionExplainer": "xai_panel.methods",
    "LimeExplainer": "xai_panel.methods",
    "AnchorExplainer": "xai_panel.methods",
    "ShapExplainer": "xai_panel.methods",
    "stability": "xai_panel.metrics.stability",
    "faithfulness": "xai_panel.metrics.faithfulness",
    "agreement": "xai_panel.metrics.agreement",
    "add_metrics": "xai_panel.metrics.trust",
    "sanity_check": "xai_panel.metrics.sanity",
    "SanityCheck": "xai_panel.metrics.sanity",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xai_panel' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
