"""Durable conversation checkpoints: one SQLite file, one thread per (user, session)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = [
    "KEEP_CHECKPOINTS",
    "CheckpointError",
    "checkpoint_failure",
    "delete_user_threads",
    "prune_due",
    "prune_thread",
    "saver_path",
    "scrub_checkpoints",
    "sqlite_checkpointer",
    "thread_id",
    "user_thread_prefix",
]

log = logging.getLogger(__name__)

#: checkpoints kept per thread: the current one (what the next turn loads, and a failed turn
#: rolls back to) and the one before it, to look at or fork from
KEEP_CHECKPOINTS = 2


class CheckpointError(RuntimeError):
    """The conversation checkpoint file cannot be opened or written (damaged, or its disk is
    full). The message names the file and says what to do; ``path`` holds it."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = str(path) if path is not None else None


def _reason(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text:
        return f"the disk is full ({text})"
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return f"the file is damaged ({text})"
    return text


def checkpoint_failure(path: str | Path | None, exc: sqlite3.Error, *, during: str) -> CheckpointError:
    """The :class:`CheckpointError` for an SQLite failure ``during`` some work on ``path``."""
    where = f"conversation store {path}" if path is not None else "conversation store"
    advice = ("free some space and try again" if "full" in str(exc)
              else "move the file away (conversations start afresh) or restore it from a backup")
    return CheckpointError(f"{where}: {during}: {_reason(exc)}; {advice}", path)


def saver_path(saver: BaseCheckpointSaver[Any]) -> str | None:
    """The file behind an SQLite saver (None for other savers or an in-memory database)."""
    conn = getattr(saver, "conn", None)
    if not isinstance(conn, sqlite3.Connection):
        return None
    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
    except sqlite3.Error:
        return None
    return next((str(r[2]) for r in rows if r[1] == "main" and r[2]), None)


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
    try:
        # Read the whole file once before writing anything: a damaged one is named now, at
        # start, not by a failing turn later, and it is left exactly as it was.
        problems = [" ".join(str(r[0]).split()) for r in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("database disk image is malformed: " + "; ".join(problems[:3]))
        conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        # WAL with NORMAL sync: a commit survives the process crashing (not a power cut) and costs
        # no fsync; with FULL, the three commits of a turn (checkpoint, log, prune) dominated its time.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA secure_delete=ON")  # a deleted conversation's bytes are overwritten, not kept
        saver = SqliteSaver(conn)
        saver.setup()
    except sqlite3.Error as exc:
        conn.close()
        raise checkpoint_failure(path, exc, during="cannot open it") from exc
    return saver


def delete_user_threads(saver: BaseCheckpointSaver[Any], user_id: str) -> int:
    """Delete every checkpoint thread of one user; returns how many threads were removed."""
    prefix = user_thread_prefix(user_id)
    if isinstance(saver, SqliteSaver):  # one indexed query instead of reading every checkpoint
        with saver.cursor() as cur:
            cur.execute("SELECT DISTINCT thread_id FROM checkpoints")
            threads = {str(t) for (t,) in cur.fetchall()}
    elif type(saver).__name__ == "PostgresSaver":  # a shared server: ask it, do not read every checkpoint
        from crs.graphs.postgres import user_thread_ids

        threads = set(user_thread_ids(saver, prefix))
    else:
        threads = {str(c.config["configurable"]["thread_id"]) for c in saver.list(None)}
    mine = sorted(t for t in threads if t.startswith(prefix))
    for t in mine:
        saver.delete_thread(t)
    return len(mine)


#: graph steps between prunes where a prune is costly (a turn runs 5 to 9 steps, so about every
#: 8 turns): PostgresSaver's prune is some 30 statements, more than the turn's own writes
PRUNE_EVERY_STEPS = 64
_MOST_STEPS_PER_TURN = 10


def prune_due(saver: BaseCheckpointSaver[Any], step_before: int | None) -> bool:
    """Whether the turn that followed a checkpoint at graph step ``step_before`` should prune.

    An SQLite prune is one indexed DELETE per table: every turn. Other savers prune when the
    step count crosses into a new block of :data:`PRUNE_EVERY_STEPS`; a turn advances fewer
    steps than the window checked, so no block is skipped, with no counter to keep anywhere
    (several workers see the same steps in the checkpoint). The first block is not pruned:
    a conversation's first turns have little to delete, and most conversations end within it.

    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> [prune_due(InMemorySaver(), s) for s in (None, 0, 9, 10, 63, 64, 70, 74, 128)]
    [False, False, False, False, False, True, True, False, True]
    """
    if isinstance(saver, SqliteSaver):
        return True
    return step_before is not None and step_before >= PRUNE_EVERY_STEPS and \
        step_before % PRUNE_EVERY_STEPS < _MOST_STEPS_PER_TURN


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
