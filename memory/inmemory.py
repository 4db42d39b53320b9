"""A process-local memory store (dicts and numpy): for tests, tuning and throwaway sessions.

It passes the same contract suite as the Chroma store; nothing is persisted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crs.kb.embeddings import Embedder, default_embedder
from crs.memory.entry import MemoryEntry, MemoryKind
from crs.memory.store import MemoryHit, checked_user_id

__all__ = ["InMemoryStore"]


class InMemoryStore:
    """Per-user dicts of entries plus their vectors; cosine search with numpy."""

    def __init__(self, embedder: Embedder | None = None, *, state_dir: str | Path | None = None) -> None:
        self._embedder = embedder
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._data: dict[str, dict[str, tuple[MemoryEntry, NDArray[np.float32]]]] = {}
        self._lock = threading.RLock()

    @property
    def state_dir(self) -> Path | None:
        return self._state_dir

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if self._embedder is None:
            self._embedder = default_embedder()
        return np.asarray(self._embedder.embed(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def for_user(self, user_id: str) -> _InMemoryUser:
        checked_user_id(user_id)
        return _InMemoryUser(self, user_id)

    def forget_user(self, user_id: str) -> int:
        with self._lock:
            return len(self._data.pop(user_id, {}))


class _InMemoryUser:
    def __init__(self, store: InMemoryStore, user_id: str) -> None:
        self._store = store
        self._user_id = user_id

    @property
    def user_id(self) -> str:
        return self._user_id

    def _rows(self) -> dict[str, tuple[MemoryEntry, NDArray[np.float32]]]:
        return self._store._data.get(self._user_id, {})

    def upsert(self, entries: Sequence[MemoryEntry]) -> None:
        for e in entries:
            if e.user_id != self._user_id:
                raise ValueError(f"entry {e.id!r} belongs to {e.user_id!r}, not to {self._user_id!r}")
        if not entries:
            return
        vectors = self.embed([e.text for e in entries])
        with self._store._lock:
            rows = self._store._data.setdefault(self._user_id, {})
            for e, v in zip(entries, vectors, strict=True):
                rows[e.id] = (e.model_copy(deep=True), v)

    def get(self, ids: Iterable[str]) -> list[MemoryEntry]:
        rows = self._rows()
        return [rows[i][0].model_copy(deep=True) for i in ids if i in rows]

    def entries(self, *, valid_only: bool = False, kinds: Sequence[MemoryKind] | None = None) -> list[MemoryEntry]:
        out = [e.model_copy(deep=True) for e, _ in self._rows().values()
               if (not valid_only or e.valid_to is None) and (not kinds or e.kind in kinds)]
        return sorted(out, key=lambda e: (e.created_at, e.id))

    def search(
        self, query: str, k: int, *, valid_only: bool = True, kinds: Sequence[MemoryKind] | None = None
    ) -> tuple[NDArray[np.float32], list[MemoryHit]]:
        qv = self.embed([query])[0]
        rows = [(e, v) for e, v in self._rows().values()
                if (not valid_only or e.valid_to is None) and (not kinds or e.kind in kinds)]
        if not rows or k <= 0:
            return qv, []
        sims = np.stack([v for _, v in rows]) @ qv
        order = np.argsort(-sims, kind="stable")[:k]
        return qv, [MemoryHit(rows[i][0].model_copy(deep=True), float(sims[i]), rows[i][1]) for i in order.tolist()]

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._store.embed(texts)

    def count(self) -> int:
        return len(self._rows())

    def delete(self, ids: Iterable[str]) -> None:
        with self._store._lock:
            rows = self._store._data.get(self._user_id, {})
            for i in ids:
                rows.pop(i, None)

    def clear(self) -> int:
        return self._store.forget_user(self._user_id)
