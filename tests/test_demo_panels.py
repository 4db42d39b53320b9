"""The demo's panels without a browser: the reasoning picture, the cards, the memory list, identity."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crs import InvalidInput, RecommendedItem, Recommender, Settings
from crs.kb import Catalog, Item, KnowledgeGraph, UnknownIdError, build_graph
from crs.ui.cards import cards_html
from crs.ui.identity import SECRET_FILE, BrowserIdError, browser_secret, check_browser_user
from crs.ui.memory_panel import memories_html
from crs.ui.reasoning import Walk, draw_svg, panel_html, subgraph


def test_the_subgraph_links_accepted_attributes_to_items_as_the_graph_does(toy_graph: KnowledgeGraph) -> None:
    g = subgraph(toy_graph, ["genre:jazz", "decade:1950s"], ["kind-of-blue", "a-love-supreme"],
                 rejected=["mood:calm", "mood:party"])
    edges = {frozenset((u[1], v[1])) for u, v in g.edges}
    assert edges == {frozenset(p) for p in [("genre:jazz", "kind-of-blue"), ("genre:jazz", "a-love-supreme"),
                                              ("decade:1950s", "kind-of-blue"), ("mood:calm", "kind-of-blue")]}
    roles = dict(g.nodes(data="role"))
    assert roles[("attribute", "mood:calm")] == "rejected"
    assert ("attribute", "mood:party") not in g  # rejected, but no recommended item has it
    assert roles[("item", "a-love-supreme")] == "item"


def test_unknown_ids_are_refused_not_drawn(toy_graph: KnowledgeGraph) -> None:
    with pytest.raises(UnknownIdError, match="genre:jaz"):
        subgraph(toy_graph, ["genre:jaz"], ["kind-of-blue"])
    with pytest.raises(UnknownIdError, match="kind-of-blu"):
        draw_svg(toy_graph, ["genre:jazz"], ["kind-of-blu"])


def test_the_picture_is_an_inline_svg_that_needs_nothing_from_outside(toy_graph: KnowledgeGraph) -> None:
    svg = draw_svg(toy_graph, ["genre:jazz"], ["kind-of-blue", "blue-train", "a-love-supreme"], ["mood:calm"])
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>") and "<?xml" not in svg
    assert "viewBox" in svg and not re.search(r'\swidth="[^"]*pt"', svg)  # scales with the panel
    assert not re.search(r'(?:href|src)="(?!#)', svg)  # no link to any file or host
    assert "<text" not in svg and "font-family" not in svg  # letters drawn as paths: no font to fetch
    assert 'aria-label="Kind of Blue — Miles Davis, reached by jazz; Blue Train' in svg  # for screen readers
    assert "stroke-dasharray" in svg  # the rejected "calm" that Kind of Blue still has: a dashed link
    assert "stroke-dasharray" not in draw_svg(toy_graph, ["genre:jazz"], ["kind-of-blue"], ["mood:party"])
    assert draw_svg(toy_graph, [], []) == ""


def test_the_panel_shows_the_path_what_was_ruled_out_and_what_is_left(toy_graph: KnowledgeGraph) -> None:
    html = panel_html(toy_graph, Walk(("genre:jazz",), ("decade:1960s",), 2, ("kind-of-blue", "blue-train")))
    assert re.search(r'class="chip chip-yes" title="genre">jazz<', html)
    assert re.search(r'class="chip chip-no" title="decade">1960s<', html)
    assert "2 candidates left" in html and "<svg " in html and "recommended items" in html
    assert "Asking" not in html
    asking = panel_html(toy_graph, Walk(("genre:jazz",), (), 3, asking="decade:1950s"))
    assert re.search(r'Asking</span><span class="path"><span class="chip chip-ask" title="decade">1950s<', asking)
    start = panel_html(toy_graph, Walk(candidates=12))
    assert "nothing yet" in start and "12 candidates left" in start and "<svg" not in start
    chosen = panel_html(toy_graph, Walk(("genre:jazz",), (), 1, ("kind-of-blue",), chosen=True))
    assert "1 candidate left" in chosen and "item you chose" in chosen


def test_cards_show_name_chips_description_reason_and_path_and_escape_the_catalog() -> None:
    nasty = "<img src=x onerror=alert(1)>"
    catalog = Catalog(items=[Item(id="a&b", name=f"Album {nasty}", attributes={"genre": ["jazz"], "decade": ["1950s"]},
                                  description="Cool & calm"),
                             Item(id="c", name="Plain", attributes={"genre": ["rock"]})])
    graph = build_graph(catalog)
    recs = [RecommendedItem(id="a&b", name=f"Album {nasty}", why="matches jazz", path=["genre:jazz", "a&b"]),
            RecommendedItem(id="c", name="Plain", why="popular", path=["c"])]
    html = cards_html(graph, recs)
    assert "<img" not in html and "&lt;img src=x" in html  # text, never markup
    first, second = html.split('<button type="button" class="card"')[1:]
    assert 'data-item="a&amp;b"' in first and "Cool &amp; calm" in first and "matches jazz" in first
    assert re.search(r'class="chip chip-yes" title="genre">jazz<', first)  # on the path: highlighted
    assert re.search(r'class="chip" title="decade">1950s<', first)
    assert re.search(r'card-path"><span class="chip chip-yes">jazz</span> → <span class="path-item">', first)
    assert "card-description" not in second and 'data-item="c"' in second
    assert cards_html(graph, []) == ""


class _Entry:
    def __init__(self, ident: str, kind: str, text: str) -> None:
        self.id, self.kind, self.text = ident, kind, text
        self.created_at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def test_the_memory_list_has_one_delete_button_per_memory_and_escapes_text() -> None:
    html = memories_html([_Entry("m1", "like", "Loves <b>jazz</b>"), _Entry("m2", "new_kind", "x")])
    assert html.count('class="memory-delete"') == 2 and 'data-memory="m1"' in html and 'data-memory="m2"' in html
    assert "<b>" not in html and "&lt;b&gt;jazz" in html
    assert "likes" in html and "new kind" in html and "2026-01-02 03:04" in html
    assert "Nothing is remembered" in memories_html([])


def test_the_browser_secret_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = browser_secret(tmp_path / "state")
    path = tmp_path / "state" / SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert browser_secret(tmp_path / "state") == first and len(first) >= 32  # the next run reads it back
    assert browser_secret(tmp_path / "other") != first
    path.chmod(0o644)
    assert browser_secret(tmp_path / "state") == first and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(ValueError, match="delete it"):
        browser_secret(tmp_path / "state")


def test_a_browser_user_must_look_like_one() -> None:
    good = "web-" + "0123456789abcdef01234567"
    assert check_browser_user(good) == good
    for bad in ("alice", "", "web-XYZ", good + "0", None, 7, "web-" + "0123456789ABCDEF01234567"):
        with pytest.raises(BrowserIdError, match="'web-' followed by 24 lowercase hex digits"):
            check_browser_user(bad)


def test_with_persona_changes_the_voice_and_keeps_the_conversation(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False, memory=False))
    playful = rec.with_persona("playful")
    assert playful.persona.name == "playful" and rec.persona.name == "default"
    asked = rec.chat("ann", "s", "some jazz")
    assert asked.action == "ask"
    listed = playful.act("ann", "s", {"type": "recommend_now"})  # the same conversation, another voice
    state = rec.state("ann", "s")
    assert listed.action == "recommend" and state is not None and state.accepted == ("genre:jazz",)
    assert any(e in listed.text for e in ("🎉", "🎸", "✨", "🥳", "🎧", "🤘"))  # playful's emoji
    assert not any(e in rec.act("ann", "s2", {"type": "recommend_now"}).text for e in ("🎉", "✨", "🥳"))
    with pytest.raises(InvalidInput, match="unknown persona 'nope'"):
        rec.with_persona("nope")


def test_chat_endpoint_of_a_one_user_demo_refuses_other_users(tmp_path: Path) -> None:
    import gradio as gr

    from crs.ui.web import build_demo

    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False, memory=False))
    demo = build_demo(rec, user_id="ann")
    chat = next(f.fn for f in demo.fns.values() if f.api_name == "chat")
    assert chat("some jazz", "s1")
    state = rec.state("ann", "s1")  # the fixed user's conversation
    assert state is not None and state.accepted == ("genre:jazz",)
    with pytest.raises(gr.Error, match="one user for everyone"):
        chat("hi", "s2", "web-" + "1" * 24)
    with pytest.raises(gr.Error, match="'web-' followed by 24 lowercase hex digits, got 'bob'"):
        chat("hi", "s2", "bob")
    assert rec.transcript("ann", "s2") == [] and (tmp_path / SECRET_FILE).is_file()


def test_forget_me_says_what_could_not_be_deleted() -> None:
    from crs.ui.web import forget_message

    assert forget_message({"memories": 3, "threads": 2}).startswith("Everything about you was forgotten")
    said = forget_message({"threads": 2, "not_deleted": ["long-term memories: the store is down"]})
    assert "not everything" in said and "the store is down" in said and "Everything" not in said
