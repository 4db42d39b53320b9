"""What long-term memory costs a turn, in one process: ``Recommender`` on the bundled catalog with the
embedded memory store and a SQLite checkpoint file, no HTTP.

    python benchmarks/memory_turn_cost.py [--users 12] [--rounds 3] [--out benchmarks/out/memory_turn_cost.json]

Each user holds the conversations of ``benchmarks/api_load.py`` (a genre and decade, no, yes,
"just recommend something", "why the first one?", then picks the first item), one after another.
Every turn is timed twice: wall clock and this process's CPU time (user + system), which the other
programs on a busy machine do not inflate. Prints the median and p95 of each per turn, for all turns
and for the turns that end a session (the choice, which reflects the session), and the git commit
of the code measured, so runs of two commits can be put side by side.

In the same run, as the baseline, the same conversations go to a second recommender whose memory
keeps each session's record in the process (``ReflectiveMemory.observe``, the way before the record
travelled in the checkpoint), conversation by conversation in turn with the first:
``ratio_carried_to_kept`` is what carrying the record costs a turn.
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
from _conversation import DECADES, GENRES
from _report import write_json

from crs.api import Recommender, load_knowledge
from crs.graphs.checkpoint import sqlite_checkpointer
from crs.memory import ChromaMemoryStore, ReflectiveMemory
from crs.settings import Settings


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


class KeptRecordMemory(ReflectiveMemory):
    """The baseline: the session's record kept in this process (the conversation does not carry it)."""

    observe_session = None  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="conversations per user")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    turns: dict[str, list[tuple[str, float, float]]] = {"carried": [], "kept": []}
    with tempfile.TemporaryDirectory(prefix="crs-turn-cost-") as tmp:
        settings = Settings(state_dir=Path(tmp), embeddings=False)
        graph, vocabulary = load_knowledge(settings)
        store = ChromaMemoryStore.persistent(Path(tmp) / "memory")
        recs = {name: Recommender(graph, vocabulary=vocabulary, settings=settings,
                                  memory=kind(store, graph=graph, settings=settings.memory_settings),
                                  checkpointer=sqlite_checkpointer(Path(tmp) / f"{name}.sqlite"))
                for name, kind in (("carried", ReflectiveMemory), ("kept", KeptRecordMemory))}
        for name, rec in recs.items():
            conversation(rec, f"warm-{name}", "warm", 0)  # first-use costs (tokenizer, caches) are not counted
        for n in range(args.rounds):
            for u in range(args.users):
                for name, rec in (recs.items() if (n + u) % 2 else reversed(recs.items())):
                    turns[name] += conversation(rec, f"{name}-user{u}", f"s{n}", u * 7 + n)

    def side(ts: list[tuple[str, float, float]]) -> dict[str, Any]:
        return {"turns": len(ts), "wall_ms": summary([w for _, w, _ in ts]), "cpu_ms": summary([c for _, _, c in ts]),
                "cpu_ms_session_end": summary([c for k, _, c in ts if k == "accept"]),
                "cpu_ms_other_turns": summary([c for k, _, c in ts if k != "accept"])}

    carried, kept = side(turns["carried"]), side(turns["kept"])
    report = {
        "command": "python benchmarks/memory_turn_cost.py " + " ".join(sys.argv[1:]),
        "catalog": "bundled albums", "memory": "embedded Chroma", "checkpointer": "SqliteSaver (file)",
        "carried": carried, "kept": kept,
        "ratio_carried_to_kept": {f"{key}_{stat}": round(carried[key][stat] / kept[key][stat], 3)
                                  for key in ("cpu_ms", "cpu_ms_session_end", "cpu_ms_other_turns", "wall_ms")
                                  for stat in ("p50", "mean")},
        "code": commit(),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(report, indent=2))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
