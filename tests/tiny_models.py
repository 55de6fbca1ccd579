"""A tiny classifier exported to ONNX, for tests of what an ONNX file (no gradients, no weights to
re-initialise) refuses: one linear layer on the image's mean colour, 1,000 classes."""

from __future__ import annotations

from pathlib import Path


def tiny_onnx(path: Path) -> Path:
    """Write the tiny classifier to ``path`` (batch axis dynamic) and return ``path``."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.fc = torch.nn.AdaptiveAvgPool2d(1), torch.nn.Linear(3, 1000)

        def forward(self, x):
            return self.fc(self.pool(x).flatten(1))

    torch.onnx.export(Tiny(), torch.zeros(1, 3, 224, 224), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    return path
