"""Checkpoint storage of one long conversation: bounded state (now) against the whole transcript
in every checkpoint (before), in the same run.

    python benchmarks/checkpoint_growth.py [--turns 200] [--memory] [--out benchmarks/out/checkpoint_growth.json]

One user talks ``--turns`` ordinary turns (a genre, yes, no, "why?", "start over", ...) to a
``Recommender`` on the bundled catalog with a real SQLite checkpoint file (memory off). After
10/50/100/200 turns it records the bytes stored for that conversation: checkpoint rows and
pending writes of the thread, plus its lines in the transcript log, and the database file's
size once its WAL is checkpointed. ``before`` is the same code with ``transcript_window=None,
keep_checkpoints=None`` (every checkpoint kept, each holding the whole transcript). Floor: the
bounded storage grows linearly, at most 2 KB per turn. ``--memory`` turns long-term memory on
(embedded Chroma): the state then also carries the session's record of not-yet-reflected turns,
whose size is reported at each mark (``memory_record_bytes``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_json

from crs.api import Recommender
from crs.graphs.checkpoint import thread_id
from crs.settings import Settings

FLOOR_BYTES_PER_TURN = 2048
LINES = ["some jazz please", "no", "yes", "from the 60s", "just recommend something", "why the first one?",
         "something calmer maybe", "I love rock", "no thanks", "start over"]
MARKS = (10, 50, 100, 200)


def stored_bytes(rec: Recommender, thread: str) -> dict[str, int]:
    """What one conversation occupies: its checkpoint rows, pending writes and logged lines."""
    conn = rec.checkpointer.conn  # type: ignore[attr-defined]
    with rec.checkpointer.lock:  # type: ignore[attr-defined]
        n, ck = conn.execute("SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0) "
                             "FROM checkpoints WHERE thread_id = ?", (thread,)).fetchone()
        (wr,) = conn.execute("SELECT coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = ?",
                             (thread,)).fetchone()
        (log,) = conn.execute("SELECT coalesce(sum(length(line)), 0) FROM crs_transcript WHERE thread_id = ?",
                              (thread,)).fetchone()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
    return {"checkpoints": int(n), "checkpoint_bytes": int(ck), "write_bytes": int(wr), "log_bytes": int(log),
            "bytes": int(ck + wr + log), "file_bytes": int(pages * size)}


def run(turns: int, *, bounded: bool, memory: bool = False) -> dict[str, Any]:
    marks = [m for m in MARKS if m <= turns] or [turns]
    extra: dict[str, Any] = {} if bounded else {"transcript_window": None, "keep_checkpoints": None}
    with tempfile.TemporaryDirectory(prefix="crs-growth-") as tmp:
        rec = Recommender.from_settings(Settings(state_dir=Path(tmp), memory=memory), **extra)
        thread = thread_id("reader", "long")
        points: dict[str, Any] = {}
        start = time.perf_counter()
        for turn in range(1, turns + 1):
            rec.chat("reader", "long", LINES[turn % len(LINES)])
            if turn in marks:
                points[str(turn)] = stored_bytes(rec, thread)
                if memory:
                    record = rec.app.get_state({"configurable": {"thread_id": thread}}).values.get("memory_record")
                    points[str(turn)]["memory_record_bytes"] = len(json.dumps(record))
        seconds = time.perf_counter() - start
        lines = len(rec.transcript("reader", "long"))
    first, last = marks[0], marks[-1]
    mid = marks[len(marks) // 2 - 1] if len(marks) > 2 else first
    b = {m: points[str(m)]["bytes"] for m in marks}
    late = (b[last] - b[mid]) / (last - mid) if last > mid else 0.0
    early = (b[mid] - b[first]) / (mid - first) if mid > first else late
    return {
        "turns": turns,
        "after_turns": points,
        "bytes_per_turn": round(b[last] / last, 1),
        "marginal_bytes_per_turn": {f"{first}-{mid}": round(early, 1), f"{mid}-{last}": round(late, 1)},
        # ~1 for linear growth; for quadratic growth it tracks the ratio of the conversation's lengths
        "growth_ratio_late_to_early": round(late / early, 2) if early else None,
        "transcript_lines": lines,
        "ms_per_turn": round(seconds * 1000 / turns, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--memory", action="store_true", help="long-term memory on (embedded Chroma)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    after = run(args.turns, bounded=True, memory=args.memory)
    before = run(args.turns, bounded=False, memory=args.memory)
    report = {
        "command": "python benchmarks/checkpoint_growth.py " + " ".join(sys.argv[1:]),
        "catalog": "bundled albums", "memory": args.memory, "checkpointer": "SqliteSaver (file)",
        "after": after, "before": before,
        "floor_bytes_per_turn": FLOOR_BYTES_PER_TURN,
        "floor_met": after["bytes_per_turn"] <= FLOOR_BYTES_PER_TURN
        and (after["growth_ratio_late_to_early"] or 0) < 1.5,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(report, indent=2))
    write_json(args.out, report)
    if not report["floor_met"]:
        raise SystemExit("checkpoint storage is over the floor (2 KB per turn, linear)")


if __name__ == "__main__":
    main()
