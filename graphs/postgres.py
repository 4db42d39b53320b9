"""Conversations in PostgreSQL, shared by every worker: LangGraph's ``PostgresSaver`` on a
connection pool, and one advisory lock per user so that two workers never run turns of the
same person at once.

Needs the ``postgres`` extra (``pip install 'crs[postgres]'``: langgraph-checkpoint-postgres,
psycopg 3 and its pool). Nothing here is imported unless ``checkpoints_url`` is set.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CheckpointURLError",
    "ConversationStoreUnavailable",
    "PostgresTranscriptLog",
    "UserLocks",
    "check_url",
    "is_store_down",
    "postgres_checkpointer",
    "redact",
    "user_thread_ids",
]

_SCHEMES = ("postgresql", "postgres")


class CheckpointURLError(ValueError):
    """``checkpoints_url`` is not a PostgreSQL URL crs can use; the message says why."""


class ConversationStoreUnavailable(RuntimeError):
    """PostgreSQL does not answer (down, restarting, out of connections); try again later."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs.

    >>> redact("postgresql://crs:secret@db:5432/crs")
    'postgresql://crs:***@db:5432/crs'
    """
    return re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)


def check_url(url: str) -> str:
    """``url`` if it is a ``postgresql://`` URL with a host or socket folder and a database, else
    :class:`CheckpointURLError`.

    >>> check_url("postgresql://crs@127.0.0.1:5433/crs")
    'postgresql://crs@127.0.0.1:5433/crs'
    >>> check_url("mysql://db/crs")
    Traceback (most recent call last):
    ...
    crs.graphs.postgres.CheckpointURLError: checkpoints_url must start with postgresql://, got 'mysql://db/crs'
    """
    if not isinstance(url, str) or "://" not in url or url.split("://", 1)[0].lower() not in _SCHEMES:
        raise CheckpointURLError(f"checkpoints_url must start with postgresql://, got {redact(str(url))!r}")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise CheckpointURLError(f"checkpoints_url {redact(url)!r} is not a valid URL: {exc}") from None
    if not parts.path.strip("/"):
        raise CheckpointURLError(f"checkpoints_url {redact(url)!r} names no database "
                                 "(postgresql://user@host:port/DATABASE)")
    if not parts.hostname and "host=" not in parts.query:
        raise CheckpointURLError(f"checkpoints_url {redact(url)!r} names no host "
                                 "(postgresql://user@HOST:port/database, or ?host=/socket/folder)")
    return url


def _driver() -> tuple[Any, Any, Any]:
    try:
        import psycopg
        import psycopg_pool
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError as exc:
        raise ConversationStoreUnavailable(
            f"checkpoints_url needs the postgres extra: pip install 'crs[postgres]' ({exc.name} is missing)"
        ) from None
    return psycopg, psycopg_pool, PostgresSaver


def is_store_down(exc: BaseException) -> bool:
    """True when ``exc`` says PostgreSQL cannot be reached now (not a bug, not bad input)."""
    if isinstance(exc, ConversationStoreUnavailable):
        return True
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | psycopg_pool.PoolTimeout)


def _pool(url: str, *, max_size: int, name: str, timeout: float) -> Any:
    psycopg, psycopg_pool, _ = _driver()
    from psycopg.rows import dict_row

    pool = psycopg_pool.ConnectionPool(
        url, min_size=1, max_size=max_size, name=name, open=False, timeout=timeout,
        # a connection broken by a server restart is found and replaced before it is handed out
        check=_IdleCheck(psycopg_pool.ConnectionPool.check_connection),
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row, "connect_timeout": 5},
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except psycopg_pool.PoolTimeout:
        pool.close()
        try:  # one direct attempt, for the server's own reason (refused, no such database, auth)
            psycopg.connect(url, connect_timeout=3).close()
            reason = "no connection within the timeout"
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
        raise ConversationStoreUnavailable(f"PostgreSQL at {redact(url)} does not answer: {reason}") from None
    return pool


class _IdleCheck:
    """Check a connection before it is handed out only when it has been idle a while.

    A check is a round trip. Checking every hand-out cost a turn six of its some fifteen
    statements; a connection handed out less than ``idle_seconds`` ago was working then. If the
    server restarted in between, the statement fails instead, the connection is discarded, and
    the request gets the same 503 as one sent while the server was down.
    """

    def __init__(self, check: Callable[[Any], None], idle_seconds: float = 2.0) -> None:
        self.check, self.idle_seconds = check, idle_seconds
        self._handed_out: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, conn: Any) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._handed_out.get(conn)
            self._handed_out[conn] = now
        if last is None or now - last >= self.idle_seconds:
            self.check(conn)


def postgres_checkpointer(url: str, *, max_turns: int = 16, timeout: float = 5.0) -> Any:
    """A ``PostgresSaver`` on a pool for ``url``, its tables created if needed.

    The saver carries :class:`UserLocks` on a second pool as ``saver.user_locks``: at most
    ``max_turns`` turns of a process hold a user's lock at once (the others queue). So a worker
    opens at most ``max_turns + 2`` connections (the saver runs one query at a time per process).
    Setting up the tables is done under an advisory lock, so workers starting together do not race.
    """
    check_url(url)
    _, _, PostgresSaver = _driver()  # noqa: N806 - a class
    pool = _pool(url, max_size=2, name="crs-checkpoints", timeout=timeout)
    saver = PostgresSaver(pool)
    locks = UserLocks(_pool(url, max_size=max_turns, name="crs-locks", timeout=timeout))
    with locks.hold("crs:setup"):
        saver.setup()
        PostgresTranscriptLog(pool).setup()
    saver.user_locks = locks
    return saver


def user_thread_ids(saver: Any, prefix: str) -> list[str]:
    """The threads whose id starts with ``prefix``, in one query (no LIKE: ids may hold ``%``)."""
    with saver._cursor() as cur:
        cur.execute("SELECT DISTINCT thread_id FROM checkpoints WHERE left(thread_id, %s) = %s",
                    (len(prefix), prefix))
        return sorted(str(row["thread_id"]) for row in cur.fetchall())


def _key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name (stable across processes)."""
    digest = hashlib.blake2b(b"crs-user-lock:" + name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class UserLocks:
    """One PostgreSQL session advisory lock per key, held on a pooled connection for as long as the
    block runs. A worker that dies drops its connection, and PostgreSQL releases its locks.

    Re-entrant per thread: a turn that forgets its user takes the same lock again.
    """

    def __init__(self, pool: Any, *, wait_seconds: float = 60.0) -> None:
        self.pool, self.wait_seconds = pool, wait_seconds
        self._timed: weakref.WeakSet[Any] = weakref.WeakSet()  # connections whose lock_timeout is set
        self._held = threading.local()
        # Turns queue here for a connection: the pool's own timeout then only fires when
        # PostgreSQL cannot give one (down), never because every connection is busy.
        self._slots = threading.BoundedSemaphore(int(getattr(pool, "max_size", 32)))

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        held: dict[str, int] = self._held.__dict__.setdefault("names", {})
        if held.get(name):
            held[name] += 1
            try:
                yield
            finally:
                held[name] -= 1
            return
        key = _key(name)
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise ConversationStoreUnavailable(f"every connection to PostgreSQL has been busy for "
                                               f"{self.wait_seconds:g} s")
        stack = ExitStack()
        stack.callback(self._slots.release)
        try:
            conn = stack.enter_context(self.pool.connection())
            if conn not in self._timed:  # once per connection, not once per turn
                conn.execute(f"SET lock_timeout = '{int(self.wait_seconds * 1000)}ms'")
                self._timed.add(conn)
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except Exception as exc:
            stack.close()
            if type(exc).__name__ == "LockNotAvailable":
                raise ConversationStoreUnavailable(
                    f"another turn of this user has been running for over {self.wait_seconds:g} s") from exc
            if is_store_down(exc) and not isinstance(exc, ConversationStoreUnavailable):
                raise ConversationStoreUnavailable(f"PostgreSQL does not answer: {exc}") from exc
            raise
        with stack:
            held[name] = 1
            try:
                yield
            finally:
                held.pop(name, None)
                # a broken connection: the server dropped its locks with it
                with suppress(Exception):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self.pool.close()


class PostgresTranscriptLog:
    """The whole transcript of each conversation (see :mod:`crs.graphs.transcript`) in the same
    PostgreSQL database as the checkpoints, so every worker reads it and forget-me deletes it."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def setup(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS crs_transcript (id BIGSERIAL PRIMARY KEY, "
                         "thread_id TEXT NOT NULL, line TEXT NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS crs_transcript_thread ON crs_transcript (thread_id, id)")

    def append(self, thread_id: str, lines: Any, *, earlier: Any = ()) -> None:
        rows = [(thread_id, json.dumps(line, ensure_ascii=False)) for line in (*earlier, *lines)]
        if not rows:
            return
        from psycopg import sql

        # one statement, all rows or none (a transaction around single inserts is four round trips)
        query = sql.SQL("INSERT INTO crs_transcript (thread_id, line) VALUES {}").format(
            sql.SQL(", ").join([sql.SQL("(%s, %s)")] * len(rows)))
        with self.pool.connection() as conn:
            conn.execute(query, [v for row in rows for v in row])

    def read(self, thread_id: str) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT line FROM crs_transcript WHERE thread_id = %s ORDER BY id",
                                (thread_id,)).fetchall()
        return [json.loads(row["line"]) for row in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM crs_transcript WHERE thread_id = %s", (thread_id,))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every thread whose id starts with ``prefix`` (all of one user's)."""
        with self.pool.connection() as conn:
            rows = conn.execute("DELETE FROM crs_transcript WHERE left(thread_id, %s) = %s RETURNING thread_id",
                                (len(prefix), prefix)).fetchall()
        return len({row["thread_id"] for row in rows})

    def scrub(self) -> None:
        """Deleted rows are the server's to vacuum; nothing to do here."""

