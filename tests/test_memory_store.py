"""The memory store contract, run against the embedded store (in this process and in one of its
own), a real ``chroma run`` server and the in-memory store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crs.memory import (
    ChromaMemoryStore,
    InMemoryStore,
    IsolationError,
    MemoryEntry,
    MemoryStore,
    MemoryStoreError,
    ReflectiveMemory,
    StoreCorrupted,
    StoreUnavailable,
    UserMemories,
)
from crs.memory.chroma_store import client_settings
from crs.memory.process_store import ProcessMemoryStore
from tests.conftest import missing
from tests.services import CHROMA, Chroma, free_port


class ChromaServer(Chroma):
    """``chroma run`` on loopback (tests/services.py); where the command is missing the test
    skips, and fails in CI."""

    def start(self, timeout: float = 30.0, *, detach: bool = False) -> ChromaServer:
        if not CHROMA.exists():
            missing("SERVICES", f"the chroma command is not installed next to {sys.executable}")
        super().start(timeout, detach=detach)
        return self


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "process", "http", "in-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore]:
    if request.param == "in-memory":
        yield InMemoryStore()
        return
    if request.param == "process":
        in_child = ProcessMemoryStore.persistent(tmp_path / "store")
        yield in_child
        in_child.close()
        return
    if request.param == "embedded":
        yield ChromaMemoryStore.persistent(tmp_path / "store")
        return
    server: ChromaServer = request.getfixturevalue("chroma_server")
    yield ChromaMemoryStore.http("127.0.0.1", server.port, state_dir=tmp_path / "derived")
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=client_settings())
    for col in client.list_collections():  # the server outlives the test: start the next one empty
        client.delete_collection(col.name)


def _entry(user: str, ident: str, text: str, kind: str = "fact", **kw: object) -> MemoryEntry:
    return MemoryEntry(id=ident, user_id=user, kind=kind, text=text, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------- contract
def test_handles_satisfy_the_protocol(store: MemoryStore) -> None:
    assert isinstance(store, MemoryStore)
    assert isinstance(store.for_user("ann"), UserMemories)


def test_upsert_get_entries_roundtrip(store: MemoryStore) -> None:
    h = store.for_user("ann")
    e = _entry("ann", "m1", "Is vegetarian.", topic="fact:am:vegetarian", turns=(1, 2))
    h.upsert([e])
    assert h.get(["m1"]) == [e]
    assert h.entries() == [e]
    assert h.count() == 1
    h.upsert([e.model_copy(update={"support": 3})])  # upsert replaces, never duplicates
    assert h.count() == 1 and h.get(["m1"])[0].support == 3


def test_search_ranks_by_similarity_and_returns_vectors(store: MemoryStore) -> None:
    h = store.for_user("ann")
    h.upsert([_entry("ann", "a", "Likes jazz and saxophone.", "like"),
              _entry("ann", "b", "Has two kids.", "fact"),
              _entry("ann", "c", "Prefers short replies.", "style")])
    qv, hits = h.search("jazz saxophone music", 3)
    assert qv.shape == (256,)
    assert hits[0].entry.id == "a"
    assert hits[0].similarity >= hits[-1].similarity
    assert hits[0].embedding.shape == (256,)


def test_valid_only_and_kind_filters(store: MemoryStore) -> None:
    h = store.for_user("ann")
    old = _entry("ann", "old", "Likes metal.", "like")
    h.upsert([old.model_copy(update={"valid_to": old.created_at}), _entry("ann", "new", "Likes jazz.", "like"),
              _entry("ann", "f", "Has kids.", "fact")])
    assert {e.id for e in h.entries(valid_only=True)} == {"new", "f"}
    assert {e.id for e in h.entries(kinds=["like"])} == {"old", "new"}
    _, hits = h.search("metal", 5)
    assert "old" not in {hit.entry.id for hit in hits}
    _, hits = h.search("metal", 5, valid_only=False)
    assert "old" in {hit.entry.id for hit in hits}


def test_valid_memories_are_found_behind_many_expired_ones(store: MemoryStore) -> None:
    h = store.for_user("ann")
    stale = [_entry("ann", f"old{k}", f"Likes metal band number {k}.", "like") for k in range(40)]
    h.upsert([e.model_copy(update={"valid_to": e.created_at}) for e in stale] + [_entry("ann", "kids", "Has kids.")])
    _, hits = h.search("metal band", 3)
    assert [hit.entry.id for hit in hits] == ["kids"]
    _, hits = h.search("metal band", 3, kinds=["fact"], valid_only=False)
    assert [hit.entry.id for hit in hits] == ["kids"]


def test_handles_are_isolated(store: MemoryStore) -> None:
    store.for_user("ann").upsert([_entry("ann", "same-id", "Ann likes jazz.", "like")])
    store.for_user("bob").upsert([_entry("bob", "same-id", "Bob likes metal.", "like")])
    assert [e.text for e in store.for_user("ann").get(["same-id"])] == ["Ann likes jazz."]
    _, hits = store.for_user("bob").search("Ann likes jazz", 10)
    assert [h.entry.user_id for h in hits] == ["bob"]
    with pytest.raises(ValueError, match="belongs to"):
        store.for_user("ann").upsert([_entry("bob", "x", "Bob's memory.")])


def test_delete_and_forget_user(store: MemoryStore) -> None:
    ann = store.for_user("ann")
    ann.upsert([_entry("ann", "a", "Likes jazz."), _entry("ann", "b", "Has kids.")])
    store.for_user("bob").upsert([_entry("bob", "c", "Likes metal.")])
    ann.delete(["a"])
    assert [e.id for e in ann.entries()] == ["b"]
    assert store.forget_user("ann") == 1
    assert store.for_user("ann").entries() == [] and store.for_user("ann").count() == 0
    assert store.for_user("ann").search("jazz", 5)[1] == []
    assert store.for_user("bob").count() == 1


def test_unknown_user_reads_are_empty(store: MemoryStore) -> None:
    h = store.for_user("nobody")
    assert h.entries() == [] and h.count() == 0 and h.get(["x"]) == [] and h.search("x", 3)[1] == []
    assert store.forget_user("nobody") == 0


# --------------------------------------------------------------- embedded
def test_persisted_collection_reopens_in_a_fresh_process(tmp_path: Path) -> None:
    store = ChromaMemoryStore.persistent(tmp_path / "store")
    store.for_user("ann").upsert([_entry("ann", "a", "Likes jazz and saxophone.", "like"),
                                  _entry("ann", "b", "Has two kids.")])
    code = f"""
