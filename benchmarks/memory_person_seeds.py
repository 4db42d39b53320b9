"""The person protocol over several seeds, with and without the prior's fade, episode by episode:
``python benchmarks/memory_person_seeds.py --data-dir ../shared/data --dataset lastfm_star --seeds 0 1 2``.

For each seed, runs ``crs eval memory --protocol person --engine best`` twice on the same plans:
with ``PolicySettings.prior_fade`` at its default and at 1.0 (memory keeps its full weight
however many lists are rejected, as before the fade). Prints one JSON line per seed and run
setting: warm/cold SR@15 and AT, the floors' metrics, and the paired counts (same opening and
target): warm found it and cold did not, and the other way round; for the default setting also
warm against warm without the fade.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory_person import run_person_eval
from crs.reasoning.policy import PolicySettings


def _flips(a: list[int | None], b: list[int | None]) -> dict[str, int]:
    return {"first_only": sum(x is not None and y is None for x, y in zip(a, b, strict=True)),
            "second_only": sum(x is None and y is not None for x, y in zip(a, b, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    keep = ("warm", "cold", "AT_ratio", "drift_respected", "drift_sessions", "invented_preferences", "repeats",
            "paired", "floors", "seconds")
    for seed in args.seeds:
        runs = {}
        for fade in (PolicySettings().prior_fade, 1.0):
            r = run_person_eval(args.dataset, args.data_dir, args.users, args.sessions, seed, strategy="best",
                                episodes=True, prior_fade=fade)
            runs[fade] = r
            row = {"dataset": args.dataset, "engine": "best", "users": args.users, "sessions": args.sessions,
                   "seed": seed, "prior_fade": fade, **{k: r[k] for k in keep}}
            if fade != 1.0:
                row["warm_vs_warm_without_fade"] = None  # filled below, once both runs are in
            runs[fade]["row"] = row
        faded, full = runs[PolicySettings().prior_fade], runs[1.0]
        faded["row"]["warm_vs_warm_without_fade"] = _flips(faded["warm_turns"], full["warm_turns"])
        for r in (faded, full):
            print(json.dumps(r["row"]), flush=True)


if __name__ == "__main__":
    main()
