"""The whole transcript of each conversation, as an append-only log beside the checkpoints.

The graph state carries only a window of recent lines (what the next reply needs), so a
checkpoint stays the same size however long a conversation runs. ``Recommender.transcript``
reads the full conversation from this log instead: one row per line, written once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["SqliteTranscriptLog", "TranscriptLog", "transcript_log_for"]

_SCHEMA = (
    # the row id orders the lines: appended in order, never updated
    "CREATE TABLE IF NOT EXISTS crs_transcript (id INTEGER PRIMARY KEY, thread_id TEXT NOT NULL, line TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS crs_transcript_thread ON crs_transcript (thread_id, id)",
)


@runtime_checkable
class TranscriptLog(Protocol):
    """Where the lines of every conversation are kept, in order."""

    def append(self, thread_id: str, lines: Sequence[dict[str, Any]], *,
               earlier: Sequence[dict[str, Any]] = ()) -> None: ...

    def read(self, thread_id: str) -> list[dict[str, Any]]: ...

    def delete_thread(self, thread_id: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def scrub(self) -> None: ...


class SqliteTranscriptLog:
    """A log in a SQLite database: the checkpoint file's own connection, or a file of its own."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock | threading.RLock | None = None,
                 *, owns_file: bool = False) -> None:
        self.conn = conn
        self.lock = lock or threading.Lock()
        self._owns_file = owns_file  # the log's own file: scrub() rebuilds it (else the saver's scrub does)
        with self.lock:
            for statement in _SCHEMA:
                self.conn.execute(statement)
            self.conn.commit()

    @classmethod
    def open(cls, path: str | Path) -> SqliteTranscriptLog:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the checkpoint file (graphs.checkpoint)
        conn.execute("PRAGMA secure_delete=ON")
        return cls(conn, owns_file=True)

    def append(self, thread_id: str, lines: Sequence[dict[str, Any]], *,
               earlier: Sequence[dict[str, Any]] = ()) -> None:
        """Add a turn's lines, after ``earlier`` ones if given (the lines of a conversation
        checkpointed before its lines were logged)."""
        rows = [(thread_id, json.dumps(line, ensure_ascii=False)) for line in (*earlier, *lines)]
        if not rows:
            return
        with self.lock:
            self.conn.executemany("INSERT INTO crs_transcript (thread_id, line) VALUES (?, ?)", rows)
            self.conn.commit()

    def read(self, thread_id: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute("SELECT line FROM crs_transcript WHERE thread_id = ? ORDER BY id",
                                     (thread_id,)).fetchall()
        return [json.loads(line) for (line,) in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self.lock:
            self.conn.execute("DELETE FROM crs_transcript WHERE thread_id = ?", (thread_id,))
            self.conn.commit()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every thread whose id starts with ``prefix`` (all of one user's)."""
        with self.lock:
            cur = self.conn.execute("SELECT DISTINCT thread_id FROM crs_transcript WHERE substr(thread_id, 1, ?) = ?",
                                    (len(prefix), prefix))
            threads = [t for (t,) in cur.fetchall()]
            self.conn.executemany("DELETE FROM crs_transcript WHERE thread_id = ?", [(t,) for t in threads])
            self.conn.commit()
        return len(threads)

    def scrub(self) -> None:
        """No bytes of deleted lines left in the file or its WAL (a shared file is the saver's to scrub)."""
        if not self._owns_file:
            return
        with self.lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def transcript_log_for(saver: BaseCheckpointSaver[Any], fallback: str | Path) -> TranscriptLog:
    """The log for a checkpointer: in the same SQLite file for a :class:`SqliteSaver` (one file
    to back up, and forget-me's scrub covers both), else a SQLite file of its own at ``fallback``."""
    if isinstance(saver, SqliteSaver):
        return SqliteTranscriptLog(saver.conn, saver.lock)
    conn: Any = getattr(saver, "conn", None)  # PostgresSaver's, named only: the postgres extra is optional
    if type(saver).__name__ == "PostgresSaver" and hasattr(conn, "connection"):  # a pool: every worker's
        from crs.graphs.postgres import PostgresTranscriptLog

        return PostgresTranscriptLog(conn)
    return SqliteTranscriptLog.open(fallback)
