"""Long-term memory through the public API, and a complete "forget me"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import chromadb

from crs import Recommender, Settings
from crs.memory.chroma_store import _collection_name, client_settings


def talk(rec: Recommender, user: str, session: str, *messages: str) -> None:
    for text in messages:
        rec.chat(user, session, text)


def test_memory_carries_over_and_forget_me_removes_everything(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path))
    talk(rec, "ann", "monday", "I love jazz, I'm vegetarian", "I can't stand metal", "just recommend something")
    talk(rec, "bob", "monday", "I love rock from the 90s", "just recommend something")
    rec.end_session("ann", "monday")
    rec.end_session("bob", "monday")

    # A new session of ann starts from what she said before; bob's memories never show.
    prior = dict(rec.memory.prior("ann"))
    assert prior.get("genre:jazz", 0) > 0 and prior.get("genre:metal", 0) < 0
    assert all(not a.startswith("decade:1990s") for a in prior)
    reply = rec.chat("ann", "tuesday", "hello")
    assert reply.action == "ask" and reply.question.attribute == "genre:jazz"  # confirm, don't ask

    report = rec.forget("ann")
    assert report["memories"] > 0 and report["threads"] == 2
    assert rec.state("ann", "monday") is None and rec.state("ann", "tuesday") is None
    assert rec.memory.prior("ann") == []
    assert rec.state("bob", "monday") is not None and rec.memory.prior("bob")

    # Scan the stores themselves: no checkpoint row and no collection of ann is left.
    with sqlite3.connect(tmp_path / "checkpoints.sqlite") as db:
        for table in ("checkpoints", "writes"):
            threads = {t for (t,) in db.execute(f"SELECT DISTINCT thread_id FROM {table}")}
            assert not any(t.startswith("3:ann:") for t in threads)
        bob = {t for (t,) in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}
        assert bob == {"3:bob:monday"}
    client = chromadb.PersistentClient(path=str(tmp_path / "memory"), settings=client_settings())
    names = {c.name for c in client.list_collections()}
    assert _collection_name("ann") not in names and _collection_name("bob") in names
    leftovers = [p for p in (tmp_path / "memory").rglob("*") if "ann" in p.name]
    assert leftovers == []


def test_a_person_can_list_and_delete_single_memories(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path))
    talk(rec, "ann", "monday", "I love jazz", "I can't stand metal")
    rec.end_session("ann", "monday")
    talk(rec, "bob", "monday", "I love rock")
    rec.end_session("bob", "monday")

    ann = rec.memories("ann")
    texts = " ".join(m.text for m in ann).lower()
    assert "jazz" in texts and "metal" in texts and "rock" not in texts
    assert all(m.user_id == "ann" and m.valid_to is None for m in ann)

    jazz = next(m for m in ann if m.kind == "like" and "genre:jazz" in m.attribute_ids)
    before = dict(rec.memory.prior("ann"))["genre:jazz"]
    assert rec.forget_memory("bob", jazz.id) is False  # another user's id reaches nothing
    assert rec.forget_memory("ann", jazz.id) is True
    assert jazz.id not in {m.id for m in rec.memories("ann")}
    assert dict(rec.memory.prior("ann")).get("genre:jazz", 0) < before  # the profile is derived anew
    assert rec.forget_memory("ann", jazz.id) is False
    assert rec.memories("nobody") == []
