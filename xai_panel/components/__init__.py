"""Panel components: thin views over the explanation engine, linked through parameters.

``ExplanationSession`` holds the state (image in; top classes and a progressively
arriving ``Explanation`` out); the panes take references to its parameters, so a click in
the ``Gallery`` or on the ``TopClasses`` chart moves every pane. Importing this package
imports Panel; the engine itself never does. The panes send pictures as HTML (one JPEG
tile per class), so no HoloViews plot is built per page or per click; results are plain
arrays, ready for HoloViews in a notebook (see ``gallery/01_explain_an_image.ipynb``).
"""

from .anchor_pane import AnchorPane
from .cache import ExplanationCache, MemoryCache, default_cache, explanation_key, set_default_cache
from .controller import JobRunner
from .gallery import ALL, UNLABELLED, Gallery
from .image_pane import ImagePane
from .lime_pane import LimePane
from .model_selector import SUGGESTED_MODELS, ModelSelector
from .session import ExplanationSession
from .settings import FAST_SETTINGS, ExplainerSettings
from .shap_pane import ShapPane
from .stability_pane import StabilityPane
from .thumbgrid import ThumbnailGrid
from .timing_pane import TimingPane
from .top5 import TopClasses
from .upload import ImageUpload

__all__ = [
    "ALL", "UNLABELLED", "AnchorPane", "ExplainerSettings", "ExplanationCache", "ExplanationSession",
    "FAST_SETTINGS", "Gallery", "ImagePane", "ImageUpload", "JobRunner", "LimePane", "MemoryCache", "ModelSelector",
    "SUGGESTED_MODELS", "ShapPane",
    "StabilityPane", "ThumbnailGrid", "TimingPane", "TopClasses", "default_cache", "explanation_key",
    "set_default_cache",
]
