"""Deletion and insertion curves as small inline SVG figures: the trust pane's and the HTML report's.

SVG rather than a Bokeh figure: a click redraws these plots, and three HoloViews plots cost
about 0.25 s of the server's event loop per click (measured), an SVG string nothing; and the
report stays one file that opens offline.
"""

from __future__ import annotations

import html

import numpy as np

__all__ = ["CURVES_CSS", "CURVES_KEY", "curve_svg"]

CURVES_CSS = """
.xp-curves { display: flex; flex-wrap: wrap; gap: 6px 14px; }
.xp-curve { margin: 0; font: 9px system-ui, sans-serif; fill: #4b5563; }
.xp-curve .xp-curve-title { font-size: 11px; font-weight: 600; fill: #111827; }
.xp-curve .xp-curve-auc { font-size: 9px; }
"""
_DELETION, _INSERTION = "#dc2626", "#2563eb"
CURVES_KEY = (f"<b style='color:{_DELETION}'>—</b> deletion (most important hidden first) "
              f"<b style='color:{_INSERTION}'>—</b> insertion (revealed first) · dashed: random order")
"""The curves' legend (HTML)."""

_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 250, 180, 34, 10, 34, 30


def _polyline(x: np.ndarray, y: np.ndarray, color: str, dashed: bool) -> str:
    px = _LEFT + np.clip(np.asarray(x, float), 0, 1) * (_W - _LEFT - _RIGHT)
    py = _TOP + (1 - np.clip(np.asarray(y, float), 0, 1.02) / 1.02) * (_H - _TOP - _BOTTOM)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
    dash = " stroke-dasharray='5 3' opacity='0.6'" if dashed else ""
    return f"<polyline points='{points}' fill='none' stroke='{color}' stroke-width='1.8'{dash}/>"


def curve_svg(title: str, f) -> str:
    """A ``Faithfulness``'s four curves over [0, 1] x [0, 1] as a small SVG figure titled ``title``."""
    grid, ticks = [], []
    for v in (0.0, 0.5, 1.0):
        gx = _LEFT + v * (_W - _LEFT - _RIGHT)
        gy = _TOP + (1 - v / 1.02) * (_H - _TOP - _BOTTOM)
        grid.append(f"<line x1='{_LEFT}' x2='{_W - _RIGHT}' y1='{gy:.1f}' y2='{gy:.1f}' stroke='#e5e7eb'/>"
                    f"<line x1='{gx:.1f}' x2='{gx:.1f}' y1='{_TOP}' y2='{_H - _BOTTOM}' stroke='#e5e7eb'/>")
        ticks.append(f"<text x='{_LEFT - 4}' y='{gy + 3:.1f}' text-anchor='end'>{v:g}</text>"
                     f"<text x='{gx:.1f}' y='{_H - _BOTTOM + 12}' text-anchor='middle'>{v:g}</text>")
    lines = (_polyline(f.x, f.random_deletion, _DELETION, True) + _polyline(f.x, f.random_insertion, _INSERTION, True)
             + _polyline(f.x, f.deletion, _DELETION, False) + _polyline(f.x, f.insertion, _INSERTION, False))
    name = html.escape(title)
    return (f"<figure class='xp-curve' data-method='{name}'><svg width='{_W}' height='{_H}' viewBox='0 0 {_W} {_H}' "
            f"role='img' aria-label='{name}: deletion and insertion curves'>"
            f"<text x='{_LEFT}' y='13' class='xp-curve-title'>{name}</text>"
            f"<text x='{_LEFT}' y='26' class='xp-curve-auc'><tspan fill='{_DELETION}'>deletion {f.deletion_auc:.2f}"
            f"</tspan> (random {f.random_deletion_auc:.2f}) · <tspan fill='{_INSERTION}'>insertion "
            f"{f.insertion_auc:.2f}</tspan></text>{''.join(grid)}{lines}{''.join(ticks)}"
            f"<text x='{(_LEFT + _W - _RIGHT) / 2:.0f}' y='{_H - 3}' text-anchor='middle'>fraction of superpixels</text>"
            f"</svg></figure>")
