"""The trust metrics in the session and the trust pane: measured after the explanations, cached,
shown per method and class against chance."""

from __future__ import annotations

import numpy as np

from tests.components.conftest import QUICK
from tests.tiny_models import tiny_onnx
from xai_panel.components import ExplainerSettings, ExplanationSession
from xai_panel.components.panes.sanity import SanityPane
from xai_panel.components.panes.trust import TrustPane
from xai_panel.metrics.faithfulness import faithfulness
from xai_panel.runtime.cache import MemoryCache


def _session(**params) -> ExplanationSession:
    settings = ExplainerSettings.from_dict({"methods": ["lime", "shap", "anchors"], "segmentation": "slic",
                                            **QUICK, "anchors": {"coverage_samples": 200, "batch_size": 50}})
    params.setdefault("cache", MemoryCache())
    return ExplanationSession(settings=settings, top_k=2, **params)


def test_metrics_follow_the_explanations_and_the_pane_shows_them(photos, classifier):
    session = _session()
    events = []
    session.param.watch(lambda *es: events.extend((e.name, e.new) for e in es), ["explanation", "measuring", "status"])
    pane = TrustPane.from_session(session)
    session.source = photos["chelsea"]
    session.wait()
    res = session.explanation
    assert session.status == "done" and not session.measuring and session.metrics_error == ""
    # the explanations were published complete before any metric: measuring never delays them
    first_measured = next(i for i, (n, v) in enumerate(events) if n == "explanation" and v is not None and v.faithfulness)
    complete = [i for i, (n, v) in enumerate(events) if n == "explanation" and v is not None
                and set(v.methods) == {"lime", "shap", "anchors"} and not v.faithfulness]
    assert complete and complete[0] < first_measured
    assert set(res.faithfulness) == {"lime", "shap"} and set(res.agreement) == set(res.labels)
    assert res.metric_settings["faithfulness"]["steps"] == 10
    f = res.faithfulness["lime"][res.labels[0]]
    assert len(f.hidden) == 11 and f.deletion[0] == f.insertion[-1]
    # the same numbers as the library's, measured afresh
    again = faithfulness(res, classifier, ["lime"], steps=10, rise_labels=())
    np.testing.assert_allclose(again["lime"][res.labels[0]].deletion, f.deletion, atol=1e-6)
    assert res.costs["faithfulness"].forward_passes > 0 and session.timings["trust"] >= session.timings["done"]
    table = pane.table_html()
    assert "lower is better" in table and "higher is better" in table
    assert f"{f.deletion_auc:.3f}" in table and f"{f.random_deletion_auc:.3f}" in table
    assert table.count("<tr class=") == 4  # 2 ranked methods x 2 classes
    matrix = pane.agreement_html()
    rho = res.agreement[res.labels[0]].pair("lime", "shap")["spearman"]
    assert f"ρ {rho:+.2f}" in matrix and "in top-5" in matrix
    figures = svg_curves(pane.curves())
    assert list(figures) == ["LIME", "SHAP"]  # a plot per ranked method
    # another class selected: its curves (deletion, insertion solid; their random baselines dashed)
    pane.selected = res.labels[1]
    f1 = res.faithfulness["lime"][res.labels[1]]
    lines = svg_curves(pane.curves())["LIME"]
    assert [dashed for dashed, _ in lines] == [True, True, False, False]
    for (_, (x, y)), want in zip(lines, (f1.random_deletion, f1.random_insertion, f1.deletion, f1.insertion)):
        np.testing.assert_allclose(x, f1.x, atol=0.01)
        np.testing.assert_allclose(y, want, atol=0.01)
    # the same image again: cached with its metrics, no pass at all
    before = classifier.forward_passes
    session.source = photos["coffee"]
    session.wait()
    session.source = photos["chelsea"]
    session.wait()
    assert session.from_cache and session.explanation.faithfulness and not session.measuring
    assert classifier.forward_passes - before > 0  # the coffee was explained...
    before = classifier.forward_passes
    session.source = photos["chelsea"]
    session.refresh()
    session.wait()
    assert classifier.forward_passes == before  # ...the cat's explanation and metrics came from the cache


def test_a_cached_explanation_without_metrics_is_measured_in_the_compute_lane(photos):
    cache = MemoryCache()
    session = _session(cache=cache, metrics=[])
    session.source = photos["chelsea"]
    session.wait()
    assert not session.explanation.faithfulness and not session.explanation.agreement
    session.metrics = ["faithfulness", "agreement"]
    session.wait()
    assert session.from_cache and set(session.explanation.faithfulness) == {"lime", "shap"}


def test_a_cached_explanation_is_measured_once_the_page_has_it(photos, classifier):
    """The metrics of an explanation shown from the cache (a revisit) wait until no visitor's
    job runs and no page is being drawn: their passes took the cores from the revisit itself."""
    import time

    from xai_panel.runtime.jobs import foreground

    session = _session(cache=MemoryCache(), metrics=[])
    session.source = photos["chelsea"]
    session.wait()
    release = foreground.hold(60)  # as a page being sent and drawn does
    try:
        before = classifier.forward_passes
        session.metrics = ["faithfulness", "agreement"]
        time.sleep(1.5)
        assert session.from_cache and session.measuring  # it says it will measure...
        assert classifier.forward_passes == before and not session.explanation.faithfulness  # ...but waits
    finally:
        release()
    session.wait()
    assert set(session.explanation.faithfulness) == {"lime", "shap"} and not session.measuring
    assert classifier.forward_passes > before


