"""Linked components: a selection in the gallery moves the session and every pane."""

from __future__ import annotations

from xai_panel.components import (
    ExplainerSettings,
    ExplanationSession,
    Gallery,
    LimePane,
    MemoryCache,
    ShapPane,
    TimingPane,
    TopClasses,
)
from xai_panel.data import open_dataset

from .conftest import QUICK, wait_until


def test_a_click_in_the_gallery_moves_every_pane(folder):
    gallery = Gallery(dataset=open_dataset(folder), predict=False)
    settings = ExplainerSettings(settings=QUICK, methods=["lime", "shap"], segmentation="slic")
    session = ExplanationSession(source=gallery.param.selected_record, settings=settings, cache=MemoryCache(),
                                   metrics=[])
    top = TopClasses.from_session(session)
    lime = LimePane.from_session(session, inspect=top)
    shap = ShapPane.from_session(session, inspect=top)
    timing = TimingPane.from_session(session)

    busy = []
    lime.param.watch(lambda e: busy.append(e.new), "busy")
    gallery._grid._handle_msg({"id": "coffee/c.png"})  # what a click on a card sends
    session.wait()
    assert session.image_name == "coffee/c.png"
    assert top.top == session.top and top.selected == session.top[0].index
    assert lime.explanation is session.explanation and shap.explanation is session.explanation
    assert timing.explanation is session.explanation and timing.timings == session.timings
    assert busy[0] is True and busy[-1] is False and lime.error == ""
    assert lime.selected == top.selected

    top.select(session.top[2].index)  # inspect another class: the panes follow
    assert lime.selected == shap.selected == session.top[2].index
    assert lime.tiles()[2][0].startswith("▶ 3.")

    gallery._grid._handle_msg({"id": "loose.png"})
    session.wait()
    assert wait_until(lambda: lime.explanation is session.explanation and session.image_name == "loose.png")
    assert top.selected == session.top[0].index
