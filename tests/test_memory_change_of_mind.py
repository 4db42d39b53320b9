"""A change of mind retires the choices made for what was dropped: after "I'm done with jazz",
the jazz albums chosen before no longer pull the prior towards their other attributes, and no
reply cites them as a reason; they are still items chosen before (not offered again)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crs import Recommender, Settings
from crs.kb import KnowledgeGraph
from crs.memory import MemoryEntry, ProfileSettings, base_rates, build_profile
from crs.memory.entry import utcnow

T0 = utcnow() - timedelta(days=2)


def _chose(ident: str, item: str, attrs: tuple[str, ...], session: str, when: timedelta) -> MemoryEntry:
    return MemoryEntry(id=ident, user_id="ann", kind="like", text=f"Chose {item}.", attribute_ids=attrs,
                       item_ids=(item,), session_id=session, source="chosen", confidence=0.9, valid_from=T0 + when)


def _done(attr: str, when: timedelta) -> MemoryEntry:
    return MemoryEntry(id=f"done-{attr}", user_id="ann", kind="dislike", text=f"Done with {attr}.",
                       attribute_ids=(attr,), explicit=True, source="stated", confidence=0.9, valid_from=T0 + when)


JAZZ_50S = ("genre:jazz", "decade:1950s")


def test_choices_made_before_a_change_of_mind_are_no_longer_evidence(toy_graph: KnowledgeGraph) -> None:
    rates = base_rates(toy_graph)
    chosen = [_chose("1", "kind-of-blue", JAZZ_50S, "s1", timedelta(0)),
              _chose("2", "blue-train", JAZZ_50S, "s2", timedelta(hours=1))]
    before = build_profile("ann", chosen, rates=rates, item_names={"kind-of-blue": "Kind of Blue"})
    assert dict(before.prior)["decade:1950s"] > 0 and "decade:1950s" in before.likes  # two sessions agree
    after = build_profile("ann", [*chosen, _done("genre:jazz", timedelta(hours=2))], rates=rates)
    prior = dict(after.prior)
    assert prior["genre:jazz"] < 0 and "decade:1950s" not in prior  # nothing left of the jazz albums' pull
    assert after.likes == () and after.chosen == {}  # no "like Kind of Blue, which you chose before"
    assert after.items == ("blue-train", "kind-of-blue")  # still chosen before: not offered again unasked
    kept = build_profile("ann", [*chosen, _done("genre:jazz", timedelta(hours=2))], rates=rates,
                         settings=ProfileSettings(retire_on_change_of_mind=False))
    assert dict(kept.prior)["decade:1950s"] > 0  # the setting turns it off


def test_a_choice_made_after_the_statement_still_counts(toy_graph: KnowledgeGraph) -> None:
    # said "done with jazz", then chose a jazz album anyway: that choice is evidence again
    rates = base_rates(toy_graph)
    p = build_profile("ann", [_done("genre:jazz", timedelta(0)),
                              _chose("1", "kind-of-blue", JAZZ_50S, "s1", timedelta(hours=1))], rates=rates)
    assert dict(p.prior)["decade:1950s"] > 0


def test_only_choices_having_the_dropped_attribute_are_retired(toy_graph: KnowledgeGraph) -> None:
    rates = base_rates(toy_graph)
    p = build_profile("ann", [_chose("1", "kind-of-blue", JAZZ_50S, "s1", timedelta(0)),
                              _chose("2", "vespertine", ("genre:electronic",), "s2", timedelta(hours=1)),
                              _done("genre:jazz", timedelta(hours=2))], rates=rates)
    prior = dict(p.prior)
    assert prior["genre:electronic"] > 0  # the other choice still counts...
    assert prior.get("decade:1950s", 0.0) <= 0  # ...and the jazz album pulls towards nothing


def test_a_change_of_mind_back_in_a_reset_conversation_is_kept(tmp_path: Path) -> None:
    """Telegram's /start and the demo reset a conversation and reuse its session id: what the new
    conversation says in its turn 1 is new, not a replay of the old conversation's turn 1."""
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    rec.chat("tg-42", "chat-42", "I love jazz")
    rec.reset("tg-42", "chat-42")
    rec.chat("tg-42", "chat-42", "I'm done with jazz")
    rec.reset("tg-42", "chat-42")
    assert rec.state("tg-42", "chat-42") is None  # a reset conversation starts afresh
    rec.chat("tg-42", "chat-42", "I love jazz")
    held = {(m.kind, m.text) for m in rec.memories("tg-42") if m.kind != "session_summary"}
    assert held == {("like", "Loves jazz.")}
    assert "you said you love jazz" in rec.chat("tg-42", "another", "hi").text
