"""The gradients pane: a map per class on one scale per method, superpixel means on request,
IG's completeness in the captions, a note (not a failure) for a model without gradients;
the timing pane counts backward passes."""

from __future__ import annotations

import numpy as np
import pytest

import xai_panel as xp
from xai_panel.components import GradientPane, TimingPane, pane_class
from xai_panel.engine.results import paint
from xai_panel.models import load_classifier

from ..methods.test_gradients import PREP, SIZE, TinyCnn


@pytest.fixture(scope="module")
def explanation():
    tiny = load_classifier(TinyCnn(), class_names=["a", "b", "c"], backend="torch", preprocessing=PREP, cache=False)
    image = np.random.RandomState(5).randint(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    return xp.explain(image, tiny, methods=("gradcam", "integrated_gradients", "lime"), top_k=3,
                      segmentation="grid", segmentation_params={"rows": 2, "cols": 2},
                      settings={"integrated_gradients": {"steps": 16}, "lime": {"num_samples": 20}})


def test_every_gradient_method_is_drawn_by_the_gradients_pane():
    assert {pane_class(m) for m in ("gradcam", "integrated_gradients", "smoothgrad")} == {GradientPane}


def test_the_pane_shows_each_classs_map_on_one_scale_and_the_superpixel_means(explanation):
    pane = GradientPane(method="gradcam", explanation=explanation, slots=3)
    tiles = pane.tiles()
    for (caption, shown), label in zip(tiles, explanation.labels):
        result = explanation.gradcam[label]
        np.testing.assert_array_equal(shown, result.heatmap)
        assert caption.endswith(f"· max {float(result.heatmap.max()):.2g}")
    assert pane.limit() == pytest.approx(max(float(r.heatmap.max()) for r in explanation.gradcam.values()))
    html = pane.html()
    assert html.count("data:image/jpeg") == 3 and "Grad-CAM attribution" in html
    pane.view = "superpixels"
    caption, shown = pane.tiles()[0]
    np.testing.assert_array_equal(shown, paint(explanation.segmentation.labels,
                                               explanation.gradcam[explanation.labels[0]].values))
    assert pane.limit() <= max(float(r.heatmap.max()) for r in explanation.gradcam.values())


def test_integrated_gradients_captions_give_its_completeness(explanation):
    pane = GradientPane(method="integrated_gradients", explanation=explanation, slots=3)
    label = explanation.labels[0]
    r = explanation.integrated_gradients[label]
    assert pane.tiles()[0][0].endswith(f"· Σ {float(np.sum(r.heatmap)):+.2f} (δ {r.delta:+.2f})")


def test_a_model_without_gradients_gets_a_note_and_a_real_failure_stays_a_failure(explanation):
    pane = GradientPane(method="gradcam", explanation=explanation, slots=3)
    note = pane._state(explanation, False, "ModelError: Grad-CAM needs a torch model: 'x@1' was loaded from an ONNX file")
    assert 'class="xp-note xp-gradcam-note"' in note and note.count("Grad-CAM needs a torch model") == 1
    assert "failed" not in note
    failure = pane._state(explanation, False, "RuntimeError: out of memory")
    assert "xp-error" in failure and "Grad-CAM failed" in failure


def test_the_timing_pane_counts_forward_and_backward_passes(explanation):
    rows = {r["method"]: r for r in TimingPane.rows(explanation)}
    assert rows["gradcam"]["backward_passes"] == 3 and rows["gradcam"]["forward_passes"] >= 1
    assert rows["integrated_gradients"]["backward_passes"] == 3 * 16 and rows["lime"]["backward_passes"] == 0
    table = TimingPane(explanation=explanation)._table(explanation, {}, False)
    assert "<th>backward passes</th>" in table and "<td>48</td>" in table


def test_another_explanation_of_the_same_classes_gets_its_own_scale(explanation):
    """Two images with the same top classes (the label grid draws a label's images one after the
    other with one pane): the scale follows the new results, compared by identity, not by value."""
    from dataclasses import replace

    doubled = {label: replace(r, heatmap=r.heatmap * 2) for label, r in explanation.gradcam.items()}
    other = replace(explanation, results={**explanation.results, "gradcam": doubled})
    pane = GradientPane(method="gradcam", explanation=explanation, slots=3)
    first = pane.limit(explanation)
    assert pane.limit(other) == pytest.approx(2 * first)
    assert pane.limit(explanation) == pytest.approx(first)
