"""Long-term memory with several workers: one session's turns served by different workers are
reflected as in one process, and forget-me handled by one worker leaves nothing that another
could write back.

A worker is what ``crs serve --workers N`` runs in each process: a ``Recommender`` built from the
same settings. Here each test drives two of them directly, so which worker serves which turn is
chosen, not left to the kernel's SO_REUSEPORT hashing. The real-service tests use a real
PostgreSQL (checkpoints) and a real Chroma server (memories); the first test shares one SQLite
checkpoint file and one embedded Chroma store between two workers of one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crs import Recommender, Settings
from crs.api import load_knowledge
from crs.graphs.checkpoint import sqlite_checkpointer
from crs.memory import ChromaMemoryStore, MemoryEntry, ReflectiveMemory

Worker = Recommender


def _unique(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


def _session(workers: list[Worker], user: str, session: str = "s1") -> str:
    """A session whose turns alternate between the workers (the first one starts it). It states a
    like in turn 1, answers the bot's question, asks for a list, takes the first item on the
    next worker and says thanks on the one after: the id of the item chosen."""
    def on(turn: int) -> Worker:
        return workers[turn % len(workers)]

    on(0).chat(user, session, "I love jazz. I'm a zorblaxian.")
    on(1).chat(user, session, "no")
    listed = on(2).chat(user, session, "just recommend something")
    assert listed.action == "recommend" and listed.recommendations, listed
    chosen = listed.recommendations[0].id
    assert on(3).act(user, session, {"type": "accept_item", "item_id": chosen}).action == "accepted"
    assert on(4).chat(user, session, "thanks").action == "thanks"
    return chosen


def _memories(worker: Worker, user: str) -> list[MemoryEntry]:
    """Every memory of the user in the shared store, closed ones too."""
    memory = worker.memory
    assert isinstance(memory, ReflectiveMemory) and memory.store is not None
    return memory.store.for_user(user).entries()


def _settle(workers: list[Worker]) -> None:
    for worker in workers:
        assert isinstance(worker.memory, ReflectiveMemory)
        assert worker.memory.flush(timeout=60)


def _shape(entries: list[MemoryEntry]) -> list[tuple[Any, ...]]:
    """What a memory says and how much evidence it counts, without who and when."""
    return sorted((e.kind, e.text, e.attribute_ids, e.item_ids, e.turns, e.support, len(e.merged_ids),
                   e.valid_to is None, e.session_id) for e in entries)


def _spread_is_reflected_as_one_process(make_worker: Callable[[], Worker]) -> None:
    workers = [make_worker(), make_worker()]
    alone = make_worker()
    spread_user, alone_user = _unique("ann"), _unique("solo")
    chosen = _session(workers, spread_user)
    assert _session([alone], alone_user) == chosen  # the same conversation, as far as the bot can tell
    _settle([*workers, alone])
    spread, single = _memories(workers[0], spread_user), _memories(alone, alone_user)
    texts = [e.text for e in spread]
    # the statement of turn 1 (worker 0) and the choice made on worker 1: each remembered, once
    assert texts.count("Loves jazz.") == 1 and sum("zorblaxian" in t for t in texts) == 1, texts
    choices = [e for e in spread if e.evidence_source == "chosen"]
    assert len(choices) == 1 and choices[0].item_ids == (chosen,), texts
    assert choices[0].support == 1 and choices[0].merged_ids == (), choices[0]  # not counted twice
    assert _shape(spread) == _shape(single)


def test_a_session_spread_over_two_workers_is_remembered_as_in_one_process(tmp_path: Path) -> None:
    """Two workers of one process on one SQLite checkpoint file and one embedded Chroma store."""
    settings = Settings(state_dir=tmp_path, embeddings=False)
    graph, vocabulary = load_knowledge(settings)  # the bundled catalog
    store = ChromaMemoryStore.persistent(tmp_path / "memory")

    def worker() -> Worker:
        return Recommender(graph, vocabulary=vocabulary, settings=settings,
                           memory=ReflectiveMemory(store, graph=graph),
                           checkpointer=sqlite_checkpointer(tmp_path / "checkpoints.sqlite"))

    _spread_is_reflected_as_one_process(worker)


# ------------------------------------------------------- PostgreSQL checkpoints, a Chroma server


def _settings(tmp_path: Path, url: str, chroma: tuple[str, int]) -> Settings:
    return Settings(state_dir=tmp_path / "state", checkpoints_url=url, embeddings=False,
                    memory_host=chroma[0], memory_port=chroma[1])


def test_two_workers_on_shared_stores_remember_a_spread_session_as_one_process(
        tmp_path: Path, postgres_url: str, chroma_address: tuple[str, int]) -> None:
    _spread_is_reflected_as_one_process(
        lambda: Recommender.from_settings(_settings(tmp_path, postgres_url, chroma_address)))


def _rows_holding(worker: Worker, user: str, word: str) -> dict[str, int]:
    """Rows of the user's threads in the checkpoint tables and the transcript log whose raw bytes hold ``word``."""
    saver: Any = worker.checkpointer
    found = {}
    with saver._cursor() as cur:
        for table, column in (("checkpoints", "convert_to(checkpoint::text, 'UTF8')"),
                              ("checkpoints", "convert_to(metadata::text, 'UTF8')"),
                              ("checkpoint_blobs", "blob"), ("checkpoint_writes", "blob"),
                              ("crs_transcript", "convert_to(line, 'UTF8')")):
            cur.execute(f"SELECT count(*) AS n FROM {table} WHERE position(%s IN thread_id) > 0 "
                        f"AND position(%s::bytea IN {column}) > 0", (user, word.encode()))
            found[f"{table}.{column}"] = int(cur.fetchone()["n"])
    return {k: n for k, n in found.items() if n}


