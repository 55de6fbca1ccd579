"""What every benchmark prints about the machine it ran on (machines here are shared and noisy)."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

__all__ = ["machine", "SAMPLE", "sample_folder"]

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
"""The 802 ImageNet photos beside the checkout (../shared/data; never committed)."""


def sample_folder(n: int, dest: Path) -> Path:
    """Copies of every k-th photo of :data:`SAMPLE`, ``n`` in all, in ``dest`` (copies, not links: a
    benchmark measures files of their own, as a user's folder holds)."""
    files = sorted(SAMPLE.glob("*.JPEG"))
    if not files:
        sys.exit(f"the shared ImageNet sample is not at {SAMPLE}")
    dest.mkdir(parents=True, exist_ok=True)
    for src in files[:: max(1, len(files) // n)][:n]:
        shutil.copyfile(src, dest / src.name)
    return dest


def machine() -> str:
    """'<n> cores (<cpu model>), load average <1 min> <5 min> <15 min>'."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return f"{os.cpu_count()} cores ({cpu}), load average {load}"
