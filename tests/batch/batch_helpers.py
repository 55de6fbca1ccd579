"""Shared bits of the batch tests: real photos copied into tmp_path, small budgets."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from xai_panel.data import open_dataset

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "imagenet-sample"
PYTHON = sys.executable
# Small budgets: what is tested is the batch machinery, not explanation quality.
# --metrics none: these runs are about the batch itself, not the trust metrics precompute measures by default.
FAST_ARGS = ["--methods", "lime", "--set", "lime.num_samples=60", "--segmentation", "grid", "--metrics", "none",
             "--no-progress"]
FAST = {"methods": ("lime",), "settings": {"lime": {"num_samples": 60}}, "segmentation": "grid"}


def copy_images(folder: Path, n: int) -> list[Path]:
    """``n`` real photos in ``folder``: ImageNet sample files (wnid names give true labels)
    when the shared data is there, else the demo photos shipped with the dependencies."""
    folder.mkdir(parents=True, exist_ok=True)
    if SHARED.is_dir():
        sources = sorted(SHARED.glob("*.JPEG"))[:: max(1, 800 // n)][:n]
    else:
        sources = [r.path for r in open_dataset(None)][:n]
        if len(sources) < n:
            pytest.skip(f"needs {n} photos: {SHARED} is absent and the demo gallery has {len(sources)}")
    return [Path(shutil.copy(src, folder / src.name)) for src in sources]
