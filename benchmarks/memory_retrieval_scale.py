"""Memory retrieval latency versus store size, growing one embedded Chroma store toward 1M memories.

    python benchmarks/memory_retrieval_scale.py --steps 100,1000,3000,10000 --per-user 100 \\
        --json benchmarks/out/memory_retrieval_scale.json

A real ``chromadb.PersistentClient`` in a temporary folder, filled through the project's own
store (``ChromaMemoryStore``, the offline WordLlama embedder) with ``per_user`` synthetic
memories per user. At each step (a number of users) it adds the missing users, timing the
insertion (memories per second), then times reranked retrievals (``ReflectiveMemory.retrieve``:
query embedding, Chroma query, reranking, sampling) for random users already stored, each
after the user's first touch (``profile``, reported apart as a session start). The JSON is
rewritten after every step, so a run stopped early keeps the steps it finished.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import write_json  # benchmarks/ is on the path when a script runs

from crs.evals.memory import _QUERIES, _percentile, _synthetic_entries
from crs.memory import ChromaMemoryStore, MemorySettings, ReflectiveMemory


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,1000,3000,10000", help="users stored at each step")
    parser.add_argument("--per-user", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--layout", default="per_user", choices=["per_user", "shared"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary store goes")
    parser.add_argument("--max-rss-mb", type=float, default=12000, help="stop growing past this peak RSS")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="crs-memory-scale-", dir=args.workdir))
    report: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv), "layout": args.layout, "per_user": args.per_user,
        "queries_per_step": args.queries, "seed": args.seed, "steps": [],
    }
    try:
        store = ChromaMemoryStore.persistent(base / "store", layout=args.layout)  # type: ignore[arg-type]
        mem = ReflectiveMemory(store, settings=MemorySettings(seed=args.seed))
        stored = 0
        for users in steps:
            names = [f"user-{u:06d}" for u in range(users)]
            t0 = time.perf_counter()
            added = 0
            for name in names[stored:]:
                store.for_user(name).upsert(_synthetic_entries(name, args.per_user, rng))
                added += args.per_user
                if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > args.max_rss_mb:
                    report["stopped"] = f"peak RSS passed {args.max_rss_mb} MB while filling to {users} users"
                    write_json(args.json, report)
                    print(report["stopped"], flush=True)
                    return 1
            fill_s = time.perf_counter() - t0
            stored = users
            start_ms: list[float] = []
            ms: list[float] = []
            leaks = 0
            for _ in range(args.queries):
                user = rng.choice(names)
                t = time.perf_counter()
                mem.profile(user)
                start_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                got = mem.retrieve(user, rng.choice(_QUERIES))
                ms.append((time.perf_counter() - t) * 1000)
                leaks += sum(1 for h in got.hits if h.entry.user_id != user)
            sample = rng.sample(names, min(10, len(names)))
            step = {
                "memories": users * args.per_user, "users": users,
                "inserted": added, "insert_seconds": round(fill_s, 2),
                "insert_per_second": round(added / fill_s, 1) if fill_s > 0 else None,
                "retrieve_p50_ms": round(_percentile(ms, 50), 3), "retrieve_p95_ms": round(_percentile(ms, 95), 3),
                "session_start_p50_ms": round(_percentile(start_ms, 50), 3),
                "session_start_p95_ms": round(_percentile(start_ms, 95), 3),
                "cross_user_leaks": leaks,
                "sampled_counts_ok": all(store.for_user(n).count() == args.per_user for n in sample),
                "store_bytes": _folder_bytes(base / "store"),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
            report["steps"].append(step)
            write_json(args.json, report)
            print({k: step[k] for k in ("memories", "insert_per_second", "retrieve_p50_ms", "retrieve_p95_ms",
                                        "store_bytes")}, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
