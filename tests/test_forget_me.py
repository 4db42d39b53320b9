"""Long-term memory through the public API, and a complete "forget me"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import chromadb
import pytest

from crs import Recommender, Settings
from crs.memory.chroma_store import client_settings, collection_name


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
    assert collection_name("ann") not in names and collection_name("bob") in names
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


def _files_holding(folder: Path, *needles: bytes) -> list[str]:
    """Every file under ``folder`` whose raw bytes contain one of the needles."""
    return sorted(f"{p.relative_to(folder)}: {n!r}" for p in folder.rglob("*") if p.is_file()
                  for n in needles if n in p.read_bytes())


@pytest.mark.parametrize("memory_process", [False, True], ids=["store-in-this-process", "store-in-its-own"])
def test_forget_me_leaves_no_byte_of_the_user_in_the_state_folder(tmp_path: Path, memory_process: bool) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False, memory_process=memory_process))
    for session in ("s1", "s2"):
        talk(rec, "zed-9f3k", session, "I love jazz. I'm a zorblaxian", "just recommend something")
        talk(rec, "bob", session, "I love rock", "just recommend something")
    listed = rec.chat("zed-9f3k", "s2", "just recommend something").recommendations
    rec.act("zed-9f3k", "s2", {"type": "accept_item", "item_id": listed[0].id})  # a choice, and reranker credit
    rec.end_session("zed-9f3k", "s1")
    needles = (b"zorblax", b"zed-9f3k")
    assert _files_holding(tmp_path, *needles)  # the test can see the user before

    report = rec.forget("zed-9f3k")
    assert report["threads"] == 2 and report["memories"] > 0 and "not_deleted" not in report
    assert _files_holding(tmp_path, *needles) == []
    # the others' memories and conversations still work, in this process and a new one
    assert rec.memory.prior("bob") and rec.state("bob", "s1") is not None
    rec.chat("bob", "s3", "I'm done with rock")
    rec.close()  # one process per embedded store at a time
    again = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    assert again.memory.avoid("bob") == ["genre:rock"] and again.memories("zed-9f3k") == []


def test_forget_me_waits_for_a_running_turn_and_nothing_is_written_back(tmp_path: Path) -> None:
    import threading

    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    talk(rec, "ann", "s1", "I love jazz")
    entered, release = threading.Event(), threading.Event()
    observe = rec.memory.observe_session

    def slow_observe(user: str, state: object, record: object) -> object:  # a turn still running when forget is called
        entered.set()
        release.wait(5)
        return observe(user, state, record)

    rec.memory.observe_session = slow_observe  # type: ignore[method-assign]
    turn = threading.Thread(target=rec.chat, args=("ann", "s1", "I'm a zorblaxian"))
    turn.start()
    assert entered.wait(5)
    reports: list[dict[str, object]] = []
    forgetting = threading.Thread(target=lambda: reports.append(rec.forget("ann")))
    forgetting.start()
    forgetting.join(0.3)
    assert forgetting.is_alive()  # it waits for the turn
    release.set()
    turn.join(10)
    forgetting.join(10)
    assert reports and reports[0]["threads"] == 1
    assert rec.state("ann", "s1") is None and rec.memories("ann") == []
    assert _files_holding(tmp_path, b"zorblax", b'"ann"') == []


class _DownStore:
    """A memory whose store is unreachable (what a stopped Chroma server looks like to forget)."""

    def prior(self, user_id: str) -> list[tuple[str, float]]:
        return []

    def avoid(self, user_id: str) -> list[str]:
        return []

    def observe(self, user_id: str, state: object) -> None:
        pass

    def forget(self, user_id: str) -> dict[str, int]:
        from crs.memory import StoreUnavailable

        raise StoreUnavailable("memory store: cannot reach the Chroma server at 127.0.0.1:9")


def test_with_the_memory_store_down_checkpoints_are_still_deleted_and_the_report_says_what_is_left(
        tmp_path: Path, toy_graph) -> None:
    rec = Recommender(toy_graph, memory=_DownStore(), settings=Settings(state_dir=tmp_path))
    talk(rec, "ann", "s1", "I'm a zorblaxian, some jazz please")
    report = rec.forget("ann")
    assert report["threads"] == 1 and rec.state("ann", "s1") is None
    assert len(report["not_deleted"]) == 1 and "127.0.0.1:9" in report["not_deleted"][0]
    assert _files_holding(tmp_path, b"zorblax") == []
