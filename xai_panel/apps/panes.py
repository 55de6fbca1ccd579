"""The cards both dashboards show under the prediction: one per registered method, then trust,
the downloads, cost and stability. A method's card is shown while the settings request it, with a
download of its picture."""

from __future__ import annotations

import panel as pn

from ..components.panes.base import method_pane, pane_class
from ..components.panes.inspection import InspectionPane
from ..components.panes.stability import StabilityPane
from ..components.panes.timing import TimingPane
from ..components.panes.trust import TrustPane
from ..components.widgets.export import ExportButtons, picture_download
from ..methods.base import method_class
from .frame import lazy_card

__all__ = ["explanation_cards", "method_cards", "report_cards", "CARD"]

CARD = dict(sizing_mode="stretch_width", margin=(6, 6), collapsible=False)


def _requested(request: dict, method: str) -> bool:
    return method in request.get("methods", ())


def explanation_cards(session, settings, inspect) -> list:
    """A card per registered method (its pane and its picture's download), the HoloViews
    inspection (built when opened), then the trust, export, cost and stability cards."""
    cards, panes = method_cards(session, settings, inspect)
    return cards + report_cards(session, inspect, panes)


def method_cards(session, settings, inspect) -> tuple[list, list]:
    """(cards, panes): a card per registered method whose results a pane can draw, shown while
    the settings request the method, with its picture's download.

    A card whose method is not requested when the page is built gets its pane when the settings
    first request it: building the panes of the three methods the dashboards do not tick was
    about 0.3 s of the event loop right after a gallery page loaded, where a first click waits.
    ``panes`` holds the panes built so far, in display order (the export reads it when used).
    """
    cards, panes, order = [], [], {}
    for method in settings.param.methods.objects:  # every registered method, in display order
        cls = pane_class(method)
        if cls is None:  # results no pane can draw: said once, in the log of the page build
            continue
        explainer = method_class(method)
        order[method] = len(order)
        title = f"{explainer.label} · {explainer.caption}" if explainer.caption else explainer.label
        card = pn.Card(title=title, css_classes=[f"xp-card-{method}"],
                       visible=pn.bind(_requested, settings.param.request, method), **CARD)

        def fill(*_events, card=card, method=method):
            if card.objects or not card.visible:
                return
            pane = method_pane(session, method, inspect=inspect)
            panes.insert(sum(order[p.method] < order[method] for p in panes), pane)
            card.objects = [pane, picture_download(pane, lambda: session.image_name)]

        fill()
        card.param.watch(fill, "visible")
        cards.append(card)
    return cards, panes


def report_cards(session, inspect, panes: list) -> list:
    """The cards below the methods': the inspection (built when opened), trust, export (of
    ``panes``' pictures among the rest), cost and stability."""
    cards = []
    cards.append(lazy_card(InspectionPane.from_session(session, inspect=inspect),
                           "Inspect · the score and superpixel under the cursor, maps zoomed together",
                           css_classes=["xp-card-inspect"], sizing_mode="stretch_width", margin=(6, 6)))
    trust = TrustPane.from_session(session, inspect=inspect)
    cards.append(pn.Card(trust, title="Trust · faithfulness (deletion, insertion), agreement, sanity check",
                         css_classes=["xp-card-trust"], **CARD))
    timing = TimingPane.from_session(session)
    stability = StabilityPane.from_session(session, inspect=inspect)
    downloads = ExportButtons.from_session(session, panes=panes, stability=stability.param.report,
                                           sanity=trust.sanity.param.check)
    cards.append(pn.Card(downloads, title="Export · figures, numbers, report", css_classes=["xp-card-export"],
                         **CARD))
    cards.append(pn.Row(
        pn.Card(timing, title="Cost · wall time, forward and backward passes, cache hits", **CARD),
        pn.Card(stability, title="Stability · seeds and input noise", **CARD),
        sizing_mode="stretch_width",
    ))
    return cards
