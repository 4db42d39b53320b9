"""Embedded-mode faults: a full disk and damaged SQLite files.

- A full disk is a real one: a 6 MB tmpfs mounted for the test (needs root; elsewhere the test
  skips, and fails in CI where CRS_REQUIRE_SERVICES is set). A turn that cannot be saved raises
  ``CheckpointError`` naming the file; the conversation stays where it was and, once space is
  freed, goes on exactly as an undisturbed one does. A reflection that cannot be written raises
  ``MemoryStoreError``; freed, it writes the same memories as an undisturbed one.
- A damaged checkpoint file or Chroma database is named at start (``Recommender.from_settings``,
  ``crs chat``, ``crs serve``: one line, exit 2); no file is changed, and the other store's data
  stays readable.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import missing
from typer.testing import CliRunner

from crs import CheckpointError, Recommender, Settings
from crs.cli import app
from crs.graphs.checkpoint import thread_id
from crs.memory import MemoryStoreError, ReflectiveMemory, StoreCorrupted

TURNS = ["hi", "I love jazz", "yes"]  # the third is the one that meets the full disk
CONFIG: dict[str, dict[str, str]] = {"configurable": {"thread_id": thread_id("ann", "s1")}}


def _settings(state: Path, **kw: object) -> Settings:
    return Settings(state_dir=state, **kw)  # type: ignore[arg-type]


def _digests(folder: Path) -> dict[str, str]:
    """Every file's digest, but SQLite's transient files when they hold no data (its shared-memory
    index, an empty write-ahead log): opening and closing a database makes and removes those."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def _quick_check(db: Path) -> str:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])
    finally:
        conn.close()


