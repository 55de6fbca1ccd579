"""The HoloViews inspection view: scores and superpixel ids under the cursor, shared axes."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from xai_panel.components.panes.inspection import InspectionPane, inspection_plot
from xai_panel.render.overlays import score_map, symmetric_limit

from .test_model_upload import RGB, rgb_model


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """LIME and SHAP of the three-class model on a small image (a 3x3 grid): seconds."""
    from xai_panel.engine.pipeline import explain
    from xai_panel.models import load_classifier

    path = tmp_path_factory.mktemp("inspect") / "rgb.pt"
    rgb_model(path)
    clf = load_classifier(path, class_names=RGB, preprocessing={"mean": (0.5,) * 3, "std": (0.5,) * 3,
                                                                "input_size": 48}, backend="torch", cache=False)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    image[:16, :, 0] = 250  # a red band at the top: a superpixel row that matters to 'red'
    return explain(image, clf, methods=("lime", "shap"), top_k=2, segmentation="grid",
                   segmentation_params={"rows": 3, "cols": 3}, settings={"lime": {"num_samples": 60}})


def test_the_plot_reads_each_methods_score_and_superpixel_at_a_pixel(explained):
    label = explained.top[0].index
    layout = inspection_plot(explained, label)
    assert [o.opts.get().kwargs["title"] for o in layout] == ["LIME", "SHAP"]
    segments = explained.segmentation.labels
    h, w = segments.shape
    for method, overlay in zip(("lime", "shap"), layout):
        scores = overlay.Image.I
        want = score_map(segments, explained.results[method][label])
        for row, col in [(2, 3), (20, 40), (47, 0)]:
            x, y = col + 0.5, h - row - 0.5  # what the hover reads at that pixel (y up)
            point = scores[x, y]  # both values at that pixel
            assert point.dimension_values("score")[0] == pytest.approx(want[row, col])
            assert int(point.dimension_values("superpixel")[0]) == segments[row, col]
        limit = symmetric_limit(score_map(segments, r) for r in explained.results[method].values())
        assert scores.opts.get().kwargs["clim"] == (-limit, limit)  # the method's own, symmetric scale


def test_the_maps_share_their_axes_and_hover(explained):
    fig = hv.render(inspection_plot(explained, explained.top[1].index))
    plots = [child[0] if isinstance(child, tuple) else child for child in fig.children]
    plots = [p for p in plots if hasattr(p, "x_range")]
    assert len(plots) == 2
    assert plots[0].x_range is plots[1].x_range and plots[0].y_range is plots[1].y_range
    for plot in plots:
        hover = [t for t in plot.tools if type(t).__name__ == "HoverTool"]
        assert hover and ("superpixel", "@{superpixel}") in hover[0].tooltips


def test_the_pane_inspects_the_selected_class_or_the_top_one(explained):
    pane = InspectionPane(explanation=explained, selected=explained.top[1].index)
    assert pane.label() == explained.top[1].index
    pane.selected = 999  # not explained: the top class
    assert pane.label() == explained.top[0].index
    empty = InspectionPane()
    empty.__panel__()
    assert "Explain an image" in empty._caption.object and not empty._plot.visible
    # Drawn only once on the page, and again only when what it shows changes.
    pane.__panel__()
    first = pane._plot.object
    assert first is not None and pane._plot.visible
    pane.explanation = explained.with_results()  # same results (say, trust metrics were added)
    assert pane._plot.object is first
    pane.selected = explained.top[1].index
    assert pane._plot.object is not first
