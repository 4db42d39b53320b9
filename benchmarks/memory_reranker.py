"""Does the RMM reranker beat plain retrieval? ``python benchmarks/memory_reranker.py [--seeds 5]``.

Runs the seeded simulation of ``evals.memory.reranker_simulation`` (a user whose replies use
the preference memories of a topic while session summaries echo the request's wording) for
several seeds and prints precision@M of cosine top-M and of the learned, sampled reranker.
"""

from __future__ import annotations

import argparse
import json
import statistics

from crs.evals.memory import reranker_simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=600)
    args = parser.parse_args()
    rows = [reranker_simulation(rounds=args.rounds, seed=s) for s in range(args.seeds)]
    for seed, row in enumerate(rows):
        print(json.dumps({"seed": seed, **row}))
    summary = {k: round(statistics.fmean(r[k] for r in rows), 4)
               for k in ("precision_cosine", "precision_reranked", "precision_reranked_first_third")}
    print(json.dumps({"mean": summary, "seeds": args.seeds, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
