"""Run MCR episodes of ``best`` through ``crs.evals.runner``, for counting instructions.

CPU time on a shared machine moves by 10-20% with the load; instruction counts do not. Run this
under callgrind twice, with one episode and with N, at each of two commits, and subtract:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=cg.N.out \\
        python benchmarks/loop_instructions.py --episodes N --data-dir ../shared/data --model fm_lastfm.npz

(totals(N) - totals(1)) / (N - 1) is the cost of one episode, loading and training left out.
``PYTHONHASHSEED=0`` keeps the interpreter's own work the same from run to run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crs.evals._blas import single_thread_blas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", type=Path, required=True, help="a trained FM (crs train scorer)")
    args = parser.parse_args()
    single_thread_blas()
    from crs.evals.data import load_benchmark_data
    from crs.evals.runner import run_benchmark
    from crs.reasoning.fm import load_fm
    from crs.reasoning.policies import build_policy

    data = load_benchmark_data(args.dataset, args.data_dir)
    policy = build_policy("best", data.graph, model=load_fm(args.model, data.graph), top_k=10, max_turns=15)
    run = run_benchmark(policy.engine(data.graph), data.splits["test"], episodes=max(args.episodes, 1), seed=0)
    print(f"{args.dataset}: {len(run.episodes)} episodes, SR@15 {run.metrics['SR@15']:.4f}")


if __name__ == "__main__":
    main()
