"""Session memory against a whole history: ``python benchmarks/memory_history.py --data-dir DIR``.

For each dataset, runs the returning sessions of ``crs eval memory`` (same users, targets,
openings, engine and strict rule; no drift) with a prior built by the same profile code from
*every* item the user has in the training split (about 29 on LastFM), and prints its AT next
to memory off. It is a reference for what remembering a user's choices can give under this
protocol: on LastFM it saves about as many turns as the memory of the simulated sessions,
which also holds the answers (the "no"s above all) that a list of choices lacks.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory import history_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--datasets", nargs="+", default=["lastfm", "lastfm_star"])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    for dataset in args.datasets:
        result = history_reference(dataset, args.data_dir, args.users, args.sessions, args.seed, split=args.split)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
