"""What long-term memory costs a turn, in one process: ``Recommender`` on the bundled catalog with the
embedded memory store and a SQLite checkpoint file, no HTTP.

    python benchmarks/memory_turn_cost.py [--users 12] [--rounds 3] [--out benchmarks/out/memory_turn_cost.json]

Each user holds the conversations of ``benchmarks/api_load.py`` (a genre and decade, no, yes,
"just recommend something", "why the first one?", then picks the first item), one after another.
Every turn is timed twice: wall clock and this process's CPU time (user + system), which the other
programs on a busy machine do not inflate. Prints the median and p95 of each per turn, for all turns
and for the turns that end a session (the choice, which reflects the session), and the git commit
of the code measured, so runs of two commits can be put side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_json

from crs.api import Recommender
from crs.settings import Settings

GENRES = ["jazz", "rock", "pop", "folk", "electronic", "hip hop", "metal", "soul", "classical", "blues"]
DECADES = ["60s", "70s", "80s", "90s", "2000s"]


def conversation(rec: Recommender, user: str, session: str, seed: int) -> list[tuple[str, float, float]]:
    """One conversation; (kind, wall seconds, CPU seconds) per turn."""
    out = []
    texts = [f"some {GENRES[seed % len(GENRES)]} from the {DECADES[seed % len(DECADES)]}", "no", "yes",
             "just recommend something", "why the first one?"]
    reply = None
    for text in texts:
        t0, c0 = time.perf_counter(), time.process_time()
        reply = rec.chat(user, session, text)
        out.append(("text", time.perf_counter() - t0, time.process_time() - c0))
    listed = [r.id for r in (reply.recommendations if reply is not None else [])]
    if listed:
        t0, c0 = time.perf_counter(), time.process_time()
        rec.act(user, session, {"type": "accept_item", "item_id": listed[0]})
        out.append(("accept", time.perf_counter() - t0, time.process_time() - c0))
    return out


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"p50": round(statistics.median(ms), 2), "p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
            "mean": round(statistics.fmean(ms), 2)}


def commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "crs", "memory", "graphs"],
                           capture_output=True, text=True).stdout.strip()
    return {"path": str(root), "commit": head, "uncommitted_changes": bool(dirty)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="conversations per user")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    turns: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="crs-turn-cost-") as tmp:
        rec = Recommender.from_settings(Settings(state_dir=Path(tmp), embeddings=False))
        conversation(rec, "warm", "warm", 0)  # first-use costs (tokenizer, caches) are not counted
        for n in range(args.rounds):
            for u in range(args.users):
                turns += conversation(rec, f"user{u}", f"s{n}", u * 7 + n)
    report = {
        "command": "python benchmarks/memory_turn_cost.py " + " ".join(sys.argv[1:]),
        "catalog": "bundled albums", "memory": "embedded Chroma", "checkpointer": "SqliteSaver (file)",
        "turns": len(turns),
        "wall_ms": summary([w for _, w, _ in turns]),
        "cpu_ms": summary([c for _, _, c in turns]),
        "cpu_ms_session_end": summary([c for k, _, c in turns if k == "accept"]),
        "cpu_ms_other_turns": summary([c for k, _, c in turns if k != "accept"]),
        "code": commit(),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(report, indent=2))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
