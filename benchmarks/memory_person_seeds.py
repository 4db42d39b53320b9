"""The person protocol over several seeds, with and without the prior's fade, episode by episode:
``python benchmarks/memory_person_seeds.py --data-dir ../shared/data --dataset lastfm_star --seeds 0 1 2``.

For each seed, runs ``crs eval memory --protocol person --engine best`` twice on the same plans:
with the defaults, and as before two fixes: ``PolicySettings.prior_fade`` 1.0 (memory keeps its
full weight however many lists are rejected) and ``ProfileSettings.retire_on_change_of_mind``
off (choices made for what the person is now done with still pull the prior). Prints one JSON
line per seed and setting: warm/cold SR@15 and AT, the floors' metrics, and the paired counts
(same opening and target): warm found it and cold did not, and the other way round; for the
defaults also warm against warm before the fixes.
"""

from __future__ import annotations

import argparse
import json

from crs.evals.memory_person import run_person_eval
from crs.memory import ProfileSettings
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
    parser.add_argument("--drift-share", type=float, default=0.2, help="as in crs eval memory (default 0.2)")
    args = parser.parse_args()
    keep = ("warm", "cold", "AT_ratio", "drift_respected", "drift_sessions", "invented_preferences", "repeats",
            "paired", "floors", "seconds")
    for seed in args.seeds:
        runs = {}
        for name, fade, retire in (("defaults", PolicySettings().prior_fade, True), ("before", 1.0, False)):
            r = run_person_eval(args.dataset, args.data_dir, args.users, args.sessions, seed, strategy="best",
                                drift_share=args.drift_share, episodes=True, prior_fade=fade,
                                profile=ProfileSettings(retire_on_change_of_mind=retire))
            r["row"] = {"dataset": args.dataset, "engine": "best", "users": args.users, "sessions": args.sessions,
                        "seed": seed, "drift_share": args.drift_share, "setting": name, "prior_fade": fade,
                        "retire_on_change_of_mind": retire,
                        **{k: r[k] for k in keep}}
            runs[name] = r
        now, before = runs["defaults"], runs["before"]
        now["row"]["warm_vs_warm_before"] = _flips(now["warm_turns"], before["warm_turns"])
        for r in (now, before):
            print(json.dumps(r["row"]), flush=True)


if __name__ == "__main__":
    main()
