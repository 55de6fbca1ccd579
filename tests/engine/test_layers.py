"""The layers of docs/architecture.md: the core (engine, methods, metrics, store) runs without Panel."""

from __future__ import annotations

import subprocess
import sys


def test_the_core_imports_no_panel():
    code = ("import sys, xai_panel.engine.pipeline, xai_panel.engine.service, xai_panel.metrics.stability, "
            "xai_panel.store, xai_panel.batch\n"
            "from xai_panel.methods import registry\n"
            "assert len(registry()) >= 4\n"
            "print(sorted(m for m in ('panel', 'bokeh', 'holoviews') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
