"""Torch runner and device selection."""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch

__all__ = ["resolve_device", "TorchRunner", "module_lock"]

_locks: "weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def module_lock(module: torch.nn.Module) -> threading.RLock:
    """The one lock of ``module`` in this process: the gradient methods hold it while their
    hooks are on the module, and ``TorchRunner`` while it runs a batch, so a forward pass in
    another thread never runs through another explanation's hooks."""
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = _locks[module] = threading.RLock()
        return lock


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``; other values are checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but no CUDA GPU is available")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device


class TorchRunner:
    """Runs an ``nn.Module`` (or TorchScript module) under ``inference_mode`` on one device."""

    def __init__(self, module: torch.nn.Module, device: str):
        self.device = device
        self.module = module.eval().to(device)
        self._lock = module_lock(self.module)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock, torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            y = self.module(x)
            if isinstance(y, (tuple, list)):
                y = y[0]
            return y.float().cpu().numpy()
