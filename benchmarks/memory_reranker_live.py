"""The RMM reranker's gain on the live path: ``python benchmarks/memory_reranker_live.py --data-dir DIR``.

Runs the person protocol (``crs eval memory --protocol person``) twice on the same users, with
each session's prior built from only ``--prior-m`` of the user's preference memories: picked by
the reranker (learning online from each accepted or passed-over list), or the most similar to
the opening. Prints one JSON line per arm, then the difference: warm AT with the reranker minus
without, with a 95% paired bootstrap interval over the same episodes.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory import paired_ci
from crs.evals.memory_person import MAX_TURNS, run_person_eval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior-m", type=int, default=2)
    parser.add_argument("--engine", default="best")
    args = parser.parse_args()
    strategy = None if args.engine == "popularity" else args.engine
    turns = {}
    for reranker in (True, False):
        r = run_person_eval(args.dataset, args.data_dir, args.users, args.sessions, args.seed, drift_share=0.0,
                            strategy=strategy, use_reranker=reranker, prior_m=args.prior_m, episodes=True)
        turns[reranker] = r["warm_turns"]
        print(json.dumps({k: r[k] for k in ("dataset", "users", "sessions", "seed", "engine", "reranker", "prior_m",
                                            "warm", "cold", "AT_ratio", "invented_preferences", "repeats")}),
              flush=True)
    on, off = turns[True], turns[False]
    mean = (sum(t or MAX_TURNS for t in on) - sum(t or MAX_TURNS for t in off)) / max(1, len(on))
    print(json.dumps({"warm_AT_reranker_minus_similarity": round(mean, 4), "ci95": paired_ci(on, off),
                      "episodes": len(on)}), flush=True)


if __name__ == "__main__":
    main()
