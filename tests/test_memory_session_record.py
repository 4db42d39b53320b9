"""The session's record carried in the conversation state: it survives a checkpoint, stays small
however long the session runs, and what a failed background reflection could not write is put
back only into the same conversation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crs.kb import KnowledgeGraph
from crs.memory import ChromaMemoryStore, MemorySettings, MemoryStoreError, ReflectiveMemory, SessionRecord
from crs.memory.session import TurnEvent


def _said(turn: int, message: str | None, *, accepted: tuple[str, ...] = ("genre:jazz",), action: str = "ask",
          item: str | None = None, seeds: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "session_id": "s1",
        "dialogue": {"turn": turn, "accepted": list(accepted), "rejected": [], "question": None, "options": [],
                     "accepted_item": item, "rejected_items": [], "recommended": ["kind-of-blue"],
                     "seeds": list(seeds), "prior": [["genre:jazz", 1.0]] * 20},
        "transcript": [{"role": "user", "content": message}] if message else [],
        "reply": {"action": action},
    }


def _texts(mem: ReflectiveMemory, user: str = "ann") -> list[str]:
    assert mem.store is not None
    return sorted(e.text for e in mem.store.for_user(user).entries())


def test_a_record_comes_back_from_a_checkpoint_as_it_went_in() -> None:
    record = SessionRecord("ann", "s1#1", events=[
        TurnEvent(turn=1, accepted=("genre:jazz",), volunteered=("genre:jazz",), message="jazz"),
        TurnEvent(turn=3, accepted_item="kind-of-blue", seeds=("blue-train",))],
        dialogue={"turn": 3, "accepted": ["genre:jazz"], "accepted_item": "kind-of-blue"},
        recommended_ids=("kind-of-blue",), segment=1, reflected_turn=2, token="abc")
    data = json.loads(json.dumps(record.to_dict()))  # what a checkpoint keeps: plain data
    assert SessionRecord.from_dict("ann", data) == record
    assert "rejected" not in data["events"][0]  # empty fields are left out


def test_the_carried_record_stays_small_however_long_the_session(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph,
                           settings=MemorySettings(reflect_every=0))
    record = None
    sizes = []
    for turn in range(1, 101):
        record = mem.observe_session("ann", _said(turn, f"hmm, not sure {turn}"), record)  # type: ignore[arg-type]
        assert record is not None
        sizes.append(len(json.dumps(record)))
    assert len(record["events"]) <= 32 and max(sizes) < 8000, (len(record["events"]), max(sizes))
    assert "prior" not in record["dialogue"]  # of the dialogue, only what the next diff needs
    assert mem.store is not None
    assert [e.kind for e in mem.store.for_user("ann").entries()] == ["session_summary"]  # reflected on the way


def test_a_choice_reflected_twice_is_remembered_once(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph)
    record = mem.observe_session("ann", _said(1, "some jazz like Blue Train", seeds=("blue-train",)), None)
    record = mem.observe_session("ann", _said(2, None, item="kind-of-blue", seeds=("blue-train",),
                                               action="accepted"), record)
    assert record is not None and all(not e.get("message") for e in record["events"])  # reflected: words gone
    mem.observe_session("ann", _said(3, "thanks", item="kind-of-blue", seeds=("blue-train",), action="thanks"),
                        record)
    assert mem.store is not None
    entries = [e for e in mem.store.for_user("ann").entries() if e.kind == "like"]
    assert sorted((e.text, e.turns, e.support) for e in entries) == [
        ("Chose Kind of Blue — Miles Davis.", (2,), 1), ("Named Blue Train — John Coltrane as an example.", (1,), 1)]


def test_a_failed_background_reflection_goes_back_into_its_own_conversation_only(
        tmp_path: Path, toy_graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph,
                           settings=MemorySettings(reflect_every=0), background=True)
    reflect = mem._reflect_record
    failures = [MemoryStoreError("the memory store is restarting")]
    reflected: list[SessionRecord] = []

    def flaky(record: SessionRecord) -> Any:
        reflected.append(record)
        if failures:
            raise failures.pop()
        return reflect(record)

    monkeypatch.setattr(mem, "_reflect_record", flaky)
    record = mem.observe_session("ann", _said(1, "some jazz"), None)
    record = mem.observe_session("ann", _said(2, None, item="kind-of-blue", action="accepted"), record)
    assert mem.flush(timeout=30) and _texts(mem) == []  # the store refused it
    assert record is not None and record["events"] == [{"turn": 2, "accepted_item": "kind-of-blue"}]
    # Another conversation of the same person (a new one after forget-me, say) gets none of it back.
    other = mem.observe_session("ann", {**_said(1, "some rock", accepted=("genre:rock",)), "session_id": "s2"}, None)
    assert other is not None and [e.get("message") for e in other["events"]] == ["some rock"]
    # Its own conversation's next turn, in this process, takes the turns back and reflects them.
    after = mem.observe_session("ann", _said(3, "thanks", item="kind-of-blue", action="thanks"), record)
    assert mem.flush(timeout=30)
    assert after is not None and not any(e.get("message") for e in after["events"])
    assert reflected[-1].messages() == [(1, "some jazz"), (3, "thanks")]  # what an LLM reflection reads
    assert "Chose Kind of Blue — Miles Davis." in _texts(mem)
    assert any("looked for jazz" in t.lower() for t in _texts(mem))  # the session's summary


def test_turns_run_again_after_a_crash_add_no_memory_twice(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    """A worker that dies after a turn's reflection but before its checkpoint: the retry runs the
    turn again from the same carried record, and writes the same memories, with the same ids."""
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph)
    first = [mem.observe_session("ann", _said(1, "I love jazz. I have kids."), None) for _ in range(2)]
    assert first[0] is not None and first[0]["token"] != first[1]["token"]  # two runs of the first turn
    for _ in range(2):
        mem.observe_session("ann", _said(2, None, item="kind-of-blue", action="accepted"), first[1])
    assert mem.store is not None
    entries = mem.store.for_user("ann").entries()
    assert sorted((e.kind, e.support, e.merged_ids) for e in entries) == [
        ("fact", 1, ()), ("like", 1, ()), ("like", 1, ()), ("session_summary", 1, ())]
    assert sorted(e.text for e in entries if e.kind != "session_summary") == [
        "Chose Kind of Blue — Miles Davis.", "Has kids.", "Loves jazz."]


def test_the_record_stays_bounded_while_the_store_refuses_every_reflection(
        tmp_path: Path, toy_graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph,
                           settings=MemorySettings(reflect_every=0))

    def down(record: SessionRecord) -> Any:
        raise MemoryStoreError("the memory store is down")

    monkeypatch.setattr(mem, "_reflect_record", down)
    record = mem.observe_session("ann", _said(1, None, item="kind-of-blue", action="accepted"), None)
    for turn in range(2, 150):
        record = mem.observe_session("ann", _said(turn, f"hmm {turn}", item="kind-of-blue"), record)
    assert record is not None and sum("message" in e for e in record["events"]) == 64  # the newest, whole
    assert record["events"][0] == {"turn": 1, "accepted_item": "kind-of-blue"}  # the choice keeps its turn
    assert len(record["events"]) == 65
    assert record["events"][-1]["message"] == "hmm 149"  # the newest turns are kept
    assert "1 unreflected turns dropped" in caplog.text