def _fill(folder: Path) -> Path:
    """Write until the disk says no space; returns the filler to delete later."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs, mounted for this test only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        missing("SERVICES", f"a full-disk test needs to mount a small tmpfs (root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str]]:
    """The replies and memories of the same conversation on a disk with room."""
    rec = Recommender.from_settings(_settings(tmp_path_factory.mktemp("control")))
    replies = [rec.chat("ann", "s1", t).text for t in [*TURNS, "the first one"]]
    rec.end_session("ann", "s1")
    return replies, sorted(m.text for m in rec.memories("ann"))


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_is_a_clear_error_and_the_conversation_goes_on(
        small_disk: Path, tmp_path: Path, undisturbed: tuple[list[str], list[str]]) -> None:
    replies, memories = undisturbed
    # The checkpoints on the small disk, memories on one with room: a full memory disk is the
    # next test's (this process's Chroma client can hang after a write failed for want of space).
    checkpoints = small_disk / "checkpoints.sqlite"
    rec = Recommender.from_settings(_settings(tmp_path / "state", checkpoints=checkpoints))
    assert [rec.chat("ann", "s1", t).text for t in TURNS[:2]] == replies[:2]
    config = {"configurable": {"thread_id": thread_id("ann", "s1")}}
    before = rec.app.get_state(config).values
    filler = _fill(small_disk)
    with pytest.raises(CheckpointError) as failed:
        rec.chat("ann", "s1", TURNS[2])
    message = str(failed.value)
    assert str(checkpoints) in message and "disk is full" in message
    assert "\n" not in message
    assert rec.app.get_state(config).values == before  # the failed turn left nothing behind
    filler.unlink()
    # Space again: the same conversation goes on as if nothing had happened.
    assert [rec.chat("ann", "s1", t).text for t in [TURNS[2], "the first one"]] == replies[2:]
    rec.end_session("ann", "s1")
    assert sorted(m.text for m in rec.memories("ann")) == memories
    assert _quick_check(checkpoints) == "ok"


RECOVERY = """
import sys
from crs.memory import ChromaMemoryStore, MemoryEntry
store = ChromaMemoryStore.persistent(sys.argv[1])
mine = store.for_user("ann")
before = mine.count()
mine.upsert([MemoryEntry(id="m-after", user_id="ann", kind="fact", text="Has kids.")])
print(before, mine.count(), [e.text for e in mine.entries()])
"""


@pytest.mark.slow
def test_a_full_memory_disk_never_breaks_a_turn_and_the_store_opens_again(
        small_disk: Path, tmp_path: Path, undisturbed: tuple[list[str], list[str]]) -> None:
    replies, _ = undisturbed
    # Conversations on a disk with room, memories on the small one.
    settings = _settings(tmp_path / "state", checkpoints=tmp_path / "state" / "checkpoints.sqlite")
    graph = Recommender.from_settings(settings, memory=None).graph
    rec = Recommender.from_settings(settings, memory=ReflectiveMemory.open(small_disk / "memory", graph=graph))
    assert rec.chat("ann", "s1", TURNS[0]).text == replies[0]
    filler = _fill(small_disk)
    # "I love jazz" is a statement, written to memory in its own turn: the write fails, the turn does not.
    assert [rec.chat("ann", "s1", t).text for t in TURNS[1:]] == replies[1:3]
    with pytest.raises(MemoryStoreError) as failed:
        rec.end_session("ann", "s1")
    assert "full" in str(failed.value)
    filler.unlink()
    assert _quick_check(small_disk / "memory" / "chroma.sqlite3") == "ok"
    # Known limit: this process's embedded Chroma client can hang on its next read after a
    # write failed for want of space (seen with chromadb 1.5), so the store is reopened the way
    # a restarted process opens it: it opens, reads and writes.
    done = subprocess.run([sys.executable, "-c", RECOVERY, str(small_disk / "memory")],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("['Has kids.']") or "Has kids." in done.stdout


def _damage(path: Path, where: str) -> None:
    data = bytearray(path.read_bytes())
    at = 0 if where == "header" else len(data) // 2
    data[at:at + 4096] = b"\xff" * min(4096, len(data) - at)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], str]:
    """A state folder with one conversation and its memories (copied per test)."""
    state = tmp_path_factory.mktemp("stored") / "state"
    rec = Recommender.from_settings(_settings(state))
    for text in TURNS[:2]:
        rec.chat("ann", "s1", text)
    rec.end_session("ann", "s1")
    memories = sorted(m.text for m in rec.memories("ann"))
    assert memories
    rec.checkpointer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
    return state, memories, repr(rec.app.get_state(CONFIG).values)


def _copy(stored: Path, tmp_path: Path) -> Path:
    state = tmp_path / "state"
    shutil.copytree(stored, state)
    return state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("where", ["header", "middle"])
def test_a_damaged_checkpoint_file_is_named_at_start_and_memories_stay_readable(
        stored: tuple[Path, list[str], str], tmp_path: Path, where: str) -> None:
    source, memories, _ = stored
    state = _copy(source, tmp_path)
    damaged = state / "checkpoints.sqlite"
    _damage(damaged, where)
    files = _digests(state)
    with pytest.raises(CheckpointError) as failed:
        Recommender.from_settings(_settings(state))
    assert str(damaged) in str(failed.value) and "damaged" in str(failed.value)
    for command in (["chat", "--state-dir", str(state)],
                    ["serve", "--state-dir", str(state), "--insecure-no-auth", "--port", str(_free_port())]):
        result = CliRunner().invoke(app, command, input="hi\n")
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[-1].startswith("crs: error: conversation store ") and str(damaged) in lines[-1]
        assert not any(line.startswith("Traceback") for line in lines)
    assert _digests(state) == files  # nothing was written, not even to the damaged file
    damaged.rename(state / "checkpoints.damaged")  # what the message advises
    rec = Recommender.from_settings(_settings(state))
    assert sorted(m.text for m in rec.memories("ann")) == memories


@pytest.mark.parametrize("where", ["header", "middle"])
def test_a_damaged_chroma_file_is_named_at_start_and_conversations_stay_intact(
        stored: tuple[Path, list[str], str], tmp_path: Path, where: str) -> None:
    source, _, conversation = stored
    state = _copy(source, tmp_path)
    damaged = state / "memory" / "chroma.sqlite3"
    _damage(damaged, where)
    files = _digests(state)
    with pytest.raises(StoreCorrupted) as failed:
        Recommender.from_settings(_settings(state))
    assert str(damaged) in str(failed.value)
    result = CliRunner().invoke(app, ["chat", "--state-dir", str(state), "--session", "s1", "--user", "ann"],
                                input="yes\n")
    assert result.exit_code == 2, result.output
    assert [line for line in result.output.splitlines() if line.strip()][-1].startswith(
        f"crs: error: memory store: cannot open {damaged}: it is damaged")
    assert _digests(state) == files
    (state / "memory").rename(state / f"memory.damaged-{uuid.uuid4().hex[:6]}")
    rec = Recommender.from_settings(_settings(state))
    assert repr(rec.app.get_state(CONFIG).values) == conversation  # the conversation is where it was
