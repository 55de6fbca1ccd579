"""The browser tests drive the shared served app (``served_app``, ``browser`` and ``page``
come from tests/served.py through tests/conftest.py); helpers to read Bokeh's pictures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..served import CHROMIUM, CHROMIUM_ARGS, QUICK_SETTINGS, REPO, free_port, stop_server  # noqa: F401


def start_server(tmp_path: Path, env_extra: dict | None = None, timeout: float = 240) -> tuple[subprocess.Popen, str]:
    """``panel serve`` of both dashboards on the demo gallery (the benchmarks serve them so)."""
    port = free_port()
    env = {**os.environ, "XAI_PANEL_CACHE": str(tmp_path / "cache"), "XAI_PANEL_SETTINGS": json.dumps(QUICK_SETTINGS),
           **(env_extra or {})}
    cmd = [sys.executable, "-m", "panel", "serve", str(REPO / "dashboards" / "gallery.py"),
           str(REPO / "dashboards" / "explorer.py"), "--port", str(port), "--address", "127.0.0.1",
           f"--allow-websocket-origin=127.0.0.1:{port}",
           "--setup", str(REPO / "xai_panel" / "runtime" / "warmup.py")]
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited early:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/gallery", timeout=60) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("panel serve did not answer in time")


BOKEH_LABELS = """() => {
  // The labels of every picture on the page: captions of the panes' tiles and strips (held,
  // HTML-escaped, in the text of their HTML models), and titles and axis tick labels of the
  // Bokeh plots: text the DOM of the page does not hold until it is drawn.
  const labels = [];
  const unescape = (s) => new DOMParser().parseFromString(s, "text/html").documentElement.textContent;
  const CAPTION = /&lt;(figcaption|div class=&quot;xp-strip-title&quot;)&gt;(.*?)&lt;\\/(figcaption|div)&gt;/g;
  for (const doc of Bokeh.documents)
    for (const m of doc._all_models.values()) {
      if (typeof m.text === "string" && m.text.includes("xp-tile"))
        for (const match of m.text.matchAll(CAPTION)) {
          const text = unescape(unescape(match[2])).trim();
          if (text) labels.push(text);
        }
      if (m.title && typeof m.title === "object" && "text" in m.title && m.renderers) labels.push(m.title.text);
      const o = m.major_label_overrides;
      if (o instanceof Map) o.forEach(v => labels.push(String(v)));
      else if (o && typeof o === "object") Object.values(o).forEach(v => labels.push(String(v)));
    }
  return labels;
}"""
