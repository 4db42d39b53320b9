"""Session memory against a whole history: ``python benchmarks/memory_history.py --data-dir DIR``.

For each dataset, runs the returning sessions of ``crs eval memory --protocol scpr`` (same
users, targets, openings, drift statements, engine and strict rule) with a prior built by the
same profile code from *every* item the user has in the training split (about 29 on LastFM),
and prints its AT next to memory off. ``--profile`` gives the reference settings of its own:
the evaluation's reference uses the memory's settings, and what suits 29 items need not suit
the one or two that a few sessions hold.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory import history_reference
from crs.memory import ProfileSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--datasets", nargs="+", default=["lastfm", "lastfm_star"])
    parser.add_argument("--engine", default="popularity", help="popularity, or a policy name such as best")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test")
    parser.add_argument("--drift-share", type=float, default=0.2, help="as in crs eval memory (default 0.2)")
    parser.add_argument("--profile", default=None, help="ProfileSettings fields as JSON, over the defaults")
    parser.add_argument("--prior-fade", type=float, default=None, help="PolicySettings.prior_fade")
    args = parser.parse_args()
    profile = ProfileSettings.model_validate(json.loads(args.profile)) if args.profile else None
    for dataset in args.datasets:
        result = history_reference(dataset, args.data_dir, args.users, args.sessions, args.seed, split=args.split,
                                   profile=profile, strategy=None if args.engine == "popularity" else args.engine,
                                   drift_share=args.drift_share, prior_fade=args.prior_fade)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
