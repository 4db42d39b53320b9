"""The reasoning panel: the path walked so far, how many candidates are left, and a picture.

The picture is the part of the item–attribute graph that links the accepted attributes to the
recommended items (networkx's bipartite layout, drawn by matplotlib as SVG). A rejected
attribute that a recommended item still has is drawn too, with a dashed red edge: the
recommendation is soft, and the picture says so. Everything here is a pure function of the
graph and a few ids, so it is tested without a browser.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import networkx as nx
from matplotlib.figure import Figure

from crs.kb import KnowledgeGraph

__all__ = ["Walk", "attribute_label", "draw_svg", "panel_html", "subgraph"]

ACCEPTED, REJECTED, ITEM, EDGE = "#15803d", "#b91c1c", "#4338ca", "#94a3b8"
_SVG_START = re.compile(r"<svg\b")
_FONT, _GAP, _WRAP = 10.5, 72, 20  # label size and space between the columns (points); letters a line
_SIZE = re.compile(r'\s(?:width|height)="[^"]*pt"')


@dataclass(frozen=True)
class Walk:
    """Where a conversation stands, as the panel shows it (attribute and item ids)."""

    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    candidates: int = 0
    items: tuple[str, ...] = ()  # the items recommended by the last reply, or the one chosen
    chosen: bool = False  # ``items`` is the item the person chose
    asking: str | None = None  # the attribute the last reply asked about


def attribute_label(graph: KnowledgeGraph, attr_id: str) -> tuple[str, str]:
    """(facet, value) of an attribute id; unknown ids raise ``UnknownIdError``."""
    attr = graph.attributes[graph.attribute(attr_id)]
    return attr.facet, attr.value


def subgraph(graph: KnowledgeGraph, accepted: Sequence[str], items: Sequence[str],
             rejected: Sequence[str] = ()) -> nx.Graph:
    """The item–attribute subgraph between the given attributes and items, taken from the graph.

    Nodes are ``("attribute", id)`` and ``("item", id)`` with a ``role`` of ``accepted``,
    ``rejected`` or ``item``; a rejected attribute is kept only when a given item has it.
    Unknown ids raise ``UnknownIdError`` (a wrong id must not draw a silently wrong picture).
    """
    for a in (*accepted, *rejected):
        graph.attribute(a)
    for i in items:
        graph.item(i)
    roles = {("attribute", a): "accepted" for a in accepted}
    roles |= {("attribute", a): "rejected" for a in rejected if ("attribute", a) not in roles}
    roles |= {("item", i): "item" for i in items}
    out = nx.Graph()
    out.add_nodes_from(roles)  # in the order given: the drawing keeps the path's and the list's order
    out.add_edges_from((u, v) for u, v in graph.nx_graph.subgraph(roles).edges if u[0] != v[0])
    out.remove_nodes_from([n for n in list(out) if roles[n] == "rejected" and out.degree(n) == 0])
    nx.set_node_attributes(out, {n: roles[n] for n in out}, "role")
    return out


def draw_svg(graph: KnowledgeGraph, accepted: Sequence[str], items: Sequence[str],
             rejected: Sequence[str] = ()) -> str:
    """The subgraph as an inline ``<svg>`` element: attributes on the left, items on the right.

    Text is drawn as paths, so the picture needs no font from anywhere.
    """
    g = subgraph(graph, accepted, items, rejected)
    attrs = [n for n in g if n[0] == "attribute"]
    things = [n for n in g if n[0] == "item"]
    if not g:
        return ""
    # Two columns, each in the order given (the path's, the list's), first on top.
    columns = {k: nodes for k, nodes in enumerate((attrs, things)) if nodes}
    pos = {n: (x, -y) for n, (x, y) in nx.multipartite_layout(g, subset_key=columns).items()}
    labels = {n: attribute_label(graph, n[1])[1] if n[0] == "attribute"
              else textwrap.fill(textwrap.shorten(graph.item_names[graph.item(n[1])], 2 * _WRAP, placeholder="…"),
                                 _WRAP, max_lines=2, placeholder="…") for n in g}
    # The figure is as wide as its labels need (about 0.6 em a letter), so none is cut off.
    def widest(nodes: list[tuple[str, str]]) -> float:
        return max((len(line) for n in nodes for line in labels[n].splitlines()), default=0) * _FONT * 0.6 + 14
    left, right = widest(attrs), widest(things)
    rows = max(len(attrs), len(things), 1)
    fig = Figure(figsize=((left + _GAP + right) / 72, 0.5 * rows + 0.5))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    yes = [(u, v) for u, v in g.edges if "rejected" not in (g.nodes[u]["role"], g.nodes[v]["role"])]
    no = [(u, v) for u, v in g.edges if (u, v) not in yes]
    nx.draw_networkx_edges(g, pos, edgelist=yes, ax=ax, edge_color=EDGE, width=1.6)
    nx.draw_networkx_edges(g, pos, edgelist=no, ax=ax, edge_color=REJECTED, width=1.2, style="dashed")
    colours = {"accepted": ACCEPTED, "rejected": REJECTED, "item": ITEM}
    for role, colour in colours.items():
        nodes = [n for n in g if g.nodes[n]["role"] == role]
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_color=colour, node_size=140,
                               node_shape="s" if role == "item" else "o")
    for node, (x, y) in pos.items():
        on_left = node[0] == "attribute"
        ax.annotate(labels[node], (x, y), xytext=(-10 if on_left else 10, 0), textcoords="offset points",
                    ha="right" if on_left else "left", va="center", fontsize=_FONT,
                    color=colours[g.nodes[node]["role"]])
    xs = [x for x, _ in pos.values()]
    per_point = max(max(xs) - min(xs), 1e-9) / _GAP if len(columns) == 2 else 1 / _GAP
    ax.set_xlim(min(xs) - left * per_point, max(xs) + right * per_point)
    ys = [y for _, y in pos.values()]
    pad = max((max(ys) - min(ys)) * 0.15, 0.3)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
    svg = buf.getvalue()
    svg = svg[_SVG_START.search(svg).start():]  # type: ignore[union-attr]  # inline: no XML prolog
    # Scale with the panel: keep the viewBox, drop the fixed size in points.
    natural = round(fig.get_figwidth() * 96)  # CSS pixels: shrink to fit, never blow up
    return _SIZE.sub("", svg, count=2).replace(
        "<svg ", f'<svg class="subgraph-svg" role="img" aria-label="{escape(_describe(g, labels))}" '
        f'style="max-width: {natural}px" ', 1)


def _describe(g: nx.Graph, labels: dict[tuple[str, str], str]) -> str:
    """The picture in words, for screen readers: each item and the attributes that reach it."""
    parts = []
    for node in g:
        if node[0] == "item":
            via = [labels[n] for n in g[node] if g.nodes[n]["role"] == "accepted"]
            name = " ".join(labels[node].split())
            parts.append(f"{name}, reached by {', '.join(via)}" if via else name)
    return "; ".join(parts)


def _chips(graph: KnowledgeGraph, attrs: Sequence[str], css: str) -> str:
    out = []
    for a in attrs:
        facet, value = attribute_label(graph, a)
        out.append(f'<span class="chip {css}" title="{escape(facet)}">{escape(value)}</span>')
    return "".join(out)


def panel_html(graph: KnowledgeGraph, walk: Walk) -> str:
    """The panel: accepted and rejected attributes as chips, candidates left, the picture."""
    rows = [("Path", _chips(graph, walk.accepted, "chip-yes") or '<span class="muted">nothing yet</span>'),
            ("Ruled out", _chips(graph, walk.rejected, "chip-no") or '<span class="muted">nothing</span>'),
            ("Left", '<span class="count">'
             + ("1 candidate left" if walk.candidates == 1 else f"{walk.candidates} candidates left") + "</span>")]
    if walk.asking:
        rows.append(("Asking", _chips(graph, [walk.asking], "chip-ask")))
    if walk.items:
        picture = draw_svg(graph, walk.accepted, walk.items, walk.rejected)
        if not walk.accepted:
            caption = "Nothing accepted yet, so no path leads to these items."
        elif walk.chosen:
            caption = "How the accepted attributes lead to the item you chose."
        else:
            caption = "How the accepted attributes lead to the recommended items."
    else:
        picture, caption = "", "The picture appears with the first recommendations."
    body = "".join(f'<div class="row"><span class="label">{label}</span><span class="path">{html}</span></div>'
                   for label, html in rows)
    return (f'<div class="reasoning">{body}'
            f'<figure class="subgraph">{picture}<figcaption>{caption}</figcaption></figure></div>')
