"""The class picker and the "why not <true label>?" button, with the real session and model.

The sample's otterhound is ranked 7th by the embedded model (it says Norfolk terrier), so its
true label is outside the top-5: the button is offered, and asking explains it with every
requested method beside the top-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from xai_panel.components import ClassPicker, ExplainerSettings, ExplanationSession, MemoryCache, TopClasses
from xai_panel.components.panes.base import method_pane
from xai_panel.components.panes.inspection import InspectionPane
from xai_panel.data import open_dataset

TINY = {"lime": {"num_samples": 60},
        "anchors": {"batch_size": 10, "coverage_samples": 100, "n_examples": 1, "max_anchor_size": 2, "regions": 6}}


@pytest.fixture(scope="module")
def sample(shared_sample):
    return open_dataset(shared_sample)


def make(sample):
    settings = ExplainerSettings(settings=TINY, methods=["lime", "anchors"], segmentation="slic")
    session = ExplanationSession(settings=settings, cache=MemoryCache(), metrics=[])
    record = sample.get("n02091635_otterhound.JPEG")
    picker = ClassPicker(session=session, true_label=record.label)
    return session, picker, record


def test_why_not_the_true_label_adds_it_to_every_pane(sample, classifier):
    session, picker, record = make(sample)
    top_classes = TopClasses.from_session(session, true_label=record.label)
    lime_pane = method_pane(session, "lime", inspect=top_classes)
    anchor_pane = method_pane(session, "anchors")
    inspection = InspectionPane.from_session(session, inspect=top_classes)
    assert picker.why_not is None and not picker._button.visible  # no image yet
    session.source = record
    session.wait()
    assert session.status == "done" and record.label not in [c.index for c in session.top]
    assert picker.why_not == record.label == classifier.class_names.index("otterhound")
    assert picker._button.visible and picker._button.name == "Why not otterhound?"
    before = session.explanation
    top = before.top[0].index

    published = []
    session.param.watch(lambda event: published.append(event.new), "explanation")
    picker._button.clicks += 1  # the button, pressed
    assert session.labels == [record.label]
    session.wait()
    result = session.explanation
    assert session.status == "done" and session.error == ""
    assert [c.name for c in result.asked] == ["otterhound"] and result.top == before.top
    for method in ("lime", "anchors"):
        assert set(result.results[method]) == {*before.labels, record.label}
    np.testing.assert_array_equal(result.lime[top].weights, before.lime[top].weights)
    # while the class was explained, the panes kept the top-5's results (never cleared)
    assert published and all(e is not None and e.lime.get(top) is not None for e in published)
    assert published[0].asked == result.asked  # its tile appears at once, waiting for its result
    # the panes show it after the top-5, as an asked class
    captions = [caption for caption, _ in lime_pane.tiles()]
    assert len(captions) == 6 and captions[5].startswith("otterhound (asked)")
    assert "otterhound (asked)" in lime_pane.html()
    assert "outside the top 5" in anchor_pane._table(anchor_pane.shown)
    # asked: no button any more; the page offers to go back to the top classes only
    assert picker.why_not is None and not picker._button.visible and picker._clear.visible
    # the class list offers it after the top-5, and it can be inspected like them
    options = top_classes._list.options
    assert list(options)[5] == f"asked: otterhound · {result.asked[0].probability:.1%} ✓", list(options)
    assert top_classes.selected == top
    top_classes._list.value = record.label  # its button, clicked
    assert top_classes.selected == lime_pane.selected == inspection.selected == record.label
    assert inspection.label() == record.label  # the HoloViews inspection draws its maps
    assert [caption for caption, _ in lime_pane.tiles()][5].startswith("▶ otterhound (asked)")
    with pytest.raises(ValueError, match="nor the asked ones"):
        top_classes.select(0)  # tench: neither in the top-5 nor asked


def test_the_picker_adds_any_class_and_explains_a_bad_name(sample, classifier):
    session, picker, record = make(sample)
    session.source = record
    session.wait()
    tabby = classifier.class_names.index("tabby")
    assert "tabby" in picker._input.options and picker._input.min_characters == 2
    assert not picker._input.case_sensitive
    assert "crane (134)" in picker._input.options  # a name two classes share is offered per class
    picker._input.value = "Tabby"  # typed, any case
    assert session.labels == [tabby] and picker._input.value == ""
    session.wait()
    assert [c.index for c in session.explanation.asked] == [tabby]
    assert set(session.explanation.lime) == {*(c.index for c in session.top), tabby}

    shown = session.explanation
    picker._input.value = "otterhund"
    assert "unknown class 'otterhund'" in picker.message and "did you mean 'otterhound'" in picker.message
    assert "unknown class" in picker._note.object
    assert session.labels == [tabby] and session.explanation is shown and session.status == "done"
    with pytest.raises(ValueError, match="out of range"):
        session.ask(5000)
    assert picker.pick("crane (517)") == 517  # the picker's own spelling of a shared name

    session.cancel()
    picker._clear.clicks += 1
    assert session.labels == []


def test_another_image_starts_from_its_top_classes(sample):
    session, picker, record = make(sample)
    session.labels = [record.label]
    session.source = record
    session.wait()
    assert [c.index for c in session.explanation.asked] == [record.label]  # asked before the image: kept
    options = picker._input.options
    assert len(options) == 1000
    session.source = sample.get("n02123045_tabby.JPEG")
    assert session.labels == []
    session.wait()
    assert session.explanation.asked == ()
    # the same model: its 1,000 options are not set anew on every image (0.1-0.25 s of a click)
    assert picker._input.options is options
