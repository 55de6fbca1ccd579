"""Panel components: thin views over the explanation engine, linked through parameters.

``ExplanationSession`` holds the state (image in; top classes and a progressively
arriving ``Explanation`` out); the panes take references to its parameters, so a click in
the ``Gallery`` or on the ``TopClasses`` chart moves every pane. Importing this package
imports Panel; the engine itself never does. The panes send pictures as HTML (one JPEG
tile per class), so no HoloViews plot is built per page or per click; results are plain
arrays, ready for HoloViews in a notebook (see ``gallery/01_explain_an_image.ipynb``).
"""

from ..runtime.cache import ExplanationCache, MemoryCache, default_cache, set_default_cache
from ..runtime.jobs import JobRunner
from .panes.anchors import AnchorPane
from .panes.base import MethodPane, method_pane, pane_class
from .panes.gradients import GradientPane
from .panes.image import ImagePane
from .panes.lime import LimePane
from .panes.scores import ScorePane, ShapPane
from .panes.stability import StabilityPane
from .panes.timing import TimingPane
from .panes.top_classes import TopClasses
from .state.session import ExplanationSession
from .widgets.class_picker import ClassPicker
from .widgets.gallery import ALL, UNLABELLED, Gallery
from .widgets.label_grid import LabelGrid
from .widgets.model_selector import SUGGESTED_MODELS, ModelSelector
from .widgets.settings import FAST_SETTINGS, ExplainerSettings
from .widgets.thumbgrid import ThumbnailGrid
from .widgets.upload import ImageUpload

__all__ = [
    "ALL", "UNLABELLED", "AnchorPane", "ClassPicker", "MethodPane", "ExplainerSettings", "ExplanationCache", "ExplanationSession",
    "FAST_SETTINGS", "Gallery", "GradientPane", "ImagePane", "ImageUpload", "JobRunner", "LabelGrid", "LimePane",
    "MemoryCache",
    "ModelSelector", "SUGGESTED_MODELS", "ScorePane", "ShapPane", "method_pane", "pane_class",
    "StabilityPane", "ThumbnailGrid", "TimingPane", "TopClasses", "default_cache",
    "set_default_cache",
]
