"""SR@15 on the VALID split as a function of what a "no" takes off, for choosing the answer-noise cap.

    python benchmarks/no_penalty_curve.py --data-dir ../shared/data \
        --model lastfm=benchmarks/out/fm_lastfm.npz --model lastfm_star=benchmarks/out/fm_lastfm_star.npz \
        --json benchmarks/out/no_penalty_curve.json

``best`` (``fm-noisy``) with the temperature and threshold stored with each model; the extra
penalty on items having a rejected attribute is log((1 − ε) / ε) for an assumed share ε of wrong
"no" answers, on top of the bounded FM term. ``best`` only allows ε ≥ 0.1 (at most 2.2 logits):
the points past that (ε = 0.05, 0.01, and 30 logits, the ``filter`` policy's prune rule in
disguise) are set on the scorer directly here, for reference only. Never reads the test split.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from _report import write_json  # benchmarks/ is on the path when a script runs

from crs.evals._blas import single_thread_blas

# (label, logits a "no" takes off items having the attribute, allowed by best)
POINTS = [("none (fm-bounded)", 0.0, True), ("eps 0.3", math.log(0.7 / 0.3), True),
          ("eps 0.2", math.log(0.8 / 0.2), True), ("eps 0.1 (the cap)", math.log(0.9 / 0.1), True),
          ("eps 0.05", math.log(0.95 / 0.05), False), ("eps 0.01", math.log(0.99 / 0.01), False),
          ("30 logits (filter)", 30.0, False)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default="lastfm,lastfm_star")
    parser.add_argument("--model", action="append", default=[], metavar="DATASET=PATH", required=True)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    single_thread_blas()
    from crs.evals.data import load_benchmark_data
    from crs.evals.runner import run_benchmark
    from crs.reasoning.fm import FMScorer, load_fm
    from crs.reasoning.policies import build_policy

    models = dict(item.split("=", 1) for item in args.model)
    rows: list[dict[str, Any]] = []
    for dataset in args.datasets.split(","):
        data = load_benchmark_data(dataset, args.data_dir)
        fm = load_fm(models[dataset], data.graph)
        built = build_policy("best", data.graph, model=fm, top_k=10, max_turns=15, no_rule="strict")
        for label, penalty, allowed in POINTS:
            scorer = FMScorer(fm, data.graph, rejection="noisy")
            scorer.no_penalty = penalty  # past the cap only here, for reference
            engine = built.engine(data.graph)
            engine.scorer = scorer
            run = run_benchmark(engine, data.splits["valid"], episodes=args.episodes, seed=args.seed, max_turns=15)
            m = run.metrics
            row = {"dataset": dataset, "split": "valid", "episodes": len(run.episodes), "point": label,
                   "no_penalty_logits": round(penalty, 4), "allowed_by_best": allowed,
                   "temperature": built.settings.temperature, "confidence": built.settings.confidence,
                   "SR@15": m["SR@15"], "AT": m["AT"], "hDCG": m["hDCG"]}
            rows.append(row)
            print(f"{dataset:12s} {label:20s} +{penalty:6.3f} logits  SR@15 {m['SR@15']:.3f}  AT {m['AT']:.2f}",
                  flush=True)
    write_json(args.json, {"command": "python benchmarks/no_penalty_curve.py " + " ".join(sys.argv[1:]),
                           "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
