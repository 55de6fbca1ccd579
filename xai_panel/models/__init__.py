"""Model layer: a uniform ``Classifier`` over torch, TorchScript and ONNX Runtime models."""

from .classifier import Classifier, ModelError, Preprocessing
from .registry import available_models, load_classifier

__all__ = ["Classifier", "ModelError", "Preprocessing", "available_models", "load_classifier"]
