"""A lock per key (a conversation, a user), created on first use and bounded in number.

A server meets an unbounded stream of users and sessions; keeping a lock for each forever
is a leak. Locks nobody holds or waits for are forgotten, least recently used first, once
there are more than ``max_idle``; a lock in use is never forgotten, so two callers of the
same key always share one lock (a forgotten one is simply made afresh next time).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

L = TypeVar("L", threading.Lock, threading.RLock)


class KeyedLocks(Generic[L]):
    """``with locks.hold(key):`` serialises callers of one key; different keys run in parallel."""

    def __init__(self, factory: Callable[[], L], *, max_idle: int = 1024) -> None:
        if max_idle < 0:
            raise ValueError(f"max_idle must be >= 0, got {max_idle}")
        self._factory: Callable[[], L] = factory
        self.max_idle = max_idle
        self._locks: OrderedDict[str, L] = OrderedDict()  # least recently used first
        self._users: dict[str, int] = {}  # key -> callers holding or waiting for its lock
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[L]:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = self._factory()
            else:
                self._locks.move_to_end(key)
            self._users[key] = self._users.get(key, 0) + 1  # counted before waiting: never evicted under us
        try:
            with lock:
                yield lock
        finally:
            with self._guard:
                left = self._users[key] - 1
                if left:
                    self._users[key] = left
                else:
                    del self._users[key]
                self._evict()

    def _evict(self) -> None:
        idle = len(self._locks) - len(self._users)
        if idle <= self.max_idle:
            return
        excess = idle - self.max_idle
        doomed = []
        for key in self._locks:  # oldest first; stops as soon as enough idle ones are found
            if key not in self._users:
                doomed.append(key)
                if len(doomed) == excess:
                    break
        for key in doomed:
            del self._locks[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)

    def in_use(self) -> int:
        """Keys whose lock is held or waited for right now."""
        with self._guard:
            return len(self._users)