import json, chromadb
import crs.memory  # registers the offline embedding function
from crs.memory.chroma_store import collection_name
client = chromadb.PersistentClient(path={str(tmp_path / 'store')!r}, settings=crs.memory.chroma_store.client_settings())
col = client.get_collection(collection_name("ann"))  # no embedding function passed: rebuilt from config
found = col.query(query_texts=["saxophone jazz"], n_results=1)
again = crs.memory.ChromaMemoryStore.persistent({str(tmp_path / 'store')!r}).for_user("ann").search("kids", 1)[1]
print(json.dumps([found["ids"][0][0], again[0].entry.id, col.configuration["embedding_function"].name()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["a", "b", "crs-offline-wordllama"]


@pytest.mark.slow
def test_isolation_with_a_thousand_users(tmp_path: Path) -> None:
    store = ChromaMemoryStore.persistent(tmp_path / "store")
    users = [f"user-{u:04d}" for u in range(1000)]
    for u in users:
        # Every user has the same memory ids and nearly the same texts: only the owner differs.
        store.for_user(u).upsert([_entry(u, "likes", f"Likes rock music ({u}).", "like"),
                                  _entry(u, "fact", f"Has a dog called {u}.")])
    for u in users[::7]:
        h = store.for_user(u)
        _, hits = h.search("Likes rock music", 10, valid_only=False)
        assert hits and {hit.entry.user_id for hit in hits} == {u}
        assert {e.user_id for e in h.entries()} == {u}
        assert [e.user_id for e in h.get(["likes", "fact"])] == [u, u]


def test_a_foreign_record_is_refused_not_returned(tmp_path: Path) -> None:
    store = ChromaMemoryStore.persistent(tmp_path / "store")
    store.for_user("ann").upsert([_entry("ann", "a", "Likes jazz.")])
    # Plant a record of bob in ann's collection behind the API's back.
    col = store.for_user("ann")._collection(create=False)
    bad = _entry("bob", "b", "Bob's secret.")
    col.upsert(ids=["b"], documents=[bad.text], metadatas=[{**bad.metadata(), "user_id": "ann"}])
    with pytest.raises(IsolationError):
        store.for_user("ann").entries()


def test_shared_layout_also_isolates(tmp_path: Path) -> None:
    store = ChromaMemoryStore.persistent(tmp_path / "store", layout="shared")
    store.for_user("ann").upsert([_entry("ann", "same", "Likes jazz.")])
    store.for_user("bob").upsert([_entry("bob", "same", "Likes metal.")])
    assert [e.text for e in store.for_user("ann").entries()] == ["Likes jazz."]
    assert [h.entry.user_id for h in store.for_user("bob").search("jazz", 5)[1]] == ["bob"]
    assert store.forget_user("ann") == 1 and store.for_user("bob").count() == 1


# ---------------------------------------------------------------- failures
def test_a_path_that_is_a_file_gives_a_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable, match="not a folder"):
        ChromaMemoryStore.persistent(blocker)
    mem = ReflectiveMemory.open(blocker)  # degrade: the conversation goes on without memory
    assert not mem.enabled and "not a folder" in (mem.disabled_reason or "")
    assert mem.prior("ann") == [] and mem.profile("ann").is_empty
    mem.observe("ann", {"dialogue": {"turn": 1, "accepted": ["genre:jazz"]}})
    assert "memory disabled" in caplog.text
    with pytest.raises(MemoryStoreError, match="disabled"):
        mem.reflect("ann", "s1")


def test_a_store_left_mid_write_by_a_killed_process_opens_rolled_back(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    ChromaMemoryStore.persistent(folder).for_user("ann").upsert([_entry("ann", "m1", "Likes jazz.")])
    # A writer killed inside a transaction leaves a journal to roll back (Chroma's file keeps
    # its journal beside it): a read-only check cannot roll it back, which is not damage.
    writer = (f"import os, sqlite3; c = sqlite3.connect({str(folder / 'chroma.sqlite3')!r}); "
              "c.execute('PRAGMA cache_size=10'); c.execute('BEGIN'); c.execute('CREATE TABLE pad(x)'); "
              "[c.execute('INSERT INTO pad VALUES (?)', ('x' * 200,)) for _ in range(20000)]; "
              "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", writer], check=False)
    assert (folder / "chroma.sqlite3-journal").is_file()
    read = ("import json; from crs.memory import ChromaMemoryStore; "
            f"store = ChromaMemoryStore.persistent({str(folder)!r}); "
            "print(json.dumps([e.text for e in store.for_user('ann').entries()]))")
    reopened = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, check=True)
    assert json.loads(reopened.stdout.strip().splitlines()[-1]) == ["Likes jazz."]


@pytest.mark.parametrize("process", [False, True], ids=["in-this-process", "in-its-own"])
def test_a_corrupted_store_gives_a_clear_error(tmp_path: Path, process: bool) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "chroma.sqlite3").write_bytes(b"this is not a database" * 200)
    with pytest.raises(StoreCorrupted, match=r"cannot open .* damaged"):
        (ProcessMemoryStore if process else ChromaMemoryStore).persistent(folder)
    with pytest.raises(StoreCorrupted):  # never degraded to a memory that remembers nothing
        ReflectiveMemory.open(folder, process=process)
    assert (folder / "chroma.sqlite3").read_bytes().startswith(b"this is not")  # left as it was


