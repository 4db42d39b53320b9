"""Recall: valid memories → profile → a soft prior. Three kinds of evidence, never confused:
statements are lasting and strongest, choices are weak until two sessions agree, answers are nothing."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from crs.kb import KnowledgeGraph
from crs.memory import MemoryEntry, ProfileSettings, base_rates, build_profile
from crs.memory.entry import utcnow
from crs.reasoning.engine import Engine


def _e(ident: str, kind: str, attrs: tuple[str, ...] = (), text: str | None = None, **kw: object) -> MemoryEntry:
    return MemoryEntry(id=ident, user_id="ann", kind=kind, text=text or f"{kind} {attrs}",  # type: ignore[arg-type]
                       attribute_ids=attrs, **kw)


def _said(ident: str, kind: str, attr: str, text: str, **kw: object) -> MemoryEntry:
    return _e(ident, kind, (attr,), text, explicit=True, source="stated", **kw)


def _chose(ident: str, item: str, attrs: tuple[str, ...], session: str, **kw: object) -> MemoryEntry:
    return _e(ident, "like", attrs, f"Chose {item}.", item_ids=(item,), session_id=session, source="chosen",
              confidence=0.9, **kw)


def test_stated_likes_and_dislikes_are_strong_and_name_their_source(toy_graph: KnowledgeGraph) -> None:
    p = build_profile("ann", [_said("1", "like", "genre:jazz", "Loves jazz."),
                              _said("2", "dislike", "genre:rock", "Can't stand rock.")],
                      rates=base_rates(toy_graph), names={"genre:jazz": "jazz", "genre:rock": "rock"})
    prior = dict(p.prior)
    assert prior["genre:jazz"] >= ProfileSettings().stated_like > 0 > prior["genre:rock"]
    assert p.top_like == "genre:jazz" and p.dislikes == p.avoid == ("genre:rock",)
    assert p.sources["genre:jazz"] == "you said you love jazz"
    assert p.sources["genre:rock"] == "you said you can't stand rock"
    assert p.confirm_prompt() == "Last time you said you love jazz. Still in that mood?"
    assert "Likes: jazz." in p.text() and "Not into: rock." in p.text()


def test_answers_to_one_search_never_become_likes_or_dislikes(toy_graph: KnowledgeGraph) -> None:
    # What older versions stored for a yes or a no to the bot's question: no weight, no like.
    old = [_e("1", "like", ("genre:jazz",), "Said yes to jazz."),
           _e("2", "dislike", ("genre:rock",), "Said no to rock."),
           _e("3", "like", ("decade:1950s",), "Asked for 1950s.", explicit=True)]
    p = build_profile("ann", old, rates=base_rates(toy_graph))
    assert p.prior == () and p.likes == () and p.dislikes == ()


def test_one_choice_is_weak_evidence_and_two_sessions_make_a_like(toy_graph: KnowledgeGraph) -> None:
    rates = base_rates(toy_graph)
    one = build_profile("ann", [_chose("1", "kind-of-blue", ("genre:jazz", "decade:1950s"), "s1")], rates=rates,
                        item_names={"kind-of-blue": "Kind of Blue"})
    assert dict(one.prior)["genre:jazz"] > 0  # nudges the scores...
    assert one.likes == () and one.top_like is None  # ...but is not a like to put to the person
    assert one.items == ("kind-of-blue",) and one.dislikes == ()
    two = build_profile("ann", [_chose("1", "kind-of-blue", ("genre:jazz", "decade:1950s"), "s1"),
                                _chose("2", "a-love-supreme", ("genre:jazz", "decade:1960s"), "s2")],
                        rates=rates, item_names={"kind-of-blue": "Kind of Blue", "a-love-supreme": "A Love Supreme"})
    assert two.likes == ("genre:jazz",)  # shared by choices of two sessions; 1950s and 1960s are not
    assert two.sources["genre:jazz"].startswith("like ") and "which you chose before" in two.sources["genre:jazz"]
    assert "Kind of Blue" in two.sources["genre:jazz"] and "A Love Supreme" in two.sources["genre:jazz"]
    same = build_profile("ann", [_chose("1", "kind-of-blue", ("genre:jazz",), "s1"),
                                 _chose("2", "blue-train", ("genre:jazz",), "s1")], rates=rates)
    assert same.likes == ()  # two choices of one session are still one session


def test_a_statement_wins_over_choices_and_the_newest_statement_wins(toy_graph: KnowledgeGraph) -> None:
    rates = base_rates(toy_graph)
    later = utcnow()
    entries = [_chose("1", "kind-of-blue", ("genre:jazz",), "s1"), _chose("2", "blue-train", ("genre:jazz",), "s2"),
               _said("3", "like", "genre:jazz", "Loves jazz.", valid_from=later - timedelta(days=2)),
               _said("4", "dislike", "genre:jazz", "Done with jazz.", valid_from=later)]
    p = build_profile("ann", entries, rates=rates)
    assert dict(p.prior)["genre:jazz"] < 0 and "genre:jazz" not in p.likes and p.avoid == ("genre:jazz",)
    assert p.sources["genre:jazz"] == "you said you are done with jazz"


def test_expired_memories_never_count() -> None:
    now = utcnow()
    p = build_profile("ann", [_said("1", "like", "genre:metal", "Loves metal.", valid_to=now),
                              _e("2", "fact", valid_to=now)])
    assert p.prior == () and p.is_empty and p.top_like is None


def test_choices_decay_with_time(toy_graph: KnowledgeGraph) -> None:
    old = utcnow() - timedelta(days=720)
    rates = base_rates(toy_graph)
    fresh = build_profile("ann", [_chose("1", "kind-of-blue", ("genre:jazz",), "s1")], rates=rates)
    stale = build_profile("ann", [_chose("1", "kind-of-blue", ("genre:jazz",), "s1", valid_from=old)], rates=rates)
    assert dict(fresh.prior)["genre:jazz"] > dict(stale.prior).get("genre:jazz", 0.0)


def test_weights_are_capped_and_bounded() -> None:
    s = ProfileSettings(max_weight=2.0, max_prior=1)
    p = build_profile("ann", [_said("1", "dislike", "a:x", "Can't stand x."), _said("2", "like", "a:y", "Likes y.")],
                      settings=s)
    assert len(p.prior) == 1 and abs(p.prior[0][1]) <= 2.0


def test_the_prior_is_soft_in_the_engine(toy_graph: KnowledgeGraph) -> None:
    """A disliked attribute lowers items, it never removes them: they can still be found."""
    p = build_profile("ann", [_said("1", "dislike", "genre:jazz", "Can't stand jazz.")], rates=base_rates(toy_graph))
    engine = Engine(toy_graph)
    state = engine.start("ann", p.prior)
    view = engine.view(state)
    assert len(view.candidates) == toy_graph.n_items
    jazz = {toy_graph.item_index[i] for i in ("kind-of-blue", "a-love-supreme", "blue-train")}
    plain = engine.view(engine.start("ann"))
    pos = {int(c): k for k, c in enumerate(view.candidates)}
    for i in jazz:
        assert view.scores[pos[i]] < plain.scores[pos[i]]
    assert np.isfinite(view.scores).all()


def test_neighbours_of_past_choices_are_the_items_people_chose_with_them(toy_graph: KnowledgeGraph) -> None:
    from crs.memory.neighbours import ItemNeighbours

    n = ItemNeighbours(toy_graph)
    # u1 chose thriller and kind-of-blue: each is the other's neighbour; the chosen item itself is left out
    assert n.scores(["kind-of-blue"]) == {"thriller": 1.0}
    assert n.scores(["kind-of-blue", "no-such-item"]) == {"thriller": 1.0}
    assert n.scores(["nevermind"]) == {} and n.scores([]) == {} and n.scores(["kind-of-blue"], top=0) == {}


def test_the_item_term_is_weak_evidence_never_a_like(toy_graph: KnowledgeGraph) -> None:
    from crs.memory.neighbours import ITEM_PRIOR, ItemNeighbours

    chose = [_chose("1", "kind-of-blue", ("genre:jazz", "decade:1950s"), "s1")]
    on = build_profile("ann", chose, rates=base_rates(toy_graph), settings=ProfileSettings(item_weight=2.0),
                       neighbours=ItemNeighbours(toy_graph).scores)
    assert dict(on.prior)[ITEM_PRIOR + "thriller"] == 2.0
    assert on.likes == () and on.items == ("kind-of-blue",)  # nothing is claimed about the person
    off = build_profile("ann", chose, rates=base_rates(toy_graph), neighbours=ItemNeighbours(toy_graph).scores)
    assert not any(a.startswith(ITEM_PRIOR) for a, _ in off.prior)  # off by default
    assert {a for a, _ in on.prior} - {a for a, _ in off.prior} == {ITEM_PRIOR + "thriller"}


def test_an_item_term_raises_that_item_only_in_the_engine(toy_graph: KnowledgeGraph) -> None:
    from crs.reasoning.engine import ITEM_PRIOR

    engine = Engine(toy_graph)
    state = engine.start("ann", [(ITEM_PRIOR + "thriller", 2.0), (ITEM_PRIOR + "gone-from-catalog", 1.0)])
    assert state.prior == ((ITEM_PRIOR + "thriller", 2.0),)  # ids the catalog lacks are dropped
    view, plain = engine.view(state), engine.view(engine.start("ann"))
    diff = dict(zip(view.candidates.tolist(), (view.scores - plain.scores).tolist(), strict=True))
    assert diff.pop(toy_graph.item_index["thriller"]) == 2.0 and set(diff.values()) == {0.0}
