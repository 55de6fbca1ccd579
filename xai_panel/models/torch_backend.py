"""Torch runner and device selection."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["resolve_device", "TorchRunner"]


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

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            y = self.module(x)
            if isinstance(y, (tuple, list)):
                y = y[0]
            return y.float().cpu().numpy()