def test_a_server_that_is_down_gives_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        ChromaMemoryStore.http("127.0.0.1", port)
    assert ReflectiveMemory.open(host="127.0.0.1", port=port).prior("ann") == []


def test_a_server_going_down_degrades_and_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = ChromaServer(tmp_path / "data").start()
    try:
        mem = ReflectiveMemory(ChromaMemoryStore.http("127.0.0.1", server.port, state_dir=tmp_path / "derived"))
        state = {"session_id": "s1", "dialogue": {"turn": 1, "accepted": ["genre:jazz"], "rejected": []},
                 "transcript": [{"role": "user", "content": "jazz please. I have kids."}], "reply": {"action": "ask"}}
        mem.observe("ann", state)
        mem.reflect("ann", "s1")
        before = {e.id for e in mem.store.for_user("ann").entries()} if mem.store else set()
        assert before
        server.stop()
        mem._users.clear()  # a new session: the profile is not cached
        assert mem.prior("ann") == []  # degraded to "no memory", not an exception
        assert mem.profile("ann").is_empty
        mem.observe("ann", {**state, "session_id": "s2", "reply": {"action": "accepted"}})
        assert "memory unavailable" in caplog.text or "postponed" in caplog.text
        with pytest.raises(MemoryStoreError):
            mem.reflect("ann", "s2")
    finally:
        server.stop()
    server = ChromaServer(tmp_path / "data", port=server.port).start()
    try:
        again = ChromaMemoryStore.http("127.0.0.1", server.port)
        assert {e.id for e in again.for_user("ann").entries()} == before  # nothing was lost
    finally:
        server.stop()


def test_forget_me_with_a_server_deletes_through_it_and_with_it_down_still_deletes_checkpoints(
        tmp_path: Path, toy_graph) -> None:
    from crs import Recommender, Settings

    server = ChromaServer(tmp_path / "data").start()
    try:
        mem = ReflectiveMemory(ChromaMemoryStore.http("127.0.0.1", server.port, state_dir=tmp_path / "derived"),
                               graph=toy_graph)
        rec = Recommender(toy_graph, memory=mem, settings=Settings(state_dir=tmp_path / "state"))
        rec.chat("ann", "s1", "I love jazz")
        rec.chat("bob", "s1", "I love rock")
        report = rec.forget("ann")
        assert report["memories"] >= 1 and report["threads"] == 1 and "not_deleted" not in report
        assert report["not_scrubbed"] and rec.memories("ann") == []  # deleted on the server, its files are its own
        rec.chat("bob", "s2", "hello")
        server.stop()  # now the store is down
        report = rec.forget("bob")
        assert report["threads"] == 2 and rec.state("bob", "s1") is None
        assert len(report["not_deleted"]) == 1 and "long-term memories" in report["not_deleted"][0]
    finally:
        server.stop()
