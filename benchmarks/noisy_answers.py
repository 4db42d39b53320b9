"""MCR with a simulated user who sometimes answers a question wrongly: does a "no" act as a filter?

    python benchmarks/noisy_answers.py --data-dir ../shared/data \
        --model lastfm=benchmarks/out/fm_lastfm.npz --model lastfm_star=benchmarks/out/fm_lastfm_star.npz \
        --json benchmarks/out/mcr_noisy_answers.json

The protocol of ``crs eval mcr`` (strict rule, 15 turns, lists of 10, test split, seed 0), except
that each "yes" answer becomes a wrong "no" with probability ``--flip`` (seeded per episode;
``--both`` flips "no" answers into a wrong "yes" too, which every policy here takes as a filter:
accepted attributes narrow the candidates). A policy
that uses "no" as a filter (``filter``: a 30-logit penalty, the prune rule in disguise) loses
the target for good after one wrong "no"; one that treats a "no" as bounded evidence
(``best``) can still find it. The policies run with the settings stored with each model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _report import write_json  # benchmarks/ is on the path when a script runs

from crs.evals._blas import single_thread_blas


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default="lastfm,lastfm_star")
    parser.add_argument("--model", action="append", default=[], metavar="DATASET=PATH", required=True)
    parser.add_argument("--policies", default="fm-bounded,best,filter")
    parser.add_argument("--flip", default="0,0.05,0.1", help="comma-separated probabilities of a wrong answer")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--both", action="store_true", help="flip 'no' answers into 'yes' as well")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    single_thread_blas()
    from crs.evals.data import load_benchmark_data
    from crs.evals.metrics import default_metrics
    from crs.evals.runner import run_episode, sample_episodes
    from crs.evals.simulator import Answer, SimulatedUser
    from crs.reasoning.fm import load_fm
    from crs.reasoning.policies import build_policy
    from crs.reasoning.state import Action, Feedback

    class NoisyUser(SimulatedUser):
        """Says a wrong "no" (and with ``both`` a wrong "yes") with probability ``flip``; lists
        are judged truly."""

        def __init__(self, *a: Any, flip: float, both: bool, rng: np.random.Generator, **k: Any) -> None:
            super().__init__(*a, **k)
            self.flip, self.both, self.rng = flip, both, rng

        def answer(self, action: Action) -> Answer:
            a = action.attribute
            if action.kind == "ask" and a is not None and (self.both or self.has(a)) and self.rng.random() < self.flip:
                return Answer(Feedback(reject_attributes=(a,)) if self.has(a) else Feedback(accept_attributes=(a,)))
            return super().answer(action)

    models = dict(item.split("=", 1) for item in args.model)
    report: list[dict[str, Any]] = []
    for dataset in args.datasets.split(","):
        data = load_benchmark_data(dataset, args.data_dir)
        fm = load_fm(models[dataset], data.graph)
        chosen = sample_episodes(data.splits["test"], args.episodes, args.seed)
        choices = np.random.default_rng([args.seed, 1]).random(len(chosen)).tolist()
        for flip in (float(x) for x in args.flip.split(",")):
            for name in args.policies.split(","):
                built = build_policy(name, data.graph, model=fm, top_k=10, max_turns=15, no_rule="strict")
                engine = built.engine(data.graph)
                metrics = default_metrics(15)
                started = time.process_time()
                for i, ((user_id, target), choice) in enumerate(zip(chosen, choices, strict=True)):
                    user = NoisyUser(data.graph, user_id, target, choice=choice, flip=flip, both=args.both,
                                     rng=np.random.default_rng([args.seed, 2, i]))
                    metrics.update(run_episode(engine, user, 15))
                m = metrics.result()
                row = {"dataset": dataset, "policy": name, "rejection_use": built.rejection_use, "flip": flip,
                       "episodes": len(chosen), "SR@15": m["SR@15"], "AT": m["AT"], "hDCG": m["hDCG"],
                       "settings": built.described_settings(), "cpu_seconds": round(time.process_time() - started, 2)}
                report.append(row)
                print(f"{dataset:12s} flip {flip:4.2f} {name:11s} SR@15 {row['SR@15']:.3f} AT {row['AT']:.2f}",
                      flush=True)
    write_json(args.json, {
        "what": "MCR, strict rule, 15 turns, top-10, test split, seed 0; each 'yes' answer (with both: "
                "each answer) flipped with probability flip (numpy default_rng([seed, 2, episode]))",
        "both": args.both,
        "command": "python benchmarks/noisy_answers.py " + " ".join(sys.argv[1:]),
        "rows": report,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
