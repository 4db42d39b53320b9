"""Durable conversation checkpoints: one SQLite file, one thread per (user, session)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["delete_user_threads", "sqlite_checkpointer", "thread_id", "user_thread_prefix"]


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
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def delete_user_threads(saver: SqliteSaver, user_id: str) -> int:
    """Delete every checkpoint thread of one user; returns how many threads were removed."""
    prefix = user_thread_prefix(user_id)
    with saver.cursor() as cur:
        cur.execute("SELECT DISTINCT thread_id FROM checkpoints")
        threads = [t for (t,) in cur.fetchall() if str(t).startswith(prefix)]
    for t in threads:
        saver.delete_thread(t)
    return len(threads)
