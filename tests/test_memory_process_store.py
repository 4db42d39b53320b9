"""The embedded store in a process of its own: what is written survives, errors arrive as the
embedded store raises them, a child that dies is replaced, and reads do not wait behind writes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from crs.api import Recommender
from crs.memory import MemoryEntry, MemoryStoreError, StoreUnavailable
from crs.memory.process_store import ProcessMemoryStore
from crs.settings import Settings


def _like(user: str, ident: str, text: str) -> MemoryEntry:
    return MemoryEntry(id=ident, user_id=user, kind="like", text=text)


def test_writes_persist_and_reopen_in_the_same_folder(tmp_path: Path) -> None:
    store = ProcessMemoryStore.persistent(tmp_path / "memory")
    store.for_user("ann").upsert([_like("ann", "m1", "Likes jazz.")])
    child = store._proc
    assert child is not None and child.pid != os.getpid()
    store.close()
    assert child.poll() is not None  # closed: the child has exited
    again = ProcessMemoryStore.persistent(tmp_path / "memory")
    assert [e.text for e in again.for_user("ann").entries()] == ["Likes jazz."]
    assert again.state_dir == tmp_path / "memory" / "derived"
    again.close()


def test_the_childs_errors_arrive_as_the_embedded_store_raises_them(tmp_path: Path) -> None:
    store = ProcessMemoryStore.persistent(tmp_path / "memory")
    with pytest.raises(ValueError, match="belongs to 'bob'"):
        store.for_user("ann").upsert([_like("bob", "m1", "Likes rock.")])
    with pytest.raises(ValueError, match="non-empty string"):
        store.for_user("")
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.for_user("ann").entries()


def test_a_child_that_dies_fails_one_call_clearly_and_the_next_starts_another(tmp_path: Path) -> None:
    store = ProcessMemoryStore.persistent(tmp_path / "memory")
    store.for_user("ann").upsert([_like("ann", "m1", "Likes jazz.")])
    first = store._proc
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    # Killed between calls: the next call finds it gone and starts a new one.
    assert [e.id for e in store.for_user("ann").entries()] == ["m1"]
    second = store._proc
    assert second is not None and second.pid != first.pid
    # Killed during a call (a long write): that call fails, naming what happened; what was
    # written before stays, and the next call starts a third child, which opens the store the
    # killed one left mid-write (SQLite rolls that back; it is not called damaged).
    many = [_like("ann", f"x{i}", f"Likes song number {i} a lot.") for i in range(3000)]
    conn = store._conn
    assert conn is not None

    class KillAfterSend:  # the kill lands while the child works on the call
        def send(self, message: object) -> None:
            conn.send(message)
            threading.Timer(0.2, lambda: os.kill(second.pid, signal.SIGKILL)).start()

        def __getattr__(self, name: str) -> object:
            return getattr(conn, name)

    store._conn = KillAfterSend()  # type: ignore[assignment]
    with pytest.raises(StoreUnavailable, match=r"its process stopped .* during upsert"):
        store.for_user("ann").upsert(many)
    assert "m1" in {e.id for e in store.for_user("ann").entries()}
    assert store._proc is not None and store._proc.pid not in (first.pid, second.pid)
    store.close()


def test_a_recommender_remembers_through_a_child_that_died(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, memory_process=True))
    store = rec.memory.store  # type: ignore[union-attr]
    assert isinstance(store, ProcessMemoryStore)
    rec.chat("ann", "s1", "I love jazz")
    rec.memory.flush("ann")  # type: ignore[union-attr]
    assert store._proc is not None
    os.kill(store._proc.pid, signal.SIGKILL)
    store._proc.wait(10)
    assert any("jazz" in m.text for m in rec.memories("ann"))
    reply = rec.chat("ann", "s2", "hi")
    assert "jazz" in reply.text.lower()  # welcome back, with what was said
    rec.chat("ann", "s2", "I can't stand metal")
    rec.memory.flush("ann")  # type: ignore[union-attr]
    assert {"jazz", "metal"} <= {w for m in rec.memories("ann") for w in ("jazz", "metal") if w in m.text.lower()}
    child = store._proc
    rec.chat("ann", "s2", "I'm vegetarian")  # written in its turn, in the background
    rec.close()  # waits for it, then stops the child
    assert child is not None and child.poll() is not None and store._proc is None
    assert any("vegetarian" in m.text.lower() for m in ProcessMemoryStore.persistent(
        tmp_path / "memory").for_user("ann").entries())


def test_reads_go_before_waiting_writes(tmp_path: Path) -> None:
    store = ProcessMemoryStore.persistent(tmp_path / "memory")
    store.for_user("bob").upsert([_like("bob", "b1", "Likes folk.")])
    order: list[str] = []
    original = store._send
    gate = threading.Event()

    def record(user_id: str | None, method: str, *rest: object) -> object:
        if method == "heartbeat" and not gate.is_set():
            gate.wait(10)  # the pipe is busy until both calls below are waiting
        order.append(method)
        return original(user_id, method, *rest)  # type: ignore[arg-type]

    store._send = record  # type: ignore[method-assign]
    busy = threading.Thread(target=store.heartbeat)
    busy.start()
    time.sleep(0.2)
    write = threading.Thread(target=store.for_user("ann").upsert, args=([_like("ann", "m1", "Likes jazz.")],))
    write.start()
    time.sleep(0.2)
    read = threading.Thread(target=store.for_user("bob").entries)
    read.start()
    time.sleep(0.2)
    gate.set()
    for t in (busy, write, read):
        t.join(30)
    assert order == ["heartbeat", "entries", "upsert"]
    store.close()


def test_an_unpicklable_backend_error_still_arrives_with_its_text() -> None:
    from crs.memory.process_store import _portable

    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:  # cannot be rebuilt from its args
            super().__init__(f"odd {a} {b}")

    err = _portable(Odd(1, 2))
    assert isinstance(err, MemoryStoreError) and "Odd: odd 1 2" in str(err)
    kept = _portable(StoreUnavailable("down"))
    assert type(kept) is StoreUnavailable


def test_a_person_with_no_memories_is_answered_without_asking_the_child(tmp_path: Path) -> None:
    store = ProcessMemoryStore.persistent(tmp_path / "memory")
    store.for_user("ann").upsert([_like("ann", "m1", "Likes jazz.")])
    sent: list[str] = []
    original = store._send

    def count(user_id: str | None, method: str, *rest: object) -> object:
        sent.append(method)
        return original(user_id, method, *rest)  # type: ignore[arg-type]

    store._send = count  # type: ignore[method-assign]
    new = store.for_user("newcomer")
    assert new.entries(valid_only=True) == [] and new.count() == 0 and new.get(["m1"]) == []
    assert sent == []
    assert [e.id for e in store.for_user("ann").entries()] == ["m1"] and sent == ["entries"]
    store.close()
    # what is known survives a restart of the child: read back from the store's own listing
    again = ProcessMemoryStore.persistent(tmp_path / "memory")
    assert again.for_user("ann").count() == 1 and again.for_user("newcomer").count() == 0
    again.close()


def test_servers_run_the_store_in_a_process_of_its_own_unless_the_settings_say_otherwise(tmp_path: Path) -> None:
    from crs.cli import _serving
    from crs.settings import load_settings

    assert Settings().memory_process is False  # a program embedding crs keeps one process
    assert _serving(Settings()).memory_process is True  # crs serve, crs demo
    assert _serving(Settings(memory_process=False)).memory_process is False
    file = tmp_path / "crs.toml"
    file.write_text("memory_process = false\n", "utf-8")
    assert _serving(load_settings(file)).memory_process is False
