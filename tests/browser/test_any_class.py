"""Any class in the served gallery: "why not <true label>?", the class picker, a bad name.

ROCKET is labelled goldfish on purpose (tests/served.py): goldfish is nowhere near the top-5
of a rocket photo, so the gallery offers "Why not goldfish?" as soon as the top classes show.
"""

from __future__ import annotations

import re

import pytest

from ..served import ROCKET
from .test_dashboards import ANCHOR_TITLE, LIME_TITLE, SHAP_TITLE, labels, open_gallery, top_buttons, wait_labels

pytestmark = pytest.mark.browser


def test_why_not_and_a_picked_class_get_their_panes(page, served_app):
    open_gallery(page, served_app.url)
    page.locator(f".xp-thumb[data-id='{ROCKET}']").click()
    top_buttons(page).nth(4).wait_for()
    why_not = page.get_by_role("button", name="Why not goldfish?")
    why_not.wait_for()
    why_not.click()
    for title in (LIME_TITLE, ANCHOR_TITLE, SHAP_TITLE):  # every method's pane, a tile for the asked class
        wait_labels(page, title, contains="goldfish (asked)", count=1)
    wait_labels(page, LIME_TITLE, count=6)  # beside the top-5, still shown
    assert page.get_by_role("button", name="Why not goldfish?").count() == 0
    # the class list offers it after the top-5; clicking it inspects it (its tiles framed, marked ▶)
    asked = page.get_by_role("button", name=re.compile(r"^asked: goldfish · \d+\.\d%"))
    asked.click()
    wait_labels(page, LIME_TITLE, count=1, contains="▶ goldfish (asked)")

    picker = page.locator(".xp-class-picker input")
    picker.fill("no such class")
    picker.press("Enter")
    page.get_by_text(re.compile(r"unknown class 'no such class'")).wait_for()
    picker.fill("Tiger Shark")  # any case
    picker.press("Enter")
    for title in (LIME_TITLE, ANCHOR_TITLE, SHAP_TITLE):
        wait_labels(page, title, contains="tiger shark (asked)", count=1)
    shown = labels(page)
    assert any(t.startswith("goldfish (asked)") for t in shown)  # the first class asked stays
    assert sum(bool(LIME_TITLE.search(t)) for t in shown) >= 7
