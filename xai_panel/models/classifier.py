"""The ``Classifier``: owns preprocessing and batched inference for one model.

Every explanation costs thousands of forward passes, so this is the hot path: images are
prepared once to the model's input view (resize + centre crop, as uint8), then only
normalised and batched on each call. Runners (torch or ONNX Runtime) are interchangeable.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image

__all__ = ["Classifier", "ModelError", "Preprocessing", "ClassScore", "NORMALISATIONS", "preprocessing_for"]


class ModelError(RuntimeError):
    """A model could not be loaded or produced unusable output."""


@dataclass(frozen=True)
class ClassScore:
    """One predicted class."""

    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class Preprocessing:
    """How raw RGB images become model inputs (torchvision's ImageClassification convention)."""

    crop_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: int = Image.BILINEAR

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Resize the shorter side to ``resize_size`` and centre-crop to ``crop_size`` (uint8 RGB)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(f"expected an HxWx3 RGB image, got an array of shape {image.shape}")
        if image.shape[:2] == (self.crop_size, self.crop_size):
            return np.ascontiguousarray(image, dtype=np.uint8)
        h, w = image.shape[:2]
        scale = self.resize_size / min(h, w)
        new_w, new_h = max(self.crop_size, round(w * scale)), max(self.crop_size, round(h * scale))
        resized = np.asarray(
            Image.fromarray(image.astype(np.uint8)).resize((new_w, new_h), self.interpolation)
        )
        top, left = (new_h - self.crop_size) // 2, (new_w - self.crop_size) // 2
        return np.ascontiguousarray(resized[top : top + self.crop_size, left : left + self.crop_size])

    def normalise(self, batch: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> float32 NCHW, normalised."""
        mean = np.asarray(self.mean, np.float32) * 255.0
        std = np.asarray(self.std, np.float32) * 255.0
        out = (batch.astype(np.float32) - mean) / std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


NORMALISATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision's ImageNet models
    "0.5": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # inputs in [-1, 1] (EfficientNet-Lite, many TF ports)
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # inputs in [0, 1]
}
"""The normalisations a model may have been trained with: name -> (mean, std), per RGB channel."""

MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024


def preprocessing_for(normalisation="imagenet", input_size: int | None = None, *,
                      mean=None, std=None) -> Preprocessing:
    """A ``Preprocessing`` from a normalisation choice and an input size.

    ``normalisation``: a name of ``NORMALISATIONS`` (``"imagenet"``, ``"0.5"``, ``"none"``),
    ``"custom"`` with ``mean`` and ``std`` (three numbers each, std > 0), a mapping with
    ``mean``, ``std`` and optionally ``input_size``, or a ``Preprocessing`` (returned as
    is). ``input_size`` is the square crop the model takes (default 224); images are
    resized to ``input_size * 256 / 224`` first, as torchvision does.
    """
    if isinstance(normalisation, Preprocessing):
        return normalisation
    if isinstance(normalisation, dict):
        unknown = set(normalisation) - {"mean", "std", "input_size"}
        if unknown:
            raise ValueError(f"unknown preprocessing keys {sorted(unknown)}; use mean, std and input_size")
        mean, std = normalisation.get("mean"), normalisation.get("std")
        input_size = normalisation.get("input_size", input_size)
        normalisation = "custom"
    if normalisation == "custom":
        mean, std = _channels(mean, "mean"), _channels(std, "std")
        if min(std) <= 0:
            raise ValueError(f"std must be > 0 in every channel, got {std}")
    elif normalisation in NORMALISATIONS:
        if mean is not None or std is not None:
            raise ValueError("mean and std go with normalisation='custom'")
        mean, std = NORMALISATIONS[normalisation]
    else:
        raise ValueError(f"unknown normalisation {normalisation!r}; use one of "
                         f"{', '.join([*NORMALISATIONS, 'custom'])}")
    size = 224 if input_size is None else input_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        raise ValueError(f"input_size must be an integer in [{MIN_INPUT_SIZE}, {MAX_INPUT_SIZE}], got {size!r}")
    size = int(size)
    return Preprocessing(crop_size=size, resize_size=max(size, round(size * 256 / 224)), mean=mean, std=std)


def _channels(values, what: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be three numbers (R, G, B), got {values!r}") from None
    if len(out) != 3 or not all(np.isfinite(out)):
        raise ValueError(f"{what} must be three finite numbers (R, G, B), got {values!r}")
    return out  # type: ignore[return-value]


Runner = Callable[[np.ndarray], np.ndarray]
"""Maps a float32 NCHW batch to logits (N, C)."""


@dataclass
class _Counters:
    forward_passes: int = 0
    model_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Classifier:
    """An image classifier with its own preprocessing, batching and pass counters.

    ``predict_proba`` takes HxWx3 uint8 RGB images of any size and returns an (N, C)
    float32 array of probabilities. Images already at the crop size are taken as
    prepared (this is how the explainers call it: they perturb the prepared view).
    """

    def __init__(
        self,
        runner: Runner,
        class_names: Sequence[str],
        *,
        model_id: str,
        preprocessing: Preprocessing = Preprocessing(),
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "torch",
        outputs: str = "logits",
        module=None,
        module_device: str | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if outputs not in ("logits", "probabilities"):
            raise ValueError("outputs must be 'logits' or 'probabilities'")
        self._runner = runner
        self.class_names = list(class_names)
        self.model_id = model_id
        self.preprocessing = preprocessing
        self.batch_size = int(batch_size)
        self.device = device
        self.backend = backend
        self.outputs = outputs
        self._module = module
        self._module_device = module_device or device
        self._counters = _Counters()
        self.warmed = False  # whether warm_up has run (load_classifier runs it for ONNX Runtime)

    def __repr__(self) -> str:
        return (
            f"Classifier({self.model_id!r}, backend={self.backend!r}, device={self.device!r}, "
            f"classes={self.num_classes}, batch_size={self.batch_size})"
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_size(self) -> int:
        return self.preprocessing.crop_size

    @property
    def torch_module(self):
        """The ``torch.nn.Module`` behind this classifier (in eval mode, on ``torch_device``),
        or None for a model given as an ONNX file. Gradient methods and the model
        randomisation check use it, also when forward passes run on ONNX Runtime."""
        return self._module

    @property
    def torch_device(self) -> str:
        """The device ``torch_module`` lives on (a GPU when the user has one)."""
        return self._module_device

    def require_torch(self, purpose: str):
        """``(module, device)`` for ``purpose``; a clear ``ModelError`` when there is no torch model."""
        if self._module is None:
            raise ModelError(
                f"{purpose} needs a torch model: {self.model_id!r} was loaded from an ONNX file, which has no "
                "gradients or weights to change. Load the model as TorchScript or a torchvision architecture "
                "with its weights to use it; the perturbation methods still work.")
        return self._module, self._module_device

    @property
    def forward_passes(self) -> int:
        """Images sent through the model since creation (all threads)."""
        return self._counters.forward_passes

    @property
    def model_seconds(self) -> float:
        """Wall time spent inside the model runner since creation (all threads)."""
        return self._counters.model_seconds

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The uint8 view of ``image`` the model actually sees (resized and centre-cropped)."""
        return self.preprocessing.prepare(image)

    def predict_proba(self, images, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities for a batch (array NxHxWx3 or a list of HxWx3 arrays)."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = images[None]
        if isinstance(images, np.ndarray) and images.shape[1:] == (self.input_size, self.input_size, 3):
            prepared = images
        else:
            prepared = [self.prepare(im) for im in images]
        n = len(prepared)
        if n == 0:
            return np.zeros((0, self.num_classes), np.float32)
        step = batch_size or self.batch_size
        out = np.empty((n, self.num_classes), np.float32)
        for start in range(0, n, step):
            chunk = np.asarray(prepared[start : start + step], dtype=np.uint8)
            out[start : start + len(chunk)] = self._forward(chunk)
        return out

    def _forward(self, chunk: np.ndarray) -> np.ndarray:
        return self.forward_normalised(self.preprocessing.normalise(chunk))

    def forward_normalised(self, x: np.ndarray, cancel=None) -> np.ndarray:
        """Probabilities for a batch already prepared and normalised (float32 NCHW).

        The perturbation engine builds such batches directly (one ``np.where`` between the
        normalised image and the normalised fill), skipping per-sample conversions. With
        ``cancel`` (the work's ``CancelEvent``), a runner that can be interrupted (ONNX
        Runtime's) stops its pass when the event is set, raising ``Cancelled``; others finish it.
        """
        t0 = time.perf_counter()
        if cancel is not None and getattr(self._runner, "accepts_cancel", False):
            raw = np.asarray(self._runner(x, cancel=cancel))
        else:
            raw = np.asarray(self._runner(x))
        elapsed = time.perf_counter() - t0
        with self._counters.lock:
            self._counters.forward_passes += len(x)
            self._counters.model_seconds += elapsed
        return self._to_probabilities(raw, len(x))

    def warm_up(self, batches: int = 2, pause=None) -> None:
        """Run ``batches`` full batches of a blank image through the model, uncounted;
        ``pause()``, if given, is called before each (a server's warm-up waits there while a
        visitor's click is served).

        A runtime's first batches of a shape are slow (ONNX Runtime plans and allocates its
        memory on the first run: measured here, the first explanation after start reached
        its LIME preview in 1.2 s against 0.45 s once warm). ``load_classifier`` calls this
        for ONNX Runtime (``warm=True``), servers for any other runtime at start.
        """
        blank = self.preprocessing.normalise(np.zeros((self.batch_size, self.input_size, self.input_size, 3), np.uint8))
        for _ in range(batches):
            if pause is not None:
                pause()
            self._to_probabilities(np.asarray(self._runner(blank)), len(blank))
        self.warmed = True

    def _to_probabilities(self, raw: np.ndarray, n: int) -> np.ndarray:
        if raw.ndim != 2 or raw.shape != (n, self.num_classes):
            raise ModelError(
                f"model {self.model_id!r} returned shape {tuple(raw.shape)}; expected "
                f"({n}, {self.num_classes}) = (batch, classes)"
            )
        raw = raw.astype(np.float32, copy=False)
        if not np.all(np.isfinite(raw)):
            raise ModelError(f"model {self.model_id!r} returned NaN or infinite outputs")
        if self.outputs == "probabilities":
            return raw
        shifted = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)

    def top_k(self, image: np.ndarray, k: int = 5) -> list[ClassScore]:
        """The ``k`` most probable classes for one image, most probable first."""
        if not 1 <= k <= self.num_classes:
            raise ValueError(f"k must be between 1 and {self.num_classes}, got {k}")
        probs = self.predict_proba(np.asarray(image)[None])[0]
        return top_k_of(probs, self.class_names, k)


def top_k_of(probs: np.ndarray, class_names: Sequence[str], k: int) -> list[ClassScore]:
    """The ``k`` largest entries of a probability vector as ``ClassScore``s (ties by index)."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [ClassScore(int(i), class_names[int(i)], float(probs[i])) for i in order]
