"""Tune the ask/recommend threshold and the softmax temperature on the VALID split only.

Prints SR@15 / AT / hDCG for each (temperature, confidence) of a small grid; the registry's
`best` uses the chosen pair. Never reads the test split.

    python benchmarks/tune_mcr.py --dataset lastfm --data-dir ../shared/data --model fm_lastfm.npz
"""

from __future__ import annotations

import argparse
import itertools

from crs.evals._blas import single_thread_blas
from crs.evals.data import load_benchmark_data
from crs.evals.runner import run_benchmark
from crs.reasoning.engine import Engine
from crs.reasoning.fm import load_fm
from crs.reasoning.policies import build_policy
from crs.reasoning.policy import ThresholdRule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--model", required=True)
    parser.add_argument("--policy", default="best")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    single_thread_blas()
    data = load_benchmark_data(args.dataset, args.data_dir)
    model = load_fm(args.model, data.graph)
    base = build_policy(args.policy, data.graph, model=model, top_k=10, max_turns=15, no_rule="strict")
    print("temperature confidence SR@15 AT hDCG (valid split)")
    for temperature, confidence in itertools.product((0.5, 1.0, 2.0), (0.3, 0.5, 0.7)):
        settings = base.settings.model_copy(update={"temperature": temperature, "confidence": confidence})
        engine = Engine(data.graph, base.scorer, settings, ThresholdRule.from_settings(settings, 15))
        run = run_benchmark(engine, data.splits["valid"], episodes=args.episodes, seed=args.seed, max_turns=15)
        m = run.metrics
        print(f"{temperature:11.1f} {confidence:10.1f} {m['SR@15']:.3f} {m['AT']:.2f} {m['hDCG']:.3f}")


if __name__ == "__main__":
    main()
