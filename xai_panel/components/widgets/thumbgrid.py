"""A grid of clickable thumbnail cards: one browser-side component for a whole page.

One model carrying a list of small data-URI thumbnails renders a page of cards much
faster than dozens of separate widgets, and each card is a real ``<button>`` (with the
record id in ``data-id`` and the caption as its accessible name), so keyboards, screen
readers and Playwright can all find and press it.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent

__all__ = ["ThumbnailGrid"]


class ThumbnailGrid(JSComponent):
    """Cards ``{id, src, caption, badge, status, tooltip}`` (and an optional ``detail`` line under the
    badge); a click sets ``clicked`` (an event)."""

    items = param.List(default=[], doc=(
        "Cards to show: dicts with id, src, caption, badge, status, tooltip and optionally detail."))
    selected = param.String(default="", doc="Id of the card drawn as selected.")
    size = param.Integer(default=112, bounds=(48, 320), doc="Thumbnail side in CSS pixels.")
    empty_text = param.String(default="No images.", doc="Shown when there are no cards.")
    clicked = param.String(default="", doc="Id of the card clicked last (re-sent on every click).")

    _esm = """
    export function render({ model, el }) {
      const grid = document.createElement("div");
      grid.className = "xp-grid";
      function mark() {
        for (const card of grid.querySelectorAll(".xp-thumb")) {
          card.classList.toggle("selected", card.dataset.id === model.selected);
          card.setAttribute("aria-pressed", card.dataset.id === model.selected ? "true" : "false");
        }
      }
      function draw() {
        grid.style.setProperty("--xp-size", model.size + "px");
        const cards = [];
        if (!model.items.length) {
          const empty = document.createElement("div");
          empty.className = "xp-empty";
          empty.textContent = model.empty_text;
          cards.push(empty);
        }
        for (const item of model.items) {
          const card = document.createElement("button");
          card.type = "button";
          card.className = "xp-thumb";
          card.dataset.id = item.id;
          card.dataset.status = item.status || "unknown";
          card.title = item.tooltip || item.caption;
          card.setAttribute("aria-label", item.caption);
          const img = document.createElement("img");
          img.src = item.src;
          img.alt = item.caption;
          img.width = model.size;
          img.height = model.size;
          const caption = document.createElement("div");
          caption.className = "xp-caption";
          caption.textContent = item.caption;
          card.append(img, caption);
          if (item.badge) {
            const badge = document.createElement("div");
            badge.className = "xp-badge " + (item.status || "unknown");
            badge.textContent = item.badge;
            card.append(badge);
          }
          if (item.detail) {
            const detail = document.createElement("div");
            detail.className = "xp-detail";
            detail.textContent = item.detail;
            card.append(detail);
          }
          card.addEventListener("click", () => {
            model.send_msg({ id: item.id });
          });
          cards.push(card);
        }
        grid.replaceChildren(...cards);
        mark();
      }
      draw();
      model.on("items", draw);
      model.on("size", draw);
      model.on("selected", mark);
      return grid;
    }
    """

    _stylesheets = ["""
    .xp-grid {
      display: grid;
      grid-template-columns: repeat(auto-fill, minmax(calc(var(--xp-size) + 12px), 1fr));
      gap: 10px;
      padding: 4px;
      font-family: var(--body-font, system-ui, sans-serif);
    }
    .xp-empty { color: #6b7280; padding: 24px; grid-column: 1 / -1; text-align: center; }
    .xp-thumb {
      display: flex; flex-direction: column; align-items: center; gap: 4px;
      padding: 6px; border: 1px solid #e5e7eb; border-radius: 10px; background: #fff;
      cursor: pointer; transition: box-shadow .12s, border-color .12s, transform .12s;
      min-width: 0;
    }
    .xp-thumb:hover { box-shadow: 0 4px 14px rgba(15, 23, 42, .12); transform: translateY(-1px); }
    .xp-thumb:focus-visible { outline: 2px solid #2563eb; outline-offset: 2px; }
    .xp-thumb.selected { border-color: #2563eb; box-shadow: 0 0 0 3px rgba(37, 99, 235, .35); }
    .xp-thumb img {
      width: var(--xp-size); height: var(--xp-size); object-fit: cover; border-radius: 6px;
      background: #f3f4f6;
    }
    .xp-caption {
      font-size: 12px; color: #111827; max-width: var(--xp-size);
      white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
    }
    .xp-badge {
      font-size: 11px; max-width: var(--xp-size); padding: 1px 6px; border-radius: 999px;
      white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
    }
    .xp-detail {
      font-size: 11px; color: #4b5563; max-width: var(--xp-size); font-variant-numeric: tabular-nums;
      white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
    }
    .xp-badge.match { background: #dcfce7; color: #166534; }
    .xp-badge.mismatch { background: #fee2e2; color: #991b1b; }
    .xp-badge.unknown { background: #f3f4f6; color: #374151; }
    .xp-badge.pending { background: transparent; color: #9ca3af; }
    """]

    def _handle_msg(self, msg) -> None:
        clicked = str(msg.get("id", "")) if isinstance(msg, dict) else ""
        if not clicked:
            return
        if clicked == self.clicked:
            self.param.trigger("clicked")
        else:
            self.clicked = clicked
