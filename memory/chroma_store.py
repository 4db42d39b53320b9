"""The Chroma memory store: embedded ``PersistentClient`` by default, ``HttpClient`` to scale out.

Layout (measured, see ``benchmarks/memory_latency.py``): one collection per user. A user's
handle can only ever reach its own collection, so isolation holds even if a filter were
wrong, forget-me is one ``delete_collection``, and a query searches a user's few hundred
vectors instead of filtering 100,000. The alternative layout, one shared collection with an
enforced ``user_id`` filter, is kept (``layout="shared"``) for comparison and for servers
that limit the number of collections.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import numpy as np
from chromadb.errors import NotFoundError
from numpy.typing import NDArray

from crs.memory.allocator import warn_if_not_private
from crs.memory.embedding import OfflineEmbeddingFunction
from crs.memory.entry import MemoryEntry, MemoryKind
from crs.memory.store import (
    IsolationError,
    MemoryHit,
    MemoryStoreError,
    StoreCorrupted,
    StoreUnavailable,
    checked_user_id,
)

__all__ = ["ChromaMemoryStore", "Layout", "client_settings", "collection_name"]

log = logging.getLogger(__name__)

Layout = Literal["per_user", "shared"]
_SHARED = "crs-memories"
_PREFIX = "crs-mem-"
_PAGE = 1000


def client_settings() -> Any:
    """The Chroma client settings the store uses (a second client on the same path must match)."""
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def collection_name(user_id: str) -> str:
    """The per-user layout's collection of a user."""
    # Chroma names allow [a-zA-Z0-9._-] only: hash the id (stored in the metadata as well).
    return _PREFIX + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40]


@contextmanager
def _guard(what: str) -> Iterator[None]:
    """Turn any backend failure into a :class:`MemoryStoreError` that says what was attempted."""
    try:
        yield
    except MemoryStoreError:
        raise
    except ValueError as exc:
        raise MemoryStoreError(f"memory store: {what} failed: {exc}") from exc
    except Exception as exc:
        raise MemoryStoreError(f"memory store: {what} failed: {type(exc).__name__}: {exc}") from exc


def _check_database(db: Path) -> None:
    """Read an existing store's SQLite file once, read-only, before Chroma opens it: a damaged
    file is named at start (Chroma may only notice on some later read) and is not written to.
    Only a file a stopped process left mid-write is opened to write: SQLite rolls that back."""
    if not db.is_file():
        return
    try:
        try:
            problems = _quick_check(f"{db.resolve().as_uri()}?mode=ro")
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            # A process stopped mid-write left a journal to roll back, which a read-only
            # connection cannot do: SQLite's own recovery, as Chroma's open would run it.
            problems = _quick_check(db.resolve().as_uri())
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):  # another process is writing: Chroma itself will wait or say so
            return
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StoreCorrupted(
            f"memory store: cannot open {db}: it is damaged ({'; '.join(problems[:3])}); "
            f"move the folder {db.parent} away (memories start afresh) or restore it from a backup")


