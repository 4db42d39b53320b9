"""Tune how remembered choices enter the prior, on the valid split only:
``python benchmarks/memory_tune.py --dataset lastfm --engine popularity --grid '[{"smoothing": 1.0}]'``.

Prints one JSON line per setting (memory-on AT/SR, memory-off AT/SR, the whole-history
reference with the same settings, and how many chosen items a returning session's prior rests
on), best memory-on AT first. The test split is never read.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory import tune_profile_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--engine", default="popularity", help="popularity, or a policy name such as best")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", default=None, help="JSON list of ProfileSettings overrides")
    parser.add_argument("--prior-fade", type=float, default=None, help="PolicySettings.prior_fade")
    args = parser.parse_args()
    rows = tune_profile_settings(args.dataset, args.data_dir, users=args.users, sessions=args.sessions,
                                 seed=args.seed, strategy=None if args.engine == "popularity" else args.engine,
                                 grid=json.loads(args.grid) if args.grid else None, prior_fade=args.prior_fade)
    for row in rows:
        print(json.dumps({"dataset": args.dataset, "engine": args.engine, "split": "valid", "users": args.users,
                          "sessions": args.sessions, "seed": args.seed, **row}), flush=True)


if __name__ == "__main__":
    main()
