"""The memory store contract: a store hands out per-user handles, and only handles read or write.

There is deliberately no method that queries across users: isolation is a property of the API,
not a filter a caller could forget. Every backend must pass ``tests/test_memory_store.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from crs.memory.entry import MemoryEntry, MemoryKind

__all__ = [
    "IsolationError",
    "MemoryHit",
    "MemoryStore",
    "MemoryStoreError",
    "StoreCorrupted",
    "StoreUnavailable",
    "UserMemories",
    "checked_user_id",
]


class MemoryStoreError(RuntimeError):
    """The store cannot be used (locked, unreachable, corrupted, misconfigured)."""


class StoreUnavailable(MemoryStoreError):
    """The store could not be opened or reached; nothing was read or written."""


class StoreCorrupted(StoreUnavailable):
    """The embedded store's database file is damaged; the message names it. Never degraded
    to a memory that remembers nothing: the person must move the folder away or restore it."""


class IsolationError(MemoryStoreError):
    """A read returned a record of another user: refused, never handed out."""


def checked_user_id(user_id: object) -> str:
    """``user_id`` if a store may hand out a handle for it: a non-empty string."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")
    return user_id


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One retrieved memory: the entry, its cosine similarity to the query and its vector."""

    entry: MemoryEntry
    similarity: float
    embedding: NDArray[np.float32]


@runtime_checkable
class UserMemories(Protocol):
    """One user's memories. Every method is scoped to :attr:`user_id` by construction."""

    @property
    def user_id(self) -> str: ...

    def upsert(self, entries: Sequence[MemoryEntry]) -> None:
        """Insert or replace entries (by id). Entries of another user raise ``ValueError``."""
        ...

    def get(self, ids: Iterable[str]) -> list[MemoryEntry]: ...

    def entries(self, *, valid_only: bool = False, kinds: Sequence[MemoryKind] | None = None) -> list[MemoryEntry]:
        ...

    def search(
        self, query: str, k: int, *, valid_only: bool = True, kinds: Sequence[MemoryKind] | None = None
    ) -> tuple[NDArray[np.float32], list[MemoryHit]]:
        """The query's vector and the ``k`` most similar memories, most similar first."""
        ...

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def count(self) -> int: ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def clear(self) -> int:
        """Delete every memory of this user; returns how many were deleted."""
        ...


@runtime_checkable
class MemoryStore(Protocol):
    """Where memories live. Hands out per-user handles; knows where to keep derived state."""

    @property
    def state_dir(self) -> Path | None:
        """A folder for state derived from the store (e.g. the reranker), or None for none."""
        ...

    def for_user(self, user_id: str) -> UserMemories: ...

    def forget_user(self, user_id: str) -> int:
        """Delete everything stored for one user; returns how many memories were deleted."""
        ...
