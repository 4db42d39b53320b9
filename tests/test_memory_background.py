"""Memory writes off the reply path: readers still see them at once, forget-me drops them, the
per-user working state is bounded, and a process that exits right after a turn keeps it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from crs.kb import KnowledgeGraph
from crs.memory import ChromaMemoryStore, MemorySettings, ReflectiveMemory


def _said(session: str, turn: int, message: str, *, accepted: tuple[str, ...] = (),
          rejected: tuple[str, ...] = (), action: str = "ask", item: str | None = None) -> dict[str, Any]:
    return {
        "session_id": session,
        "dialogue": {"turn": turn, "accepted": list(accepted), "rejected": list(rejected), "question": None,
                     "options": [], "accepted_item": item, "rejected_items": [], "recommended": []},
        "transcript": [{"role": "user", "content": message}],
        "reply": {"action": action},
    }


@pytest.fixture
def mem(tmp_path: Path, toy_graph: KnowledgeGraph) -> ReflectiveMemory:
    return ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph,
                            settings=MemorySettings(reflect_every=0), background=True)


def _stored(mem: ReflectiveMemory, user: str) -> list[str]:
    assert mem.store is not None
    return [e.text for e in mem.store.for_user(user).entries(valid_only=True)]


def _block(mem: ReflectiveMemory, user: str = "ann") -> threading.Event:
    """Hold the user's writes behind a task until the returned event is set."""
    gate, started = threading.Event(), threading.Event()
    assert mem.reflector is not None

    def wait() -> None:
        started.set()
        gate.wait(10)

    mem.reflector.submit(user, wait)
    assert started.wait(5)
    return gate


def _chose(mem: ReflectiveMemory, user: str, session: str = "s1") -> None:
    """A session that ends with a choice (reflected in the background)."""
    mem.observe(user, _said(session, 1, "some jazz", accepted=("genre:jazz",)))
    mem.observe(user, _said(session, 2, "the first one", accepted=("genre:jazz",), item="kind-of-blue",
                            action="accepted"))


def test_a_stated_preference_is_written_in_the_turn_even_with_the_worker_busy(mem: ReflectiveMemory) -> None:
    gate = _block(mem)
    # the next turn may be another process's
    mem.observe("ann", _said("s1", 1, "I'm done with rock", rejected=("genre:rock",)))
    assert any("rock" in text for text in _stored(mem, "ann"))
    gate.set()


def test_a_turn_does_not_wait_for_the_write_but_every_reader_does(mem: ReflectiveMemory) -> None:
    gate = _block(mem)
    _chose(mem, "ann")  # returns with the session's reflection queued
    assert _stored(mem, "ann") == []  # not written yet: the worker is busy
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.append(mem.memories("ann")))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and seen == []  # the reader waits for ann's queued write ...
    gate.set()
    reader.join(10)
    assert any("Kind of Blue" in e.text for e in seen[0])  # ... and then sees it
    assert "kind-of-blue" in mem.chosen("ann")


def test_forget_me_drops_queued_writes_so_nothing_comes_back(mem: ReflectiveMemory) -> None:
    mem.observe("ann", _said("s0", 1, "I love jazz", accepted=("genre:jazz",)))  # written in the turn
    gate = _block(mem)
    _chose(mem, "ann")  # queued behind the blocked task
    assert mem.reflector is not None and mem.reflector.pending("ann") == 2  # the blocker and the reflection
    _chose(mem, "bob")  # another user's writes do not wait behind ann's
    assert mem.flush("bob", timeout=10) and _stored(mem, "bob")
    forgetting = threading.Thread(target=lambda: reports.append(mem.forget("ann")))
    reports: list[dict[str, Any]] = []
    forgetting.start()
    gate.set()
    forgetting.join(10)
    assert reports and reports[0]["memories"] >= 1
    assert mem.flush(timeout=10)
    assert _stored(mem, "ann") == [] and mem.memories("ann") == []


def test_forget_me_waits_for_a_write_already_running(mem: ReflectiveMemory, monkeypatch) -> None:
    running, finish = threading.Event(), threading.Event()
    real = mem._reflect_record

    def slow(record: Any) -> Any:
        running.set()
        finish.wait(10)
        return real(record)

    monkeypatch.setattr(mem, "_reflect_record", slow)
    _chose(mem, "ann")
    assert running.wait(5)
    done: list[Any] = []
    forgetting = threading.Thread(target=lambda: done.append(mem.forget("ann")))
    forgetting.start()
    forgetting.join(0.3)
    assert forgetting.is_alive()  # it waits: the running write would otherwise land after it
    finish.set()
    forgetting.join(10)
    assert done and _stored(mem, "ann") == []


def test_per_user_working_state_is_bounded(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "store"), graph=toy_graph,
                           settings=MemorySettings(reflect_every=0), max_users=3)
    with mem._held("keep"):  # a user whose lock is held is never dropped
        for n in range(10):
            mem.observe(f"user{n}", _said("s1", 1, "I love jazz", accepted=("genre:jazz",)))
        assert "keep" in mem._users
    assert len(mem._users) == 3
    assert mem.profile("user0").user_id == "user0"  # a dropped user is read back from the store


def test_a_process_that_exits_right_after_a_turn_keeps_what_was_said(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import time
        from crs import Recommender, Settings
        from crs.api import load_knowledge
        from crs.memory import ReflectiveMemory
        settings = Settings(state_dir={str(tmp_path)!r}, embeddings=False)
        memory = ReflectiveMemory.open(settings.state_dir / "memory", graph=load_knowledge(settings)[0],
                                       background=True)
        rec = Recommender.from_settings(settings, memory=memory)
        reply = rec.chat("ann", "s1", "just recommend something")
        for n in range(4):  # every writer thread busy: ann's write is still queued at exit
            rec.memory.reflector.submit("other" + str(n), lambda: time.sleep(1))
        rec.act("ann", "s1", dict(type="accept_item", item_id=reply.recommendations[0].id))
        assert rec.memory.reflector.pending("ann") == 1
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, cwd=tmp_path)
    from crs import Recommender, Settings

    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    assert any(e.evidence_source == "chosen" for e in rec.memories("ann"))
