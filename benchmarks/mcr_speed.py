"""Speed of the MCR benchmark loop: median episodes/s on LastFM and LastFM*, against a baseline.

    python benchmarks/mcr_speed.py --data-dir ../shared/data \
        --model lastfm=/tmp/fm_lastfm.npz --model lastfm_star=/tmp/fm_lastfm_star.npz

For each dataset it runs ``--policy`` (default ``best``) and ``--baseline`` (default ``maxent``)
alternately, ``--repeats`` times each, through the same code as ``crs eval mcr`` (strict rule,
15 turns, top-10, 4,000 test episodes, seed 0), and prints the median episodes/s of each and
the median of the per-repeat ratios. Speeds are CPU time of the conversations with BLAS on one
thread, as ``crs eval mcr`` reports them; a busy machine still slows them down (shared caches),
which is why the baseline runs in the same process, interleaved: the ratio is the steadier
number. The load average is printed alongside. A dataset without ``--model`` gets a scorer
trained on the spot (25–50 s). ``--check`` exits with status 1 when a median is below its floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _report import write_json  # benchmarks/ is on the path when a script runs

from crs.evals._blas import single_thread_blas

FLOORS = {"lastfm": 1000.0, "lastfm_star": 1000.0}  # episodes/s of --policy best, strict, top-10 (issue 12)
METRICS = ("SR@5", "SR@10", "SR@15", "AT", "hDCG")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default="lastfm,lastfm_star")
    parser.add_argument("--model", action="append", default=[], metavar="DATASET=PATH",
                        help="a trained FM scorer for a dataset (`crs train scorer`); repeatable")
    parser.add_argument("--policy", default="best")
    parser.add_argument("--baseline", default="maxent")
    parser.add_argument("--episodes", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-rule", default="strict", choices=["strict", "prune"])
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a median is below its floor")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    single_thread_blas()  # before numpy's BLAS does any work, as `crs eval mcr` does
    from crs.evals.cli import run_mcr
    from crs.evals.data import load_benchmark_data
    from crs.reasoning.fm import load_fm, train_fm
    from crs.reasoning.policies import POLICIES, graph_pairs

    models = dict(item.split("=", 1) for item in args.model)
    report: list[dict[str, Any]] = []
    failed = False
    for dataset in args.datasets.split(","):
        data = load_benchmark_data(dataset, args.data_dir)
        fm = None
        if POLICIES[args.policy].uses_model or POLICIES[args.baseline].uses_model:
            if dataset in models:
                fm = load_fm(models[dataset], data.graph)
            else:
                print(f"{dataset}: no --model given, training the FM scorer ...", file=sys.stderr)
                fm = train_fm(data.graph, graph_pairs(data.graph))
        speeds: dict[str, list[float]] = {args.policy: [], args.baseline: []}
        ratios: list[float] = []
        metrics: dict[str, set[tuple[float, ...]]] = {args.policy: set(), args.baseline: set()}
        for _ in range(args.repeats):
            row_of = {}
            for policy in (args.baseline, args.policy):
                row = run_mcr(data, policy, episodes=args.episodes, seed=args.seed, no_rule=args.no_rule,
                              max_turns=15, topk=10, split="test", model=fm, show_progress=False)
                speeds[policy].append(row["episodes_per_sec"])
                metrics[policy].add(tuple(row[m] for m in METRICS))
                row_of[policy] = row
            ratios.append(row_of[args.policy]["episodes_per_sec"] / row_of[args.baseline]["episodes_per_sec"])
        load = os.getloadavg()
        median = statistics.median(speeds[args.policy])
        floor = FLOORS.get(dataset) if args.policy == "best" and args.no_rule == "strict" else None
        ok = floor is None or median >= floor
        failed |= not ok
        result = {
            "dataset": dataset, "policy": args.policy, "baseline": args.baseline, "episodes": args.episodes,
            "episodes_per_sec": speeds[args.policy], "median": median,
            "baseline_episodes_per_sec": speeds[args.baseline],
            "baseline_median": statistics.median(speeds[args.baseline]),
            "ratio_median": statistics.median(ratios), "floor": floor,
            "metrics": dict(zip(METRICS, next(iter(metrics[args.policy])), strict=True)),
            "deterministic": all(len(m) == 1 for m in metrics.values()),
            "loadavg": [round(x, 2) for x in load], "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        report.append(result)
        verdict = "" if floor is None else f"  floor {floor:.0f}: {'ok' if ok else 'BELOW'}"
        runs = ", ".join(f"{s:.0f}" for s in speeds[args.policy])
        print(f"{dataset:12s} {args.policy} {median:7.1f} eps/s (runs {runs})"
              f"  {args.baseline} {result['baseline_median']:7.1f}  ratio {result['ratio_median']:.2f}"
              f"{verdict}  load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'':12s} metrics {result['metrics']}  same every run: {result['deterministic']}")
    write_json(args.json, report)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