def _quick_check(uri: str) -> list[str]:
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        return [" ".join(str(r[0]).split()) for r in conn.execute("PRAGMA quick_check").fetchall()]
    finally:
        conn.close()


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ChromaMemoryStore:
    """Memories in Chroma. Build with :meth:`persistent` (embedded) or :meth:`http` (a server)."""

    def __init__(
        self,
        client: Any,
        *,
        embedding_function: Any | None = None,
        layout: Layout = "per_user",
        state_dir: str | Path | None = None,
        cache_size: int = 256,
    ) -> None:
        self._client = client
        self._ef = embedding_function if embedding_function is not None else OfflineEmbeddingFunction()
        self.layout: Layout = layout
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._handles: OrderedDict[str, _ChromaUserMemories] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.RLock()
        self._path: Path | None = None  # the folder of an embedded store (None for a server)

    # ---------------------------------------------------------------- building
    @classmethod
    def persistent(cls, path: str | Path, **kwargs: Any) -> ChromaMemoryStore:
        """An embedded store in a folder (created if missing). Derived state goes beside it."""
        import chromadb

        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise StoreUnavailable(f"memory store: {folder} exists and is not a folder")
        _check_database(folder / "chroma.sqlite3")
        warn_if_not_private()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(folder), settings=client_settings())
            client.heartbeat()
        except Exception as exc:
            raise StoreUnavailable(
                f"memory store: cannot open the embedded Chroma store at {folder}: {type(exc).__name__}: {exc}"
            ) from exc
        kwargs.setdefault("state_dir", folder / "derived")
        store = cls(client, **kwargs)
        store._path = folder
        return store

    @classmethod
    def http(cls, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> ChromaMemoryStore:
        """A store on a Chroma server (``chroma run --path DIR --host H --port P``)."""
        import chromadb

        try:
            client = chromadb.HttpClient(host=host, port=port, settings=client_settings())
            client.heartbeat()
        except Exception as exc:
            raise StoreUnavailable(
                f"memory store: cannot reach the Chroma server at {host}:{port}: {type(exc).__name__}: {exc}"
            ) from exc
        return cls(client, **kwargs)

    # ------------------------------------------------------------------ public
    @property
    def state_dir(self) -> Path | None:
        return self._state_dir

    @property
    def embedding_function(self) -> Any:
        return self._ef

    def for_user(self, user_id: str) -> _ChromaUserMemories:
        checked_user_id(user_id)
        with self._lock:
            handle = self._handles.get(user_id)
            if handle is None:
                handle = _ChromaUserMemories(self, user_id)
                self._handles[user_id] = handle
                if len(self._handles) > self._cache_size:
                    self._handles.popitem(last=False)
            else:
                self._handles.move_to_end(user_id)
            return handle

    def forget_user(self, user_id: str) -> int:
        with self._lock:
            handle = self.for_user(user_id)
            n = handle.clear()
            self._handles.pop(user_id, None)
            return n

    def scrub(self) -> list[str]:
        """Leave no bytes of deleted memories in the embedded store's files; returns what was not
        scrubbed (a server's files are the server's: named, never touched; the memories themselves
        are deleted through its API all the same).

        Chroma deletes rows, but their text stays in freed SQLite pages and in the full-text
        index's old segments: merge the index, then rebuild the file (VACUUM).
        """
        if self._path is None:
            return ["the Chroma server's files (scrub them on the server: `chroma utils vacuum`)"]
        db = self._path / "chroma.sqlite3"
        if not db.is_file():
            return []
        with self._lock, _guard("scrubbing deleted memories"):
            conn = sqlite3.connect(db, timeout=30)
            try:
                conn.execute("PRAGMA secure_delete=ON")
                try:
                    conn.execute("INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES('optimize')")
                    conn.commit()
                except sqlite3.OperationalError:  # no full-text index in this Chroma version
                    conn.rollback()
                conn.execute("VACUUM")
                live = {str(r[0]) for r in conn.execute("SELECT id FROM segments")}
            finally:
                conn.close()
            # A deleted collection's vector-index folder can stay behind, holding stray bytes of
            # the records it was built from.
            for folder in self._path.iterdir():
                if folder.is_dir() and _UUID.fullmatch(folder.name) and folder.name not in live:
                    shutil.rmtree(folder, ignore_errors=True)
        return []

    def heartbeat(self) -> None:
        with _guard("heartbeat"):
            self._client.heartbeat()

    def users_with_memories(self) -> set[str] | None:
        """In the per-user layout, the collection names of every user with memories (see
        :func:`collection_name`); None in the shared layout, which cannot tell without a read."""
        if self.layout != "per_user":
            return None
        with _guard("listing the users with memories"):
            return {c.name for c in self._client.list_collections() if c.name.startswith(_PREFIX)}

    # ---------------------------------------------------------------- internal
    def _collection(self, user_id: str, *, create: bool) -> Any | None:
        name = _SHARED if self.layout == "shared" else collection_name(user_id)
        meta = {"owner": "*" if self.layout == "shared" else user_id}
        with _guard(f"opening the memories of user {user_id!r}"):
            if create:
                return self._client.get_or_create_collection(
                    name, metadata=meta, embedding_function=self._ef,
                    configuration={"hnsw": {"space": "cosine"}},
                )
            try:
                return self._client.get_collection(name, embedding_function=self._ef)
            except NotFoundError:  # embedded and server clients both raise it
                return None

    def _drop_user_collection(self, user_id: str) -> None:
        with _guard(f"deleting the memories of user {user_id!r}"):
            try:
                self._client.delete_collection(collection_name(user_id))
            except NotFoundError:  # nothing stored for this user: nothing to delete
                return


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _refetch_if_deleted(method: _Method) -> _Method:
    """Run ``method`` again on a fresh collection handle when the cached one was deleted under it
    (forget-me in another worker process): the handle points at the old collection's id."""

    @functools.wraps(method)
    def wrapper(self: _ChromaUserMemories, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except MemoryStoreError as exc:
            if self._col is None or not isinstance(exc.__cause__, NotFoundError):
                raise
            self._col = None
            return method(self, *args, **kwargs)

    return cast(_Method, wrapper)


class _ChromaUserMemories:
    """One user's memories in Chroma; the only way in or out of the store."""

    def __init__(self, store: ChromaMemoryStore, user_id: str) -> None:
        self._store = store
        self._user_id = user_id
        self._col: Any | None = None

    @property
    def user_id(self) -> str:
        return self._user_id

    # The shared layout must filter every read by owner in Chroma. The per-user layout reads
    # its own collection without a metadata filter: Chroma evaluates a ``where`` against the
    # metadata of the whole database (about 100 ms at 100,000 memories, measured), while the
    # owner is checked on every row in ``_rows`` anyway; validity and kind are filtered here.
    @property
    def _shared(self) -> bool:
        return self._store.layout == "shared"

    def _where(self, *, valid_only: bool = False, kinds: Sequence[MemoryKind] | None = None) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = [{"user_id": self._user_id}]
        if valid_only:
            clauses.append({"valid": True})
        if kinds:
            clauses.append({"kind": {"$in": list(kinds)}})
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _owner_where(self) -> dict[str, Any] | None:
        return self._where() if self._shared else None

    @staticmethod
    def _keep(entry: MemoryEntry, valid_only: bool, kinds: Sequence[MemoryKind] | None) -> bool:
        return (not valid_only or entry.valid_to is None) and (not kinds or entry.kind in kinds)

    def _collection(self, *, create: bool) -> Any | None:
        if self._col is None:
            self._col = self._store._collection(self._user_id, create=create)
        return self._col

    def _rows(self, ids: list[str], metadatas: list[Any]) -> list[MemoryEntry]:
        out = []
        for ident, meta in zip(ids, metadatas, strict=True):
            if meta is None or meta.get("user_id") != self._user_id:
                raise IsolationError(
                    f"memory store: record {ident!r} does not belong to user {self._user_id!r}; refused"
                )
            try:
                entry = MemoryEntry.from_json(meta["entry"])
            except Exception as exc:
                raise MemoryStoreError(f"memory store: record {ident!r} is corrupted: {exc}") from exc
            if entry.user_id != self._user_id:
                raise IsolationError(f"memory store: record {ident!r} names another user; refused")
            out.append(entry)
        return out

    @_refetch_if_deleted
    def upsert(self, entries: Sequence[MemoryEntry]) -> None:
        if not entries:
            return
        for e in entries:
            if e.user_id != self._user_id:
                raise ValueError(f"entry {e.id!r} belongs to {e.user_id!r}, not to {self._user_id!r}")
        col = self._collection(create=True)
        assert col is not None
        with _guard(f"writing memories of user {self._user_id!r}"):
            batch = max(1, int(self._store._client.get_max_batch_size()))
            for start in range(0, len(entries), batch):
                chunk = entries[start:start + batch]
                col.upsert(
                    ids=[self._key(e.id) for e in chunk],
                    documents=[e.text for e in chunk],
                    metadatas=[e.metadata() for e in chunk],
                )

    def _key(self, ident: str) -> str:
        # In the shared layout two users' deterministic ids could collide: prefix the owner.
        if self._store.layout == "shared":
            return hashlib.sha256(self._user_id.encode()).hexdigest()[:16] + ":" + ident
        return ident

    @_refetch_if_deleted
    def get(self, ids: Iterable[str]) -> list[MemoryEntry]:
        wanted = [self._key(i) for i in ids]
        col = self._collection(create=False)
        if col is None or not wanted:
            return []
        with _guard(f"reading memories of user {self._user_id!r}"):
            got = col.get(ids=wanted, where=self._owner_where(), include=["metadatas"])
        return self._rows(got["ids"], got["metadatas"])

    @_refetch_if_deleted
    def entries(self, *, valid_only: bool = False, kinds: Sequence[MemoryKind] | None = None) -> list[MemoryEntry]:
        col = self._collection(create=False)
        if col is None:
            return []
        out: list[MemoryEntry] = []
        offset = 0
        with _guard(f"reading memories of user {self._user_id!r}"):
            while True:
                where = self._where(valid_only=valid_only, kinds=kinds) if self._shared else None
                got = col.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
                out.extend(e for e in self._rows(got["ids"], got["metadatas"]) if self._keep(e, valid_only, kinds))
                if len(got["ids"]) < _PAGE:
                    break
                offset += _PAGE
        out.sort(key=lambda e: (e.created_at, e.id))
        return out

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        vectors = self._store.embedding_function(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    @_refetch_if_deleted
    def search(
        self, query: str, k: int, *, valid_only: bool = True, kinds: Sequence[MemoryKind] | None = None
    ) -> tuple[NDArray[np.float32], list[MemoryHit]]:
        qv = self.embed([query])[0]
        col = self._collection(create=False)
        if col is None or k <= 0:
            return qv, []
        filtered = valid_only or bool(kinds)
        with _guard(f"searching memories of user {self._user_id!r}"):
            if self._shared:
                hits = self._query(col, qv, k, self._where(valid_only=valid_only, kinds=kinds))
            else:
                # Over-fetch and filter here; only if too few survive, ask Chroma to filter.
                n = 2 * k + 8 if filtered else k  # Chroma returns fewer when it has fewer
                hits = self._query(col, qv, n, None)
                kept = [h for h in hits if self._keep(h.entry, valid_only, kinds)]
                if filtered and len(kept) < k and len(hits) == n:
                    kept = self._query(col, qv, k, self._where(valid_only=valid_only, kinds=kinds))
                hits = kept
        return qv, hits[:k]

    def _query(self, col: Any, qv: NDArray[np.float32], n: int, where: dict[str, Any] | None) -> list[MemoryHit]:
        got = col.query(query_embeddings=[qv], n_results=n, where=where,
                        include=["metadatas", "distances", "embeddings"])
        ids, metas = got["ids"][0], got["metadatas"][0]
        entries = self._rows(ids, metas)
        dists = got["distances"][0]
        vecs = got["embeddings"][0] if got.get("embeddings") is not None else [None] * len(ids)
        hits = []
        for entry, dist, vec in zip(entries, dists, vecs, strict=True):
            v = np.asarray(vec, dtype=np.float32) if vec is not None else self.embed([entry.text])[0]
            hits.append(MemoryHit(entry=entry, similarity=1.0 - float(dist), embedding=v))
        return hits

    @_refetch_if_deleted
    def count(self) -> int:
        col = self._collection(create=False)
        if col is None:
            return 0
        with _guard(f"counting memories of user {self._user_id!r}"):
            if self._store.layout == "per_user":
                return int(col.count())
            return len(col.get(where=self._where(), include=[])["ids"])

    @_refetch_if_deleted
    def delete(self, ids: Iterable[str]) -> None:
        wanted = [self._key(i) for i in ids]
        col = self._collection(create=False)
        if col is None or not wanted:
            return
        with _guard(f"deleting memories of user {self._user_id!r}"):
            col.delete(ids=wanted, where=self._owner_where())

    def clear(self) -> int:
        col = self._collection(create=False)
        if col is None:
            return 0
        n = self.count()
        if self._store.layout == "per_user":
            self._store._drop_user_collection(self._user_id)
        else:
            with _guard(f"deleting memories of user {self._user_id!r}"):
                col.delete(where=self._where())
        self._col = None
        return n
