"""A one-file HTML report of one image's explanation, to keep or to send.

``report_html(explanation)`` needs no server and no network: every picture is a PNG inside the
file (a ``data:`` URL), the styles are inline and use the fonts the reader's system has, and
the page holds no script. Its Content-Security-Policy forbids loading anything else, so a
reader opening it offline, or from a mail, sees all of it and nothing is fetched.

It shows the image and its top classes with their probabilities; per method, its picture for
every class (``render.figures``: the panes' drawings), what it cost (model passes, seconds),
and its settings; then the trust metrics measured with it (faithfulness, agreement) and, when
given, a stability report and a sanity check.
"""

from __future__ import annotations

import base64
import html
import math
import time
from typing import Mapping

from ..engine.request import canonical_json, package_version
from ..engine.results import Explanation
from .curves import CURVES_CSS, CURVES_KEY, curve_svg
from .figures import drawable, figure, method_limit, on_scale, png

__all__ = ["report_html", "REPORT_CSS"]

REPORT_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Liberation Sans', Arial, sans-serif;
       color: #111827; margin: 24px auto; max-width: 1240px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #e5e7eb; }
.meta, .note { color: #4b5563; font-size: 12px; } .note { margin: 2px 0 8px; }
.top { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
table { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
th { color: #6b7280; font-weight: 600; text-align: left; border-bottom: 1px solid #e5e7eb; padding: 3px 8px; }
td { border-bottom: 1px solid #f3f4f6; padding: 3px 8px; } td.n { text-align: right; }
.bar { display: inline-block; height: 8px; background: #2563eb; border-radius: 2px; vertical-align: middle; }
.strip { display: flex; flex-wrap: wrap; gap: 10px 14px; }
figure { margin: 0; width: 190px; } figure img { display: block; width: 190px; height: 190px; object-fit: contain;
  border-radius: 6px; background: #f4f4f5; } figcaption { font-size: 12px; margin-top: 3px; }
.ramp { display: inline-block; height: 10px; width: 220px; border: 1px solid #e5e7eb; border-radius: 3px;
        vertical-align: middle; margin: 0 6px; }
.good { color: #15803d; } .bad { color: #b91c1c; } .error { color: #991b1b; }
details { font-size: 12px; color: #374151; margin-top: 6px; } code { font-size: 11px; }
""" + CURVES_CSS + """
h4 { font-size: 13px; margin: 10px 0 2px; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _img(image, alt: str, css_class: str = "") -> str:
    url = "data:image/png;base64," + base64.b64encode(png(image)).decode("ascii")
    return f'<img src="{url}" alt="{html.escape(alt)}" class="{css_class}">'


def _num(value, fmt: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def _label(method: str) -> str:
    from ..methods.base import method_class

    try:
        return method_class(method).label
    except ValueError:  # a metric's cost ("faithfulness") or the top-k pass
        return method


def _ramp(limit: float) -> str:
    from matplotlib import colormaps

    cmap = colormaps["RdBu_r"]
    stops = ", ".join("rgb({}, {}, {})".format(*(round(255 * c) for c in cmap(i / 10)[:3])) for i in range(11))
    return (f'<p class="note">{-limit:+.3g}<span class="ramp" style="background: linear-gradient(to right, {stops})">'
            f'</span>{limit:+.3g} · red for the class, blue against it (one scale for all classes)</p>')


def _cost(cost) -> str:
    if cost is None:
        return "cost not recorded"
    parts = [f"{cost.wall_seconds:.2f} s", f"{cost.forward_passes} forward passes"]
    if cost.backward_passes:
        parts.append(f"{cost.backward_passes} backward passes")
    parts += [f"{cost.cache_hits} cache hits", f"{cost.samples} samples"]
    return " · ".join(parts)


def _suffix(result) -> str:
    """What a caption adds to the class: the number a result type is read by (an anchor's precision, LIME's fit)."""
    if getattr(result, "empty", False):  # precision and coverage 100 % that say nothing
        return " · empty anchor (needs no region)"
    if getattr(result, "precision", None) is not None and hasattr(result, "coverage"):
        return f" · P {result.precision:.0%}, coverage {result.coverage:.0%}"
    if getattr(result, "score", None) is not None and hasattr(result, "intercept"):
        return f" · R² {result.score:.2f}"
    return ""


def _method_section(explanation: Explanation, method: str) -> str:
    from ..methods.base import method_class

    explainer = method_class(method)
    results = explanation.results.get(method) or {}
    head = f'<section class="method" id="method-{html.escape(method)}"><h2>{html.escape(explainer.label)}'
    head += f" · {html.escape(explainer.caption)}</h2>" if explainer.caption else "</h2>"
    body = [f'<p class="note">{html.escape(explainer.description)}</p>'] if explainer.description else []
    if drawable(explanation, method):
        limit = method_limit(explanation, method)
        figures = []
        for rank, score in enumerate(explanation.top, 1):
            if score.index in results:
                caption = f"{rank}. {score.name} ({score.probability:.1%}){_suffix(results[score.index])}"
                figures.append(f"<figure>{_img(figure(explanation, method, score.index, limit), caption, 'map')}"
                               f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        body.append(f'<div class="strip">{"".join(figures)}</div>')
        notes = [f"{rank}. {score.name}: {results[score.index].message}" for rank, score in enumerate(explanation.top, 1)
                 if getattr(results.get(score.index), "message", "")]  # an anchor's note (an empty one's why)
        body += [f'<p class="note anchor-note">{html.escape(n)}</p>' for n in notes]
        if on_scale(explanation, method):
            body.append(_ramp(limit))
    else:
        body.append('<p class="note">No picture for these results.</p>')
    body.append(f'<p class="note cost"><b>Cost:</b> {_cost(explanation.costs.get(method))}</p>')
    settings = explanation.settings.get(method)
    if settings:
        body.append(f"<details><summary>Settings</summary><code>{html.escape(canonical_json(settings))}</code>"
                    "</details>")
    return head + "".join(body) + "</section>"


def _faithfulness(explanation: Explanation) -> str:
    if not explanation.faithfulness:
        return ""
    rows = []
    for method, per_class in explanation.faithfulness.items():
        for rank, score in enumerate(explanation.top, 1):
            f = per_class.get(score.index)
            if f is None:
                continue
            deletion = "good" if f.deletion_auc < f.random_deletion_auc else "bad"
            insertion = "good" if f.insertion_auc > f.random_insertion_auc else "bad"
            rows.append(f"<tr><td>{html.escape(_label(method))}</td><td>{rank}. {html.escape(score.name)}</td>"
                        f"<td class='n {deletion}'>{_num(f.deletion_auc)}</td><td class='n'>{_num(f.random_deletion_auc)}</td>"
                        f"<td class='n {insertion}'>{_num(f.insertion_auc)}</td>"
                        f"<td class='n'>{_num(f.random_insertion_auc)}</td></tr>")
    settings = explanation.metric_settings.get("faithfulness", {})
    return ("<h3>Faithfulness</h3><p class='note'>Deletion AUC (lower is better) and insertion AUC (higher is better) "
            "of the class's probability as the method's top superpixels are hidden or revealed first, against "
            f"random orders; green where the method beats them. Settings: <code>{html.escape(canonical_json(settings))}"
            "</code></p><table class='faithfulness'><thead><tr><th>method</th><th>class</th><th>deletion</th>"
            "<th>random</th><th>insertion</th><th>random</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            + _curves(explanation))


def _curves(explanation: Explanation) -> str:
    """Every explained class's deletion and insertion curves, one small SVG figure per method."""
    blocks = []
    for rank, score in enumerate(explanation.classes, 1):
        plots = [curve_svg(_label(method), per_class[score.index])
                 for method, per_class in explanation.faithfulness.items() if score.index in per_class]
        if plots:
            named = f"{rank}. {score.name}" if rank <= len(explanation.top) else f"{score.name} (asked)"
            blocks.append(f"<h4>{html.escape(named)}</h4><div class='xp-curves'>{''.join(plots)}</div>")
    if not blocks:
        return ""
    return (f"<h3>Deletion and insertion curves</h3><p class='note'>The class's probability (y) as a fraction of "
            f"superpixels (x) is hidden or revealed. {CURVES_KEY}</p>" + "".join(blocks))


def _agreement(explanation: Explanation) -> str:
    parts = []
    for rank, score in enumerate(explanation.top, 1):
        agree = explanation.agreement.get(score.index)
        if agree is None or len(agree.methods) < 2:
            continue
        heads = "".join(f"<th>{html.escape(_label(m))}</th>" for m in agree.methods)
        body = []
        empty = [bool(getattr(explanation.results.get(m, {}).get(score.index), "empty", False)) for m in agree.methods]
        for i, a in enumerate(agree.methods):
            cells = "".join("<td>·</td>" if i == j else
                            "<td class='n'>– (empty anchor)</td>" if empty[i] or empty[j] else
                            f"<td class='n'>ρ {_num(float(agree.spearman[i, j]), '+.2f')} · "
                            f"IoU {_num(float(agree.iou[i, j]), '.2f')}</td>" for j in range(len(agree.methods)))
            body.append(f"<tr><th>{html.escape(_label(a))}</th>{cells}</tr>")
        parts.append(f"<p class='note'>{rank}. {html.escape(score.name)}</p><table class='agreement'><thead><tr><th></th>"
                     f"{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    if not parts:
        return ""
    k = next(iter(explanation.agreement.values())).k
    return (f"<h3>Agreement</h3><p class='note'>Spearman ρ of the scores and IoU of the top-{k} superpixels, per pair "
            "of methods.</p>" + "".join(parts))


def _stability(report) -> str:
    rows = []
    for method, per_class in report.results.items():
        for rank, score in enumerate(report.top, 1):
            s = per_class.get(score.index)
            if s is not None and getattr(s, "always_empty", False):
                rows.append(f"<tr><td>{html.escape(_label(method))}</td><td>{rank}. {html.escape(score.name)}</td>"
                            "<td colspan='4'>empty anchor in every run: nothing to compare</td>"
                            f"<td class='n'>{_num(s.lipschitz, '.2g')}</td></tr>")
            elif s is not None:
                rows.append(f"<tr><td>{html.escape(_label(method))}</td><td>{rank}. {html.escape(score.name)}</td>"
                            + "".join(f"<td class='n'>{_num(v, '.2f')}</td>" for v in
                                      (s.seed_jaccard, s.seed_spearman, s.noise_jaccard, s.noise_spearman))
                            + f"<td class='n'>{_num(s.lipschitz, '.2g')}</td></tr>")
    return (f"<h2>Stability</h2><p class='note'>{len(report.seeds)} seeds, {len(report.noise_distances)} noisy copies "
            f"(σ = {report.noise_sigma:g}); {report.forward_passes} forward passes in {report.seconds:.1f} s. "
            "Jaccard of the top superpixels and Spearman of the scores between runs (1 = identical); Lipschitz under "
            "noise (lower = steadier).</p><table class='stability'><thead><tr><th>method</th><th>class</th>"
            "<th>seed Jaccard</th><th>seed Spearman</th><th>noise Jaccard</th><th>noise Spearman</th><th>Lipschitz</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _sanity(check) -> str:
    heads = "".join(f"<th>{html.escape(stage)}</th>" for stage in check.stages)
    rows = "".join(f"<tr><td>{html.escape(_label(m))}</td>"
                   + "".join(f"<td class='n'>{_num(v, '+.2f')}</td>" for v in check.similarity[m])
                   + f"<td class='{'good' if check.passed[m] else 'bad'}'>{'passes' if check.passed[m] else 'FAILS'}</td>"
                   "</tr>" for m in check.methods)
    verdicts = "".join(f"<li>{html.escape(check.verdict(m))}</li>" for m in check.methods)
    return (f"<h2>Sanity check</h2><p class='note'>The model re-initialised from the head down; Spearman of each "
            f"stage's explanation of {html.escape(check.label.name)} with the trained one ({check.forward_passes} "
            f"forward passes in {check.seconds:.1f} s).</p><table class='sanity'><thead><tr><th>method</th>{heads}"
            f"<th>verdict</th></tr></thead><tbody>{rows}</tbody></table><ul class='note'>{verdicts}</ul>")


def _costs(costs: Mapping) -> str:
    rows = "".join(f"<tr><td>{html.escape(_label(name))}</td><td class='n'>{c.wall_seconds:.2f}</td>"
                   f"<td class='n'>{c.forward_passes}</td><td class='n'>{c.backward_passes}</td>"
                   f"<td class='n'>{c.cache_hits}</td><td class='n'>{c.samples}</td></tr>" for name, c in costs.items())
    total = sum(c.forward_passes for c in costs.values())
    return ("<h2>Cost</h2><table class='costs'><thead><tr><th>step</th><th>seconds</th><th>forward passes</th>"
            "<th>backward passes</th><th>cache hits</th><th>samples</th></tr></thead><tbody>" + rows
            + f"</tbody></table><p class='note'>{total} forward passes in all.</p>")


def report_html(explanation: Explanation, *, title: str = "", stability=None, sanity=None) -> str:
    """The report of ``explanation`` as one self-contained HTML document (a ``str``).

    ``title`` names the image (default: its model). ``stability`` (a ``StabilityReport``) and
    ``sanity`` (a ``SanityCheck``) are added when given; the trust metrics measured with the
    explanation (``explain(..., metrics=...)``, or stored) are always shown.
    """
    if not isinstance(explanation, Explanation):
        raise TypeError(f"report_html needs an Explanation, got {type(explanation).__name__}")
    name = title or "Explanation"
    seg = explanation.segmentation
    top_rows = "".join(
        f"<tr><td>{rank}</td><td>{html.escape(c.name)}</td><td class='n'>{c.index}</td>"
        f"<td class='n'>{c.probability:.2%}</td><td><span class='bar' style='width: {max(1, round(c.probability * 160))}px'>"
        "</span></td></tr>" for rank, c in enumerate(explanation.top, 1))
    methods = explanation.methods
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{html.escape(name)} · xai-panel report</title><style>{REPORT_CSS}</style></head><body>",
        f"<h1>{html.escape(name)}</h1>",
        f"<p class='meta'>Model <code>{html.escape(explanation.model_id)}</code> · seed {explanation.seed} · "
        f"{seg.n_segments} superpixels ({html.escape(seg.algorithm)}) · fill "
        f"{html.escape(str(explanation.settings.get('fill', '–')))} · methods: "
        f"{html.escape(', '.join(_label(m) for m in methods) or 'none')} · written by xai-panel {package_version()} on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>",
        f"<div class='top'><figure class='image'>{_img(explanation.image, name, 'image')}"
        "<figcaption>the image as the model saw it</figcaption></figure>"
        "<div><h2 style='margin-top:0'>Top classes</h2><table class='top-classes'><thead><tr><th>#</th><th>class</th>"
        f"<th>index</th><th>probability</th><th></th></tr></thead><tbody>{top_rows}</tbody></table></div></div>",
    ]
    for method, why in explanation.errors.items():
        parts.append(f"<p class='error'><b>{html.escape(_label(method))} failed:</b> {html.escape(why)}</p>")
    parts += [_method_section(explanation, m) for m in methods]
    trust = _faithfulness(explanation) + _agreement(explanation)
    if trust:
        parts.append("<h2>Trust</h2>" + trust)
    if stability is not None:
        parts.append(_stability(stability))
    if sanity is not None:
        parts.append(_sanity(sanity))
    if explanation.costs:
        parts.append(_costs(explanation.costs))
    parts.append("</body></html>")
    return "\n".join(parts)
