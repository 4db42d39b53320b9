"""Durable conversation checkpoints: one SQLite file, one thread per (user, session)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["delete_user_threads", "scrub_checkpoints", "sqlite_checkpointer", "thread_id", "user_thread_prefix"]


def user_thread_prefix(user_id: str) -> str:
    # The length prefix keeps ids unambiguous whatever characters a user id contains.
    return f"{len(user_id)}:{user_id}:"


def thread_id(user_id: str, session_id: str) -> str:
    """The checkpoint thread of one conversation.

    >>> thread_id("ann", "s1")
    '3:ann:s1'
    """
    return user_thread_prefix(user_id) + session_id


def sqlite_checkpointer(path: str | Path) -> SqliteSaver:
    """A :class:`SqliteSaver` on a file (created with its folder), safe to share across threads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    conn.execute("PRAGMA secure_delete=ON")  # a deleted conversation's bytes are overwritten, not left in free pages
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def delete_user_threads(saver: BaseCheckpointSaver[Any], user_id: str) -> int:
    """Delete every checkpoint thread of one user; returns how many threads were removed."""
    prefix = user_thread_prefix(user_id)
    if isinstance(saver, SqliteSaver):  # one indexed query instead of reading every checkpoint
        with saver.cursor() as cur:
            cur.execute("SELECT DISTINCT thread_id FROM checkpoints")
            threads = {str(t) for (t,) in cur.fetchall()}
    else:
        threads = {str(c.config["configurable"]["thread_id"]) for c in saver.list(None)}
    mine = sorted(t for t in threads if t.startswith(prefix))
    for t in mine:
        saver.delete_thread(t)
    return len(mine)


def scrub_checkpoints(saver: BaseCheckpointSaver[Any]) -> None:
    """Leave no bytes of deleted threads on disk: rebuild the file (VACUUM) and empty the WAL.

    ``secure_delete`` zeroes deleted rows in the pages it rewrites, but older copies of those
    pages can sit in the write-ahead log and in freed pages; VACUUM rewrites the database
    without them and a TRUNCATE checkpoint cuts the WAL to zero bytes. Savers that are not
    SQLite files are left alone (their own deletion is all there is).
    """
    if not isinstance(saver, SqliteSaver):
        return
    with saver.lock:
        saver.conn.commit()
        saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        saver.conn.execute("VACUUM")
        busy = saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy and busy[0]:
        raise sqlite3.OperationalError("the checkpoint log is in use by another connection; it was not emptied")
