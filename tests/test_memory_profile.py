"""Recall: valid memories → profile → a soft prior; expired preferences never count."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from crs.kb import KnowledgeGraph
from crs.memory import MemoryEntry, ProfileSettings, base_rates, build_profile
from crs.memory.entry import utcnow
from crs.reasoning.engine import Engine


def _e(ident: str, kind: str, attrs: tuple[str, ...] = (), **kw: object) -> MemoryEntry:
    return MemoryEntry(id=ident, user_id="ann", kind=kind, text=f"{kind} {attrs}", attribute_ids=attrs,  # type: ignore[arg-type]
                       **kw)


def test_likes_are_positive_dislikes_negative(toy_graph: KnowledgeGraph) -> None:
    p = build_profile("ann", [_e("1", "like", ("genre:jazz",)), _e("2", "dislike", ("genre:rock",))],
                      rates=base_rates(toy_graph))
    prior = dict(p.prior)
    assert prior["genre:jazz"] > 0 > prior["genre:rock"]
    assert p.top_like == "genre:jazz"
    assert p.confirm_prompt() == "Last time you were into jazz, still in that mood?"
    assert "Likes: jazz." in p.text() and "Not into: rock." in p.text()


def test_expired_memories_never_count() -> None:
    now = utcnow()
    p = build_profile("ann", [_e("1", "like", ("genre:metal",), valid_to=now, explicit=True),
                              _e("2", "fact", valid_to=now)])
    assert p.prior == () and p.is_empty and p.top_like is None


def test_a_stated_dislike_is_never_positive(toy_graph: KnowledgeGraph) -> None:
    # Many accepted answers, then "I'm done with metal": the statement wins even against counts.
    entries = [_e("a", "like", ("genre:rock",), support=9), _e("b", "dislike", ("genre:rock",), explicit=True)]
    assert dict(build_profile("ann", entries, rates=base_rates(toy_graph)).prior)["genre:rock"] < 0


def test_confidence_and_recency_weigh_in() -> None:
    old = utcnow() - timedelta(days=720)
    strong = build_profile("ann", [_e("1", "like", ("genre:jazz",), confidence=0.9)])
    weak = build_profile("ann", [_e("1", "like", ("genre:jazz",), confidence=0.3)])
    stale = build_profile("ann", [_e("1", "like", ("genre:jazz",), confidence=0.9, valid_from=old)])
    w = [dict(p.prior).get("genre:jazz", 0.0) for p in (strong, weak, stale)]
    assert w[0] > w[1] > 0 and w[0] > w[2]


def test_weights_are_capped_and_bounded() -> None:
    s = ProfileSettings(max_weight=2.0, max_prior=1)
    p = build_profile("ann", [_e("1", "dislike", ("a:x",), support=50, explicit=True),
                              _e("2", "like", ("a:y",))], settings=s)
    assert len(p.prior) == 1 and abs(p.prior[0][1]) <= 2.0


def test_the_prior_is_soft_in_the_engine(toy_graph: KnowledgeGraph) -> None:
    """A disliked attribute lowers items, it never removes them: they can still be found."""
    p = build_profile("ann", [_e("1", "dislike", ("genre:jazz",), explicit=True)], rates=base_rates(toy_graph))
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


def test_a_chosen_item_is_liked_and_what_it_lacks_is_no_dislike(toy_graph: KnowledgeGraph) -> None:
    chose = _e("1", "like", ("genre:jazz", "decade:1950s"), item_ids=("kind-of-blue",), confidence=0.9)
    p = build_profile("ann", [chose], rates=base_rates(toy_graph), settings=ProfileSettings(max_prior=1))
    assert set(p.likes) == {"genre:jazz", "decade:1950s"}  # read from every weight, not the kept prior
    assert dict(p.prior).get("genre:rock", 0.0) <= 0  # lacking rock weighs against it in the scores...
    assert p.dislikes == () and p.avoid == ()  # ...but nobody said they were not into rock
    said = build_profile("ann", [chose, _e("2", "dislike", ("genre:rock",)),
                                 _e("3", "dislike", ("genre:metal",), explicit=True)], rates=base_rates(toy_graph))
    assert set(said.dislikes) == {"genre:rock", "genre:metal"}
    assert said.avoid == ("genre:metal",)  # only a statement keeps an attribute out of lists
