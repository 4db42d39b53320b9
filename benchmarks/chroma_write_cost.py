"""What one write to the embedded Chroma store costs, and whether other threads run meanwhile.

    python benchmarks/chroma_write_cost.py [--writes 200] [--out benchmarks/out/chroma_write_cost.json]

In a temporary folder, through the store's own API (``ChromaMemoryStore``, one memory per call):
- the CPU time (this process, all threads) of a person's first write, which creates their
  collection, and of a later write to an existing collection; medians over ``--writes`` each;
- the interpreter lock: a thread counts in a loop for 2 s alone, then again while another thread
  writes without pause; the second count over the first is the share of time the counting thread
  still ran. Near 1 on two cores when a write releases the lock; far below when it holds it.

This is why ``crs serve`` runs the embedded store in a process of its own (``memory_process``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_json

from crs.memory import ChromaMemoryStore, MemoryEntry


def _entry(user: str, n: int) -> MemoryEntry:
    return MemoryEntry(id=f"m{n}", user_id=user, kind="like", text=f"Likes song number {n} a lot.")


def _cpu_ms(write: object) -> float:
    start = time.process_time()
    write()  # type: ignore[operator]
    return (time.process_time() - start) * 1000


def _count_for(seconds: float) -> int:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crs-chroma-write-") as tmp:
        store = ChromaMemoryStore.persistent(Path(tmp) / "memory")
        store.for_user("warm").upsert([_entry("warm", 0)])  # first-use costs (embedding model) not counted
        first = [_cpu_ms(lambda u=u: store.for_user(f"u{u}").upsert([_entry(f"u{u}", 0)]))
                 for u in range(args.writes)]
        later = [_cpu_ms(lambda u=u: store.for_user(f"u{u}").upsert([_entry(f"u{u}", 1)]))
                 for u in range(args.writes)]
        alone = _count_for(2.0)
        stop, written = threading.Event(), [0]

        def writer() -> None:
            while not stop.is_set():
                store.for_user("busy").upsert([_entry("busy", written[0])])
                written[0] += 1

        thread = threading.Thread(target=writer)
        thread.start()
        beside = _count_for(2.0)
        stop.set()
        thread.join()
    report = {
        "command": "python benchmarks/chroma_write_cost.py " + " ".join(sys.argv[1:]),
        "writes_each": args.writes,
        "cpu_ms_first_write_of_a_person_p50": round(statistics.median(first), 2),
        "cpu_ms_later_write_p50": round(statistics.median(later), 2),
        "counting_thread_share_while_writing": round(beside / alone, 3),
        "writes_during_the_count": written[0],
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(report, indent=2))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
