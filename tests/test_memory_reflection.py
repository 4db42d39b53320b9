"""Prospective reflection: add, merge, supersede; idempotent reruns; offline and LLM extraction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from crs.kb import KnowledgeGraph
from crs.memory import (
    ChromaMemoryStore,
    MemoryEntry,
    MemorySettings,
    ReflectionError,
    ReflectiveMemory,
    SessionRecord,
    apply_candidates,
    find_statements,
    llm_candidates,
    offline_candidates,
    update_record,
)
from crs.memory.reflection import Candidate
from crs.memory.store import UserMemories


def _state(session: str, turn: int, *, accepted: Sequence[str] = (), rejected: Sequence[str] = (),
           question: str | None = None, item: str | None = None, message: str | None = None,
           action: str = "ask") -> dict[str, Any]:
    return {
        "session_id": session,
        "dialogue": {"turn": turn, "accepted": list(accepted), "rejected": list(rejected), "question": question,
                     "options": [], "accepted_item": item, "rejected_items": [], "recommended": []},
        "transcript": [{"role": "user", "content": message}] if message else [],
        "reply": {"action": action},
    }


@pytest.fixture
def mem(tmp_path: Path, toy_graph: KnowledgeGraph) -> ReflectiveMemory:
    return ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph,
                            settings=MemorySettings(reflect_every=0))


def _valid(mem: ReflectiveMemory, user: str = "ann") -> list[MemoryEntry]:
    assert mem.store is not None
    return mem.store.for_user(user).entries(valid_only=True)


def test_statements_found_offline() -> None:
    found = {(s.kind, s.topic, s.positive) for s in find_statements(
        "I'm vegetarian. I have kids! Keep it short. I'm done with metal. I love 80s synth-pop.")}
    assert found == {("fact", "fact:am:vegetarian", True), ("fact", "fact:have:kids", True),
                     ("style", "style:length", True), ("dislike", "pref:metal", False),
                     ("like", "pref:80s synth-pop", True)}
    assert find_statements("I'm looking for something calm") == []


def test_session_record_tells_statements_from_answers() -> None:
    rec = SessionRecord("ann", "s1")
    update_record(rec, _state("s1", 1, accepted=["genre:jazz"], question="decade:1950s", message="some jazz"))
    update_record(rec, _state("s1", 2, accepted=["genre:jazz"], rejected=["decade:1950s"], question=None))
    assert rec.volunteered("genre:jazz") and not rec.volunteered("decade:1950s")
    assert rec.turns_of("decade:1950s") == (2,)


def test_session_becomes_like_dislike_item_fact_and_summary(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], question="mood:calm",
                              message="Some jazz please. I'm vegetarian."))
    mem.observe("ann", _state("s1", 2, accepted=["genre:jazz"], rejected=["mood:calm"], question=None))
    mem.observe("ann", _state("s1", 3, accepted=["genre:jazz"], rejected=["mood:calm"], item="blue-train",
                              action="accepted"))  # the session's end reflects by itself
    entries = _valid(mem)
    kinds = sorted(e.kind for e in entries)
    # the statement, the choice and the summary; "some jazz" and "no" to calm were this search's
    assert kinds == ["fact", "like", "session_summary"]
    chose = next(e for e in entries if e.kind == "like")
    assert chose.item_ids == ("blue-train",) and "genre:jazz" in chose.attribute_ids and chose.source == "chosen"
    assert chose.text == "Chose Blue Train — John Coltrane."
    fact = next(e for e in entries if e.kind == "fact")
    assert fact.source == "stated" and fact.turns == (1,)
    summary = next(e for e in entries if e.kind == "session_summary")
    assert "calm" not in summary.text  # a "no" to one search's question is not remembered


def test_an_album_named_as_an_example_is_remembered_as_a_like(mem: ReflectiveMemory) -> None:
    named = _state("s1", 1, message="something like Kind of Blue")
    named["dialogue"]["seeds"] = ["kind-of-blue"]
    mem.observe("ann", named)
    mem.reflect("ann", "s1")
    liked = next(e for e in _valid(mem) if e.kind == "like")
    assert liked.item_ids == ("kind-of-blue",) and liked.source == "named" and liked.turns == (1,)
    assert "genre:jazz" in liked.attribute_ids and liked.text == "Named Kind of Blue — Miles Davis as an example."
    assert dict(mem.prior("ann"))["genre:jazz"] > 0  # weak evidence for the scores...
    assert "genre:jazz" not in mem.profile("ann").likes  # ...not a like to claim


def test_restating_a_fact_fifteen_times_leaves_one_memory(mem: ReflectiveMemory) -> None:
    for turn in range(1, 16):
        mem.observe("ann", _state("s1", turn, message="I'm vegetarian."))
    mem.reflect("ann", "s1")
    for session in ("s2", "s3"):
        mem.observe("ann", _state(session, 1, message="I am vegetarian!"))
        mem.reflect("ann", session)
    facts = [e for e in _valid(mem) if e.kind == "fact"]
    assert len(facts) == 1
    assert facts[0].support == 17 and facts[0].confidence > 0.9


def test_near_duplicate_wording_merges(mem: ReflectiveMemory) -> None:
    assert mem.store is not None
    handle = mem.store.for_user("ann")
    apply_candidates(handle, "s1", [Candidate("fact", "Has two young kids.", turns=(1,))])
    result = apply_candidates(handle, "s2", [Candidate("fact", "Has two young kids", turns=(4,))])
    assert result.merged and not result.added
    apply_candidates(handle, "s3", [Candidate("fact", "Works night shifts at a hospital.", turns=(2,))])
    assert len(handle.entries()) == 2


def test_only_free_text_against_free_text_is_embedded(mem: ReflectiveMemory) -> None:
    assert mem.store is not None
    handle = mem.store.for_user("ann")
    embedded: list[list[str]] = []
    embed = handle.embed

    def counting(texts: Sequence[str]) -> Any:
        embedded.append(list(texts))
        return embed(texts)

    handle.embed = counting  # type: ignore[method-assign]
    apply_candidates(handle, "s1", [Candidate("like", "Loves jazz.", ("genre:jazz",), turns=(1,))])
    apply_candidates(handle, "s2", [Candidate("like", "Said yes to jazz.", ("genre:jazz",), turns=(2,)),
                                    Candidate("fact", "Has two young kids.", turns=(3,))])
    assert embedded == []  # catalog ids compare by id; a first fact has nothing to be compared with
    result = apply_candidates(handle, "s3", [Candidate("fact", "Has two young kids", turns=(4,))])
    assert result.merged and len(embedded) == 1  # the two wordings, compared by meaning


def test_a_stated_dislike_supersedes_the_like(mem: ReflectiveMemory, toy_graph: KnowledgeGraph) -> None:
    mem.observe("ann", _state("s1", 1, accepted=["genre:rock"], message="I love rock"))
    mem.reflect("ann", "s1")
    assert dict(mem.prior("ann"))["genre:rock"] > 0
    like = next(e for e in _valid(mem) if e.kind == "like")
    mem.observe("ann", _state("s2", 1, rejected=["genre:rock"], message="I'm done with rock."))
    mem.reflect("ann", "s2")
    assert mem.store is not None
    old = mem.store.for_user("ann").get([like.id])[0]
    assert old.valid_to is not None and old.superseded_by is not None  # kept, closed
    assert all(not (e.kind == "like" and "genre:rock" in e.attribute_ids and not e.item_ids) for e in _valid(mem))
    assert dict(mem.prior("ann"))["genre:rock"] < 0  # the new one wins
    assert mem.profile("ann").top_like != "genre:rock"


def test_a_changed_fact_supersedes_the_old_one(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, message="I'm vegetarian."))
    mem.reflect("ann", "s1")
    mem.observe("ann", _state("s2", 1, message="I'm not vegetarian anymore."))
    mem.reflect("ann", "s2")
    facts = [e.text for e in _valid(mem) if e.kind == "fact"]
    assert facts == ["Is not vegetarian."]
    mem.observe("ann", _state("s3", 1, message="I live in Berlin."))
    mem.observe("ann", _state("s3", 2, message="I moved to Paris."))
    mem.reflect("ann", "s3")
    assert [e.text for e in _valid(mem) if e.topic == "fact:live in"] == ["Lives in paris."]


def test_answers_and_requests_of_one_search_are_not_likes_or_dislikes(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, accepted=["genre:rock"], message="some rock"))
    mem.reflect("ann", "s1")
    mem.observe("ann", _state("s2", 1, question="genre:rock"))
    mem.observe("ann", _state("s2", 2, rejected=["genre:rock"]))  # "no" to the bot's question
    mem.reflect("ann", "s2")
    assert [e for e in _valid(mem) if e.kind in ("like", "dislike")] == []
    assert mem.prior("ann") == [] and mem.profile("ann").likes == ()


def test_a_change_of_mind_in_the_same_session_is_not_undone_by_the_replay(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], message="I love jazz"))
    mem.observe("ann", _state("s1", 2, rejected=["genre:jazz"], message="actually I'm done with jazz"))
    mem.reflect("ann", "s1")  # the session's end replays both statements
    mem.reflect("ann", "s1")
    assert [e.text for e in _valid(mem) if e.kind in ("like", "dislike")] == ["Done with jazz."]
    assert mem.profile("ann").avoid == ("genre:jazz",)


class _Crashing:
    """A handle whose n-th write fails, as a process killed in the middle of a reflection."""

    def __init__(self, inner: UserMemories, fail_at: int) -> None:
        self.inner, self.fail_at, self.writes = inner, fail_at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert(self, entries: Sequence[MemoryEntry]) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise RuntimeError("killed")
        self.inner.upsert(entries)


@pytest.mark.parametrize("fail_at", [1, 2])
def test_reflection_rerun_after_a_crash_gives_no_duplicates(tmp_path: Path, fail_at: int) -> None:
    def run(handle: Any) -> None:
        apply_candidates(handle, "s2", [
            Candidate("dislike", "Not into rock any more.", ("genre:rock",), explicit=True, turns=(1,), key="r"),
            Candidate("fact", "Is vegetarian.", topic="fact:am:vegetarian", turns=(2,)),
            Candidate("like", "Said yes to jazz.", ("genre:jazz",), turns=(3,), key="j"),
        ])

    def seed(handle: UserMemories) -> None:
        apply_candidates(handle, "s1", [
            Candidate("like", "Asked for rock.", ("genre:rock",), explicit=True, turns=(1,), key="r"),
            Candidate("fact", "Is vegetarian.", topic="fact:am:vegetarian", turns=(1,)),
        ])

    clean = ChromaMemoryStore.persistent(tmp_path / "clean").for_user("ann")
    seed(clean)
    run(clean)
    crashed = ChromaMemoryStore.persistent(tmp_path / "crashed").for_user("ann")
    seed(crashed)
    with pytest.raises(RuntimeError, match="killed"):
        run(_Crashing(crashed, fail_at))
    run(crashed)  # the rerun
    run(crashed)  # and another: still nothing twice

    def shape(h: UserMemories) -> list[tuple[Any, ...]]:
        return sorted((e.id, e.kind, e.valid_to is None, e.support) for e in h.entries())

    assert shape(crashed) == shape(clean)
    assert len([e for e in crashed.entries() if e.kind == "fact"]) == 1


def test_reflecting_the_same_session_twice_changes_nothing(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], message="jazz. I have kids."))
    first = mem.reflect("ann", "s1")
    kept = sorted((e.id, e.support) for e in _valid(mem))
    second = mem.reflect("ann", "s1")
    assert kept and first.skipped and not second.added and not second.merged and not second.superseded
    assert sorted((e.id, e.support) for e in _valid(mem)) == kept


def test_offline_candidates_map_statements_to_catalog(toy_graph: KnowledgeGraph) -> None:
    rec = SessionRecord("ann", "s1")
    update_record(rec, _state("s1", 1, message="I love folk. I adore polka."))
    mem = ReflectiveMemory(None, graph=toy_graph)
    cands = offline_candidates(rec, lookup=mem._lookup)
    assert [(c.kind, c.attribute_ids) for c in cands] == [("like", ("genre:folk",))]  # polka is not in it


# ---------------------------------------------------------------------- LLM
_LLM_JSON = {"memories": [
    {"kind": "fact", "text": "Is vegetarian.", "topic": "diet", "stated": True, "turns": [1]},
    {"kind": "dislike", "text": "Done with rock.", "attribute_ids": ["genre:rock"], "stated": True, "turns": [1]},
    {"kind": "like", "text": "Likes polka.", "attribute_ids": ["genre:polka"], "turns": [2]},
]}


class _ToolFake(GenericFakeChatModel):
    """A fake chat model with tool calling, so ``with_structured_output`` takes its real path."""

    def bind_tools(self, tools: Iterable[Any], **kwargs: Any) -> Any:
        return self


def test_llm_reflection_with_structured_output(toy_graph: KnowledgeGraph) -> None:
    call = {"name": "ReflectionOutput", "args": _LLM_JSON, "id": "call-1"}
    model = _ToolFake(messages=iter([AIMessage(content="", tool_calls=[call])]))
    cands = llm_candidates(model, SessionRecord("ann", "s1"), known_attributes=set(toy_graph.attr_ids))
    assert [(c.kind, c.attribute_ids, c.explicit) for c in cands] == [
        ("fact", (), True), ("dislike", ("genre:rock",), True)]  # the unknown attribute is dropped


def test_llm_reflection_from_json_text_and_through_memory(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    model = FakeListChatModel(responses=["Here you go: " + json.dumps(_LLM_JSON)])
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "s"), graph=toy_graph, llm=model,
                           settings=MemorySettings(reflect_every=0))
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], message="jazz"))
    mem.reflect("ann", "s1")
    texts = {e.text for e in _valid(mem)}
    assert {"Is vegetarian.", "Done with rock."} <= texts and "Likes polka." not in texts


def test_an_invalid_llm_reply_falls_back_to_offline(tmp_path: Path, toy_graph: KnowledgeGraph,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    bad = json.dumps({"memories": [{"kind": "opinion", "text": "?"}]})
    with pytest.raises(ReflectionError):
        llm_candidates(FakeListChatModel(responses=[bad]), SessionRecord("ann", "s1"))
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "s"), graph=toy_graph,
                           llm=FakeListChatModel(responses=["no json here"]), settings=MemorySettings(reflect_every=0))
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], message="I love jazz"))
    mem.reflect("ann", "s1")
    assert any(e.kind == "like" for e in _valid(mem)) and "LLM reflection unusable" in caplog.text


def test_reflection_every_n_turns(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "s"), graph=toy_graph,
                           settings=MemorySettings(reflect_every=2))
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], message="jazz"))
    assert _valid(mem) == []
    mem.observe("ann", _state("s1", 2, accepted=["genre:jazz"], rejected=["mood:calm"]))
    assert {e.kind for e in _valid(mem)} == {"session_summary"}


def test_a_statement_is_written_in_the_turn_it_is_said(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, rejected=["genre:jazz"], message="I'm done with jazz now"))
    # no reflect(), no end of session: the one-message session already counts
    assert [e.text for e in _valid(mem)] == ["Done with jazz."] and mem.avoid("ann") == ["genre:jazz"]


def test_start_over_closes_a_segment_and_reflects_it(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _state("s1", 1, accepted=["genre:jazz"], message="I love jazz"))
    mem.observe("ann", _state("s1", 2, action="restart"))  # the dialogue was reset
    assert [e.session_id for e in _valid(mem) if e.kind == "like"] == ["s1"]
    mem.observe("ann", _state("s1", 3, accepted=["genre:rock"], message="I love rock", action="accepted"))
    assert sorted(e.session_id for e in _valid(mem) if e.kind == "like") == ["s1", "s1#1"]
