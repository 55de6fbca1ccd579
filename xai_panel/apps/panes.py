"""The cards both dashboards show under the prediction: one per registered method, then cost
trust, and stability. A method's card is shown while the settings request it."""

from __future__ import annotations

import panel as pn

from ..components.panes.base import method_pane
from ..components.panes.inspection import InspectionPane
from ..components.panes.stability import StabilityPane
from ..components.panes.timing import TimingPane
from ..components.panes.trust import TrustPane
from ..methods.base import method_class
from .frame import lazy_card

__all__ = ["explanation_cards", "CARD"]

CARD = dict(sizing_mode="stretch_width", margin=(6, 6), collapsible=False)


def _requested(request: dict, method: str) -> bool:
    return method in request.get("methods", ())


def explanation_cards(session, settings, inspect) -> list:
    """A card per registered method (its pane), the HoloViews inspection (built when opened),
    then the trust, cost and stability cards."""
    cards = []
    for method in settings.param.methods.objects:  # every registered method, in display order
        pane = method_pane(session, method, inspect=inspect)
        if pane is None:  # results no pane can draw: said once, in the log of the page build
            continue
        explainer = method_class(method)
        title = f"{explainer.label} · {explainer.caption}" if explainer.caption else explainer.label
        cards.append(pn.Card(pane, title=title, css_classes=[f"xp-card-{method}"],
                             visible=pn.bind(_requested, settings.param.request, method), **CARD))
    cards.append(lazy_card(InspectionPane.from_session(session, inspect=inspect),
                           "Inspect · the score and superpixel under the cursor, maps zoomed together",
                           css_classes=["xp-card-inspect"], sizing_mode="stretch_width", margin=(6, 6)))
    cards.append(pn.Card(TrustPane.from_session(session, inspect=inspect),
                         title="Trust · faithfulness (deletion, insertion), agreement, sanity check",
                         css_classes=["xp-card-trust"], **CARD))
    timing = TimingPane.from_session(session)
    stability = StabilityPane.from_session(session, inspect=inspect)
    cards.append(pn.Row(
        pn.Card(timing, title="Cost · wall time, forward and backward passes, cache hits", **CARD),
        pn.Card(stability, title="Stability · seeds and input noise", **CARD),
        sizing_mode="stretch_width",
    ))
    return cards