def test_bad_metric_settings_are_reported_and_the_explanations_stay(photos):
    session = _session(metric_settings={"steps": 0})
    pane = TrustPane.from_session(session)
    session.source = photos["chelsea"]
    session.wait()
    assert session.status == "done" and set(session.explanation.methods) == {"lime", "shap", "anchors"}
    assert "steps must be None" in session.metrics_error and not session.explanation.faithfulness
    assert "could not be measured" in pane.table_html() and "steps must be None" in pane.table_html()


# -- the sanity check, on request ----------------------------------------------------------------
def svg_curves(markup: str) -> dict[str, list[tuple[bool, tuple[np.ndarray, np.ndarray]]]]:
    """Per figure (its method), each polyline: dashed or not, and its points mapped back to [0, 1] x [0, 1]."""
    import re
    import xml.etree.ElementTree as ET

    from xai_panel.render import curves as trust  # the figures the pane draws

    out = {}
    for fig in re.findall(r"<figure class='xp-curve'.*?</figure>", markup):
        root = ET.fromstring(fig)
        lines = []
        for line in root.iter("polyline"):
            pts = np.array([p.split(",") for p in line.get("points").split()], float)
            x = (pts[:, 0] - trust._LEFT) / (trust._W - trust._LEFT - trust._RIGHT)
            y = (1 - (pts[:, 1] - trust._TOP) / (trust._H - trust._TOP - trust._BOTTOM)) * 1.02
            lines.append((line.get("stroke-dasharray") is not None, (x, y)))
        out[root.get("data-method")] = lines
    return out


def _curves(overlay) -> dict[str, np.ndarray]:
    return {c.label: c.dimension_values(1) for c in overlay if type(c).__name__ == "Curve"}


def test_the_sanity_check_runs_on_request_and_draws_a_line_per_method(photos, classifier):
    session = _session(metrics=[])
    pane = TrustPane.from_session(session)
    sanity = pane.sanity
    session.source = photos["chelsea"]
    session.wait()
    assert sanity.check is None and sanity.status == "idle" and "Adebayo" in sanity.verdict_html()
    seen = []
    sanity.param.watch(lambda e: seen.append(e.new), "progress")
    sanity.param.update(stages=2, samples=20)
    before = classifier.forward_passes
    assert sanity.compute() is not None
    sanity.wait()
    check = sanity.check
    assert sanity.status == "done" and sanity.error == "" and not sanity.from_cache
    assert check.methods == ("lime", "shap")  # the anchor is a set, not scores: not compared
    assert check.stages == ("_fc", "_conv_stem") and check.label.index == session.explanation.labels[0]
    assert check.settings["lime"]["num_samples"] == 20 and check.settings["shap"]["estimator"] == "pool"
    assert 0 < seen[0] < 1 and seen[-1] == 1.0  # progress after each explanation
    curves = _curves(sanity.plot())
    assert set(curves) == {"LIME", "SHAP"}
    np.testing.assert_allclose(curves["LIME"], [1.0, *check.similarity["lime"]])
    verdict = sanity.verdict_html()
    for method, label in (("lime", "LIME"), ("shap", "SHAP")):
        word = "passes" if check.passed[method] else "fails"
        assert f"{label} {word}</b>: ρ {check.similarity[method][-1]:+.2f}" in verdict
    assert f"{check.forward_passes} forward passes" in verdict and classifier.forward_passes > before
    # asked again: from the cache, no pass
    before = classifier.forward_passes
    assert sanity.compute() is None
    assert sanity.check is check and sanity.from_cache and classifier.forward_passes == before
    assert "(from cache)" in sanity.verdict_html()
    # a new image: the check is dropped
    session.source = photos["coffee"]
    session.wait()
    assert sanity.check is None and sanity.status == "idle"


def test_a_new_image_cancels_a_running_sanity_check(photos):
    sanity = SanityPane(image=photos["chelsea"], requested="chelsea", settings=ExplainerSettings.from_dict(
        {"methods": ["lime"], "segmentation": "slic"}), stages=3, samples=400)
    job = sanity.compute()
    assert sanity.status == "running"
    sanity.requested = "rocket"  # the session names a new image before it is decoded: the check stops at once
    assert job.cancelled and sanity.status == "idle"
    sanity.wait()
    assert sanity.check is None and sanity.status == "idle"
    job = sanity.compute()
    sanity.cancel()
    assert job.cancelled and sanity.status == "cancelled" and "cancelled" in sanity.verdict_html()
    sanity.wait()
    assert sanity.check is None


def test_sanity_check_errors_are_shown_in_the_pane(photos, tmp_path):

    sanity = SanityPane(image=photos["chelsea"], settings=ExplainerSettings.from_dict({"methods": ["anchors"]}))
    # only an anchor asked for: nothing with scores to compare
    assert sanity.compute() is None
    assert sanity.status == "error" and "compares per-superpixel scores" in sanity.error
    assert "could not run" in sanity.verdict_html()
    assert TrustPane(sanity=sanity).sanity is sanity
    # a model given as an ONNX file has no weights to re-initialise

    path = tiny_onnx(tmp_path / "tiny.onnx")
    sanity.param.update(model=str(path), settings=ExplainerSettings.from_dict({"methods": ["lime"]}))
    sanity.image = photos["chelsea"]  # the model change reset the pane
    sanity.compute()
    sanity.wait()
    assert sanity.status == "error" and "needs a torch model" in sanity.error
    assert "needs a torch model" in sanity.verdict_html() and sanity.check is None
