"""Durable conversation checkpoints: one SQLite file, one thread per (user, session)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
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
