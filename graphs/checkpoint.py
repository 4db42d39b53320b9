"""Durable conversation checkpoints: one SQLite file, one thread per (user, session)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["KEEP_CHECKPOINTS", "delete_user_threads", "prune_thread", "scrub_checkpoints", "sqlite_checkpointer",
           "thread_id", "user_thread_prefix"]

log = logging.getLogger(__name__)

#: checkpoints kept per thread: the current one (what the next turn loads, and a failed turn
#: rolls back to) and the one before it, to look at or fork from
KEEP_CHECKPOINTS = 2


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
    # WAL with NORMAL sync: a commit survives the process crashing (not a power cut) and costs
    # no fsync; with FULL, the three commits of a turn (checkpoint, log, prune) dominated its time.
    conn.execute("PRAGMA synchronous=NORMAL")
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


def prune_thread(saver: BaseCheckpointSaver[Any], thread_id: str, keep: int = KEEP_CHECKPOINTS) -> None:
    """Delete all but the newest ``keep`` checkpoints of one thread (and their pending writes).

    - :class:`SqliteSaver` (langgraph-checkpoint-sqlite 3.x) implements neither ``prune`` nor
      ``delete_for_runs``: one indexed DELETE per table does it here. Checkpoint ids are
      time-ordered (uuid6), so "older" is "smaller id".
    - Any other saver goes through its own ``prune(strategy="keep_latest")`` (PostgresSaver
      implements it, blobs included), which keeps only the newest one whatever ``keep`` says.
    - A saver with neither is left alone, with one warning: its threads then keep every
      checkpoint (each of bounded size, so storage still grows linearly).
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    if isinstance(saver, SqliteSaver):
        with saver.cursor() as cur:
            row = cur.execute("SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
                              "ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?", (thread_id, keep - 1)).fetchone()
            if row is None:
                return
            cur.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id < ?", (thread_id, row[0]))
            cur.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id < ?", (thread_id, row[0]))
        return
    if type(saver) in _CANNOT_PRUNE:
        return
    try:
        saver.prune([thread_id], strategy="keep_latest")
    except NotImplementedError:
        _CANNOT_PRUNE.add(type(saver))
        log.warning("%s cannot prune old checkpoints; every checkpoint of a conversation is kept",
                    type(saver).__name__)


_CANNOT_PRUNE: set[type] = set()


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
