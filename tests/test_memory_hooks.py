"""Memory in the conversation: warm starts for returning users, and a forget-me that leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import chromadb
import pytest

from crs.api import Recommender
from crs.graphs.checkpoint import delete_user_threads, sqlite_checkpointer
from crs.graphs.steps import MemoryHooks
from crs.kb import KnowledgeGraph, Vocabulary
from crs.memory import ChromaMemoryStore, ReflectiveMemory
from crs.memory.chroma_store import client_settings
from crs.settings import Settings


@pytest.fixture
def setup(tmp_path: Path, toy_graph: KnowledgeGraph, toy_catalog: object) -> tuple[Recommender, ReflectiveMemory]:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "memory"), graph=toy_graph)
    vocab: Vocabulary = toy_catalog.vocabulary  # type: ignore[attr-defined]
    rec = Recommender(toy_graph, memory=mem, vocabulary=vocab,
                      checkpointer=sqlite_checkpointer(tmp_path / "checkpoints.sqlite"),
                      settings=Settings(state_dir=tmp_path, embeddings=False))
    return rec, mem


def test_reflective_memory_is_a_memory_hook(setup: tuple[Recommender, ReflectiveMemory]) -> None:
    _, mem = setup
    hooks: MemoryHooks = mem
    assert hooks.prior("nobody") == []


def test_a_returning_user_starts_from_the_remembered_profile(setup: tuple[Recommender, ReflectiveMemory]) -> None:
    rec, mem = setup
    rec.chat("ann", "s1", "I love jazz")
    rec.chat("bob", "b1", "I love rock")
    rec.end_session("ann", "s1")
    rec.end_session("bob", "b1")
    rec.chat("ann", "s2", "hello")
    state = rec.state("ann", "s2")
    assert state is not None
    prior = dict(state.prior)
    assert prior.get("genre:jazz", 0) > 0 and "genre:rock" not in prior  # bob's taste never leaks in
    assert mem.profile("ann").confirm_prompt() == "Last time you said you love jazz. Still in that mood?"
    assert len(state.accepted) == 0  # a prior, not an answer: nothing is filtered


def test_forget_me_leaves_no_trace(setup: tuple[Recommender, ReflectiveMemory], tmp_path: Path) -> None:
    rec, mem = setup
    for user, text in (("ann", "I love jazz. I'm vegetarian."), ("bob", "I love rock")):
        rec.chat(user, "s1", text)
        rec.end_session(user, "s1")
    ret = mem.retrieve("ann", "what does ann like")
    mem.feedback(ret, [ret.entries[0].id], accepted=True)  # reranker state for ann
    assert mem.rerankers.path("ann").is_file()  # type: ignore[union-attr]

    report = mem.forget("ann")
    threads = delete_user_threads(rec.checkpointer, "ann")  # the lead's Recommender.forget does both
    assert report["memories"] > 0 and report["reranker"] == 1 and report["profile"] == 1 and threads == 1

    # Scan everything on disk, not through the API.
    client = chromadb.PersistentClient(path=str(tmp_path / "memory"), settings=client_settings())
    for col in client.list_collections():
        rows = client.get_collection(col.name).get(include=["metadatas", "documents"])
        assert all(m["user_id"] != "ann" for m in rows["metadatas"])
        assert not any("vegetarian" in (d or "") for d in rows["documents"])
    derived = tmp_path / "memory" / "derived"
    for path in derived.rglob("*"):
        if path.is_file() and path.suffix == ".json":
            assert json.loads(path.read_text())["user_id"] != "ann"
    assert mem.rerankers.path("ann") is not None and not mem.rerankers.path("ann").exists()  # type: ignore[union-attr]
    with rec.checkpointer.cursor() as cur:
        cur.execute("SELECT DISTINCT thread_id FROM checkpoints")
        assert all(not str(t).startswith("3:ann:") for (t,) in cur.fetchall())
    assert mem.prior("ann") == [] and mem.profile("ann").is_empty
    assert dict(mem.prior("bob")).get("genre:rock", 0) > 0  # others untouched


def test_memory_settings_from_a_settings_file_reach_the_memory(tmp_path: Path) -> None:
    from crs.settings import SettingsError, load_settings

    path = tmp_path / "crs.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\nembeddings = false\n\n'
                    "[memory_settings]\nreflect_every = 3\n\n"
                    "[memory_settings.profile]\nlike_scale = 1.0\ndislike_scale = 1.0\n", encoding="utf-8")
    rec = Recommender.from_settings(load_settings(path))
    mem = rec.memory
    assert isinstance(mem, ReflectiveMemory)
    assert mem.settings.reflect_every == 3
    assert (mem.settings.profile.like_scale, mem.settings.profile.dislike_scale) == (1.0, 1.0)
    path.write_text("[memory_settings.profile]\ndislike_scal = 1.0\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"line 2: unknown setting 'memory_settings.profile.dislike_scal' "
                                            r"\(did you mean 'dislike_scale'\?\)"):
        load_settings(path)


def test_a_session_start_reads_the_persons_memories_once(tmp_path: Path) -> None:
    from crs import Settings

    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    listed = rec.chat("ann", "s1", "I love jazz, just recommend something").recommendations
    rec.act("ann", "s1", {"type": "accept_item", "item_id": listed[0].id})
    rec.memory.flush()
    store = rec.memory.store
    reads: list[str] = []
    handle_of = store.for_user

    class Counting:
        def __init__(self, user_id: str) -> None:
            self._handle = handle_of(user_id)

        def __getattr__(self, name: str) -> object:
            if name == "entries":
                reads.append(name)
            return getattr(self._handle, name)

    store.for_user = Counting  # type: ignore[method-assign]
    reply = rec.chat("ann", "s2", "hello")
    assert reads == ["entries"]  # the prior and the items chosen before come from one read
    assert rec.state("ann", "s2") is not None and "jazz" in reply.text.lower()
    assert listed[0].id in (rec.app.get_state(rec._config("ann", "s2")).values.get("chosen_before") or [])