def test_forget_me_on_one_worker_leaves_nothing_for_another_to_write_back(
        tmp_path: Path, postgres_url: str, chroma_address: tuple[str, int]) -> None:
    settings = _settings(tmp_path, postgres_url, chroma_address)
    one, two = Recommender.from_settings(settings), Recommender.from_settings(settings)
    user = _unique("zed")
    one.chat(user, "s0", "I love jazz")  # an earlier session: the next one starts from its memories
    one.chat(user, "s1", "I'm a zorblaxian. Some jazz please")  # worker one recalls them for s1
    two.chat(user, "s1", "no")
    listed = one.chat(user, "s1", "just recommend something")
    assert listed.recommendations
    _settle([one, two])
    assert any("zorblaxian" in e.text for e in _memories(two, user))
    assert _rows_holding(one, user, "zorblax")  # (what the search below looks for is there to find)
    # The session is still open (worker one served most of it) when worker two forgets the user.
    report = two.forget(user)
    assert report["threads"] == 2 and report["memories"] >= 2 and "not_deleted" not in report
    # The person comes back on worker one: a new conversation under the same session id, with a
    # list shown and an item passed on (what credits the memories a session was started with).
    one.chat(user, "s1", "hello")
    again = one.chat(user, "s1", "just recommend something")
    assert again.recommendations
    one.act(user, "s1", {"type": "reject_items", "item_ids": [again.recommendations[0].id]})
    _settle([one, two])
    assert _memories(one, user) == [] and two.memories(user) == []  # nothing came back
    assert _rows_holding(one, user, "zorblax") == {}
    assert _rows_holding(one, user, "I love jazz") == {}
    for worker in (one, two):
        memory = worker.memory
        assert isinstance(memory, ReflectiveMemory)
        path = memory.rerankers.path(user)
        assert path is None or not path.exists()  # no reranker rebuilt from the forgotten memories
    state = one.app.get_state({"configurable": {"thread_id": f"{len(user)}:{user}:s1"}}).values
    assert "zorblax" not in repr(state) and "I love jazz" not in repr(state)


def test_no_memory_write_lands_after_forget_me_on_another_worker(
        tmp_path: Path, postgres_url: str, chroma_address: tuple[str, int]) -> None:
    """Worker one's writes to the Chroma server are slow (half a second each); worker two forgets
    the person the moment worker one's session-ending turn has answered. Nothing may come back."""
    settings = _settings(tmp_path, postgres_url, chroma_address)
    one, two = Recommender.from_settings(settings), Recommender.from_settings(settings)
    assert isinstance(one.memory, ReflectiveMemory) and one.memory.store is not None
    store = one.memory.store
    handle_for = store.for_user

    def slow_handle(user_id: str) -> Any:
        handle = handle_for(user_id)
        upsert = handle.upsert

        def late(entries: Any) -> None:
            time.sleep(0.5)
            upsert(entries)

        handle.upsert = late  # type: ignore[method-assign]
        return handle

    store.for_user = slow_handle  # type: ignore[method-assign]
    user = _unique("yve")
    one.chat(user, "s1", "I'm a zorblaxian and I love jazz")
    listed = one.chat(user, "s1", "just recommend something")
    assert listed.recommendations
    assert one.act(user, "s1", {"type": "accept_item", "item_id": listed.recommendations[0].id}).action == "accepted"
    report = two.forget(user)  # the turn has answered: whatever it writes is written by now
    assert "not_deleted" not in report
    _settle([one, two])
    time.sleep(1.0)  # longer than any write still under way
    assert _memories(two, user) == [] and two.memories(user) == []
