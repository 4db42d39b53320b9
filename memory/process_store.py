"""The embedded Chroma store in a process of its own, so a server's replies never wait behind its writes.

Embedded Chroma holds Python's interpreter lock for much of a write: about 4 ms of CPU for one
memory (7 ms for a person's first, which creates their collection), and while one thread writes
without pause another keeps only about 60% of its time (``benchmarks/chroma_write_cost.py``).
In a server every turn beside a reflection waits for it. Here the
store lives in a child process that does nothing else: a call is one message over a pipe, and
the calling thread waits with the lock released, while the write runs on another core. (A server
kept on one CPU, as ``crs serve`` is, leaves the others to this process: :func:`_run_beside_parent`.)

The child is :class:`~crs.memory.chroma_store.ChromaMemoryStore` itself, so the contract,
isolation and scrubbing are the same (``tests/test_memory_store.py`` runs on both). Calls are
served one at a time, in the order they arrive, as the embedded store serialises them anyway.
Should the child die, the call in flight fails with :class:`StoreUnavailable` (a reflection is
then kept and retried) and the next call starts a new child.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crs.memory.chroma_store import ChromaMemoryStore, collection_name
from crs.memory.entry import MemoryEntry, MemoryKind
from crs.memory.store import MemoryHit, MemoryStoreError, StoreUnavailable, checked_user_id

__all__ = ["ProcessMemoryStore"]

_START_SECONDS = 120.0  # importing chromadb and opening a large store on a slow disk
_STOP_SECONDS = 30.0
_READS = frozenset({"get", "entries", "search", "embed", "count", "heartbeat"})
_PORTABLE = (MemoryStoreError, ValueError, TypeError, KeyError)  # errors sent back as they are


def _serve(conn: Connection) -> None:
    """The child: open the store, then answer calls until the parent closes the pipe."""
    path, options = conn.recv()
    try:
        store = ChromaMemoryStore.persistent(path, **options)
    except Exception as exc:
        conn.send((False, _portable(exc)))
        return
    conn.send((True, store.users_with_memories()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        user_id, method, args, kwargs = message
        try:
            target: Any = store if user_id is None else store.for_user(user_id)
            reply: tuple[bool, Any] = (True, getattr(target, method)(*args, **kwargs))
        except Exception as exc:
            reply = (False, _portable(exc))
        conn.send(reply)


def _portable(exc: Exception) -> Exception:
    """An error that survives the trip to the parent (a backend's own may not pickle)."""
    if isinstance(exc, _PORTABLE) and type(exc).__module__.startswith(("builtins", "crs.")):
        return exc
    return MemoryStoreError(f"memory store: {type(exc).__name__}: {exc}")


class ProcessMemoryStore:
    """Memories in an embedded Chroma store run by a child process. Build with :meth:`persistent`."""

    def __init__(self, path: str | Path, *, state_dir: str | Path | None = None, **options: Any) -> None:
        self._path = Path(path)
        self._state_dir = Path(state_dir) if state_dir is not None else self._path / "derived"
        self._options = {**options, "state_dir": self._state_dir}
        self._turn = threading.Condition()  # who uses the pipe next: reads first (see _at_pipe)
        self._busy = False  # a call is at the pipe: one at a time, the child answers in order
        self._reads_waiting = 0
        # Who has memories, by collection name (per-user layout; None: unknown). Every write to
        # an embedded store passes through here, so a read for anyone else is answered here: a
        # new person's first turn does not wait behind another's write.
        self._stored: set[str] | None = None
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))

    @classmethod
    def persistent(cls, path: str | Path, **kwargs: Any) -> ProcessMemoryStore:
        """Start the child and open the store at ``path``; its errors (a damaged file, a folder
        that cannot be made) are raised here, as :meth:`ChromaMemoryStore.persistent` raises them."""
        store = cls(path, **kwargs)
        store._start()
        return store

    # ------------------------------------------------------------------ public
    @property
    def state_dir(self) -> Path | None:
        return self._state_dir

    def for_user(self, user_id: str) -> _RemoteUserMemories:
        checked_user_id(user_id)
        return _RemoteUserMemories(self, user_id)

    def forget_user(self, user_id: str) -> int:
        return int(self._call(None, "forget_user", user_id))

    def scrub(self) -> list[str]:
        return list(self._call(None, "scrub"))

    def heartbeat(self) -> None:
        self._call(None, "heartbeat")

    def close(self) -> None:
        """Stop the child once it has answered every call sent to it (idempotent)."""
        with self._at_pipe(read=False):
            self._closed = True
            self._stop()

    # ---------------------------------------------------------------- internal
    def _call(self, user_id: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._at_pipe(read=method in _READS):
            return self._send(user_id, method, args, kwargs)

    def _has_none(self, user_id: str) -> bool:
        """True when the user certainly has no memories (nothing was ever written for them)."""
        return self._stored is not None and collection_name(user_id) not in self._stored

    def _writing(self, user_id: str) -> None:
        if self._stored is not None:
            self._stored.add(collection_name(user_id))

    @contextlib.contextmanager
    def _at_pipe(self, *, read: bool) -> Iterator[None]:
        """Hold the pipe, once it is free. Reads go before waiting writes: a read is a person
        waiting for a reply, a write is a reflection in the background (one user's calls are
        already in order: a read of theirs waits for their queued writes before it is made)."""
        with self._turn:
            self._reads_waiting += read
            try:
                while self._busy or (not read and self._reads_waiting):
                    self._turn.wait()
            finally:
                self._reads_waiting -= read
            self._busy = True
        try:
            yield
        finally:
            with self._turn:
                self._busy = False
                self._turn.notify_all()

    def _send(self, user_id: str | None, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One call to the child (the caller holds the pipe); a child found dead is started again."""
        if self._closed:
            raise StoreUnavailable("memory store: it was closed")
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._start()
        assert self._conn is not None
        try:
            self._conn.send((user_id, method, args, kwargs))
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._stop()
            raise StoreUnavailable(f"memory store: its process stopped (exit code {code}) during {method}; "
                                   "the next call starts it again") from exc
        if not ok:
            raise value
        return value

    def _start(self) -> None:
        # A fresh interpreter, not multiprocessing: fork copies locks other threads hold, and spawn
        # runs the parent's main script again (a script without a __main__ guard would loop).
        # Its own session: Ctrl-C at a terminal stops the parent, which then stops the child.
        ours, theirs = socket.socketpair()
        with theirs:
            proc = subprocess.Popen([sys.executable, "-m", "crs.memory.process_store", str(theirs.fileno())],
                                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True)
        parent = Connection(ours.detach())
        try:
            parent.send((str(self._path), self._options))
            if not parent.poll(_START_SECONDS):
                raise StoreUnavailable(f"memory store: its process did not open {self._path} in {_START_SECONDS:.0f} s")
            ok, value = parent.recv()
        except (EOFError, OSError) as exc:
            raise StoreUnavailable(f"memory store: its process stopped while opening {self._path} "
                                   f"(exit code {proc.wait(_STOP_SECONDS)})") from exc
        except StoreUnavailable:
            proc.kill()
            raise
        if not ok:
            proc.wait(_STOP_SECONDS)
            raise value
        _run_beside_parent(proc.pid)
        self._conn, self._proc, self._stored = parent, proc, value

    def _stop(self) -> int | None:
        conn, proc, self._conn, self._proc = self._conn, self._proc, None, None
        if conn is not None:
            with contextlib.suppress(OSError):  # already gone
                conn.send(None)
            conn.close()
        if proc is None:
            return None
        try:
            return proc.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _run_beside_parent(pid: int) -> None:
    """Move the store's process to the CPUs this process is not confined to, if any: a server kept
    on one CPU (``crs.ui.cpus``) leaves the others to its store, which would else inherit that one
    CPU and share it. Every thread it has moves (those it starts later inherit it)."""
    if not hasattr(os, "sched_getaffinity"):
        return
    others = set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0)
    if not others:
        return
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # no /proc here, or the process is gone
        return
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that ended, or CPUs a cpuset does not allow: stays
            os.sched_setaffinity(int(task), others)


def _close_at_exit(ref: weakref.ref[ProcessMemoryStore]) -> None:
    # Registered at open, so it runs after the background writes drain (atexit runs last first).
    store = ref()
    if store is not None:
        store.close()


class _RemoteUserMemories:
    """One user's memories in the child's store; every call names the user, as the handle there does."""

    def __init__(self, store: ProcessMemoryStore, user_id: str) -> None:
        self._store = store
        self._user_id = user_id

    @property
    def user_id(self) -> str:
        return self._user_id

    def upsert(self, entries: Sequence[MemoryEntry]) -> None:
        if entries:
            self._store._writing(self._user_id)  # before: a read meanwhile must ask the child
            self._store._call(self._user_id, "upsert", list(entries))

    def get(self, ids: Iterable[str]) -> list[MemoryEntry]:
        if self._store._has_none(self._user_id):
            return []
        return list(self._store._call(self._user_id, "get", list(ids)))

    def entries(self, *, valid_only: bool = False, kinds: Sequence[MemoryKind] | None = None) -> list[MemoryEntry]:
        if self._store._has_none(self._user_id):
            return []
        return list(self._store._call(self._user_id, "entries", valid_only=valid_only,
                                      kinds=list(kinds) if kinds is not None else None))

    def search(
        self, query: str, k: int, *, valid_only: bool = True, kinds: Sequence[MemoryKind] | None = None
    ) -> tuple[NDArray[np.float32], list[MemoryHit]]:
        qv, hits = self._store._call(self._user_id, "search", query, k, valid_only=valid_only,
                                     kinds=list(kinds) if kinds is not None else None)
        return qv, list(hits)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.asarray(self._store._call(self._user_id, "embed", list(texts)), dtype=np.float32)

    def count(self) -> int:
        if self._store._has_none(self._user_id):
            return 0
        return int(self._store._call(self._user_id, "count"))

    def delete(self, ids: Iterable[str]) -> None:
        self._store._call(self._user_id, "delete", list(ids))

    def clear(self) -> int:
        return int(self._store._call(self._user_id, "clear"))


if __name__ == "__main__":  # the child: python -m crs.memory.process_store FD
    _serve(Connection(int(sys.argv[1])))
