"""Per-conversation and per-user locks: bounded in number, and never forgotten while in use."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from crs import Recommender, Settings
from crs.kb import KnowledgeGraph
from crs.locks import KeyedLocks


def test_idle_locks_are_forgotten_least_recently_used_first() -> None:
    locks: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock, max_idle=3)
    for key in "abcde":
        with locks.hold(key):
            pass
    assert len(locks) == 3 and locks.in_use() == 0
    with locks.hold("c") as c:  # used again: now the most recent
        pass
    with locks.hold("f"):
        pass
    with locks.hold("c") as again:
        assert again is c  # still kept: "d" (least recently used) went instead
    with pytest.raises(ValueError, match="max_idle"):
        KeyedLocks(threading.Lock, max_idle=-1)


def test_a_held_lock_is_never_forgotten_and_waiters_share_it() -> None:
    locks: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock, max_idle=0)
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with locks.hold("conv"):
            inside.set()
            release.wait(5)
            order.append("first")

    def second() -> None:
        with locks.hold("conv"):
            order.append("second")

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(5)
    t2 = threading.Thread(target=second)
    t2.start()
    for key in range(50):  # churn: many other keys come and go while "conv" is held and waited for
        with locks.hold(f"other{key}"):
            pass
    time.sleep(0.05)
    assert order == [] and locks.in_use() == 1 and len(locks) == 1
    release.set()
    t1.join(5)
    t2.join(5)
    assert order == ["first", "second"]  # the waiter got the same lock, not a fresh one
    assert len(locks) == 0 and locks.in_use() == 0


def test_reentrant_user_locks_stay_counted() -> None:
    locks: KeyedLocks[threading.RLock] = KeyedLocks(threading.RLock, max_idle=0)
    with locks.hold("ann") as outer:
        with locks.hold("ann") as inner:  # forget-me inside a turn takes the user's lock again
            assert inner is outer and locks.in_use() == 1
        assert len(locks) == 1
    assert len(locks) == 0


def test_a_recommender_keeps_a_bounded_number_of_locks(toy_graph: KnowledgeGraph, toy_catalog,
                                                       tmp_path: Path) -> None:
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=Settings(state_dir=tmp_path),
                      max_idle_locks=5)
    for n in range(20):
        rec.chat(f"user{n}", f"s{n}", "jazz")
    assert len(rec._locks) == 5 and len(rec._user_locks) == 5
    assert rec.chat("user0", "s0", "no").turn == 2  # a conversation whose lock was forgotten goes on
