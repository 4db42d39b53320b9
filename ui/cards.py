"""Recommendation cards: what the demo shows for each recommended item.

A card holds the item's name, its attributes as chips grouped by facet (those on the path
highlighted), its description when the catalog has one, the reason given in the reply, and
the graph path that led to it (accepted attributes → item). A card is a ``<button>`` carrying
the item's id, so tapping it chooses the item. All text is escaped: catalogs are data, not HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from crs import RecommendedItem
from crs.kb import KnowledgeGraph

__all__ = ["MAX_CHIPS", "card_html", "cards_html"]

MAX_CHIPS = 8  # a card stays readable; the path's attributes always come first


def card_html(graph: KnowledgeGraph, rec: RecommendedItem, rank: int) -> str:
    index = graph.item(rec.id)
    on_path = set(rec.path[:-1])
    attrs = [graph.attr_ids[a] for a in graph.item_attrs.row(index).tolist()]
    attrs.sort(key=lambda a: a not in on_path)  # stable: path first, then catalog order
    chips = []
    for a in attrs[:MAX_CHIPS]:
        attr = graph.attributes[graph.attr_index[a]]
        css = "chip chip-yes" if a in on_path else "chip"
        chips.append(f'<span class="{css}" title="{escape(attr.facet)}">{escape(attr.value)}</span>')
    description = graph.descriptions[index] if index < len(graph.descriptions) else ""
    steps = [escape(graph.attributes[graph.attr_index[a]].value) for a in rec.path[:-1]]
    path = " → ".join([*(f'<span class="chip chip-yes">{s}</span>' for s in steps),
                       f'<span class="path-item">{escape(rec.name)}</span>'])
    return (
        f'<button type="button" class="card" data-item="{escape(rec.id)}" '
        f'aria-label="Choose {escape(rec.name)}">'
        f'<span class="card-rank">{rank}</span>'
        f'<span class="card-name">{escape(rec.name)}</span>'
        f'<span class="chips">{"".join(chips)}</span>'
        + (f'<span class="card-description">{escape(description)}</span>' if description else "")
        + f'<span class="card-why">{escape(rec.why)}</span>'
        f'<span class="card-path">{path}</span>'
        '<span class="card-choose">Choose this</span>'
        "</button>"
    )


def cards_html(graph: KnowledgeGraph, recs: Sequence[RecommendedItem]) -> str:
    """The cards of one list, or an empty string when the reply recommended nothing."""
    if not recs:
        return ""
    return '<div class="cards">' + "".join(card_html(graph, r, n) for n, r in enumerate(recs, 1)) + "</div>"
