"""What the gradient methods (Grad-CAM, Integrated Gradients, SmoothGrad) share, on captum.

They differentiate the classifier's **torch** module (``Classifier.torch_module``, on
``torch_device``: a GPU when there is one), also when the perturbation methods' forward
passes run on ONNX Runtime; a model given as an ONNX file has no gradients, and
``GradientExplainer.check`` refuses it with the classifier's "needs a torch model"
message before any pass. The input is the engine's own normalised view (the tensor the
top classes were computed from), every top-k class is attributed in one captum call
(batched targets), and the module's lock (``module_lock``) is held while captum's hooks
are on it, so no other thread's forward pass runs through them; torch runs them on
``XAI_PANEL_GRADIENT_THREADS`` threads (default 1, see ``xai_panel.config``).

Each method returns, per class, a ``GradientResult``: a pixel ``heatmap`` at the model's
view (H, W) and its mean per superpixel (``values``), so the trust metrics, the agreement,
the store and the panes read it as any per-superpixel result. The attributed output is
the model's raw class score (its logit, or its probability for a model that outputs
probabilities), as in the captum tutorials and the Grad-CAM paper. Model passes are
counted in the method's cost: forward passes (images through the module, counted where
captum calls it) and backward passes (one per class and input image differentiated).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ..engine.results import ScoreResult
from .base import Explainer

__all__ = ["GradientExplainer", "GradientResult", "superpixel_means", "with_superpixels", "find_layer", "default_layer"]


@dataclass(frozen=True)
class GradientResult(ScoreResult):
    """For one class: a gradient map at the model's view and its per-superpixel mean."""

    label: int
    values: np.ndarray  # (M,) float64: the heatmap's mean over each superpixel
    heatmap: np.ndarray  # (H, W) float32: the attribution per pixel (summed over colour channels)
    prediction: float  # p_c(image), the class's probability


def superpixel_means(segments: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """(M,) float64: the mean of ``heatmap`` over each superpixel of ``segments``."""
    m = int(segments.max()) + 1
    counts = np.bincount(segments.ravel(), minlength=m).astype(np.float64)
    sums = np.bincount(segments.ravel(), weights=np.asarray(heatmap, np.float64).ravel(), minlength=m)
    return sums / np.maximum(counts, 1)


def with_superpixels(results: dict, segments: np.ndarray) -> dict:
    """A gradient method's ``{label: result}`` with ``values`` taken over ``segments`` (H, W): the
    pixel maps need no superpixels, so a click shows them first (computed on a placeholder
    segmentation) and their superpixel means follow once the image is segmented."""
    return {c: replace(r, values=superpixel_means(segments, r.heatmap)) for c, r in results.items()}


class _Counted:
    """``module`` as captum's forward function: the output's first tensor, images counted."""

    def __init__(self, module):
        self.module = module
        self.images = 0

    def __call__(self, x):
        self.images += int(x.shape[0])
        out = self.module(x)
        return out[0] if isinstance(out, (tuple, list)) else out


_layers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def default_layer(module, x, counted: _Counted | None = None) -> str:
    """The name of the last module of ``module`` that outputs a spatial map (N, C, h, w with
    h, w > 1) and runs once per forward pass: the last convolutional block (``layer4`` of a
    ResNet, ``_bn1`` of EfficientNet-Lite0, ``features`` of VGG and MobileNet). Found with one
    forward pass of ``x``, once per module."""
    import torch

    name = _layers.get(module)
    if name is not None:
        return name
    calls: dict[str, int] = {}
    spatial: list[str] = []
    hooks = []

    def hook_for(n):
        def hook(_mod, _inp, out):
            calls[n] = calls.get(n, 0) + 1
            if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] > 1 and out.shape[3] > 1:
                spatial.append(n)
        return hook

    try:
        for n, sub in module.named_modules():
            if n:
                hooks.append(sub.register_forward_hook(hook_for(n)))
        with torch.no_grad():
            (counted or module)(x)
    finally:
        for h in hooks:
            h.remove()
    once = [n for n in spatial if calls[n] == 1]
    if not once:
        raise ValueError("the model has no layer with a spatial output (N, C, h, w) to take Grad-CAM at; "
                         "name one with layer=")
    _layers[module] = once[-1]
    return once[-1]


def find_layer(module, name: str):
    """The sub-module called ``name`` (a dotted path, as ``named_modules`` gives)."""
    found = dict(module.named_modules())
    if name in found and name:
        return found[name]
    import difflib

    close = difflib.get_close_matches(name, [n for n in found if n], n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"the model has no layer {name!r}{hint} (layer names are those of model.named_modules())")


class GradientExplainer(Explainer):
    """Base of the gradient methods: subclasses implement :meth:`attribute`."""

    __abstract = True

    quick: ClassVar[bool] = True
    needs_hooks: ClassVar[bool] = False
    """Needs forward hooks on the module's layers (not available on TorchScript modules)."""
    warm_imports = ("captum.attr",)

    def check(self, classifier) -> None:
        module, _ = classifier.require_torch(self.label or type(self).__name__)
        if self.needs_hooks:
            import torch

            if isinstance(module, torch.jit.ScriptModule):
                from ..models.classifier import ModelError

                raise ModelError(f"{self.label} needs a torch model with layer hooks: {classifier.model_id!r} is "
                                 "TorchScript, which has none. Load it as a torchvision architecture with its weights "
                                 "(or pass the nn.Module); Integrated Gradients and SmoothGrad work on TorchScript.")

    def attribute(self, forward: _Counted, x, labels: list[int], *, seed: int, engine) -> tuple[np.ndarray, dict, int]:
        """For ``labels`` of the input ``x`` (1, 3, H, W): (k, H, W) float32 maps, extra result
        fields ({field: (k,) values}) and the backward passes made."""
        raise NotImplementedError

    def compute(self, engine, labels, *, seed, pool, top_k):
        import torch

        from ..models.torch_backend import module_lock

        self.check(engine.classifier)
        module, device = engine.classifier.require_torch(self.label)
        labels = [int(c) for c in labels]
        from ..config import config

        probs = engine.predict_full()  # memoised: the top classes' pass
        forward = _Counted(module)
        t0 = time.perf_counter()
        with module_lock(module):
            threads = torch.get_num_threads()
            torch.set_num_threads(config().gradient_threads)
            try:
                x = torch.from_numpy(np.array(engine.model_input)).to(device)
                maps, extra, backward = self.attribute(forward, x, labels, seed=int(seed), engine=engine)
            finally:
                torch.set_num_threads(threads)
        engine.charge(forward.images, time.perf_counter() - t0, backward_passes=backward)
        engine.check_cancelled()
        segments = engine.segments
        out = {}
        for i, c in enumerate(labels):
            heatmap = np.ascontiguousarray(maps[i], np.float32)
            fields = {k: float(v[i]) for k, v in extra.items()}
            out[c] = self.result_type(label=c, values=superpixel_means(segments, heatmap), heatmap=heatmap,
                                      prediction=float(probs[c]), **fields)
        return out


def to_maps(attributions) -> np.ndarray:
    """captum's (k, 3, H, W) input attributions -> (k, H, W) float32, summed over channels
    (so a map's sum is the attributions' sum: IG's completeness holds for the map)."""
    return attributions.detach().float().sum(dim=1).cpu().numpy().astype(np.float32)
