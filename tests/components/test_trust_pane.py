"""The trust metrics in the session and the trust pane: measured after the explanations, cached,
shown per method and class against chance."""

from __future__ import annotations

import numpy as np

from tests.components.conftest import QUICK
from xai_panel.components import ExplainerSettings, ExplanationSession
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
    layout = pane.curves()
    assert len(layout) == 2  # a plot per ranked method
    # another class selected: its curves
    pane.selected = res.labels[1]
    curves = pane.curves()
    (deletion,) = [c for c in curves.values()[0] if c.label.startswith("deletion")]
    np.testing.assert_allclose(deletion.dimension_values(1), res.faithfulness["lime"][res.labels[1]].deletion)
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


def test_bad_metric_settings_are_reported_and_the_explanations_stay(photos):
    session = _session(metric_settings={"steps": 0})
    pane = TrustPane.from_session(session)
    session.source = photos["chelsea"]
    session.wait()
    assert session.status == "done" and set(session.explanation.methods) == {"lime", "shap", "anchors"}
    assert "steps must be None" in session.metrics_error and not session.explanation.faithfulness
    assert "could not be measured" in pane.table_html() and "steps must be None" in pane.table_html()
