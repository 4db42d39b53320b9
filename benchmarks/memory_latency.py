"""Memory retrieval latency at scale: ``python benchmarks/memory_latency.py [--users N --per-user M]``.

Fills an embedded Chroma store (a temporary folder) with ``users × per_user`` memories through
the public per-user API, reopens it as a fresh process would, and times reranked retrievals
(query embedding + Chroma query + reranking + sampling). Prints one JSON object per layout.
The floor: p95 ≤ 50 ms at 100,000 memories across 1,000 users.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory import measure_retrieval_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=100)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layouts", default="per_user", help="comma-separated: per_user,shared")
    args = parser.parse_args()
    for layout in args.layouts.split(","):
        result = measure_retrieval_latency(args.users, args.per_user, queries=args.queries, seed=args.seed,
                                           layout=layout.strip())
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
