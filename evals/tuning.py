"""Tune a policy's knobs on a catalog's own valid split, for storing with its model.

``crs train scorer`` calls :func:`tune_policy` after training: a small grid over the softmax
temperature and the ask-or-recommend threshold, each point run on the same valid-split
episodes through the chatbot's engine. For a policy that treats a "no" as noisy evidence the
grid runs at the first assumed share of wrong "no" answers (:data:`ANSWER_NOISES`, never below
:data:`crs.reasoning.fm.MIN_ANSWER_NOISE`), then the other shares at the winning temperature and
threshold: 17 points instead of 45, about what tuning cost before the third knob. The best
point (highest SR@max_turns, then lowest AT) is what ``crs eval mcr`` and the chat then use
(:func:`crs.reasoning.policies.build_policy` reads it from the model). The test split is never
read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from crs.evals.data import BenchmarkData
from crs.evals.runner import run_benchmark
from crs.reasoning.engine import Engine
from crs.reasoning.fm import FMModel, FMScorer
from crs.reasoning.policies import BEST, POLICIES, build_policy
from crs.reasoning.policy import ThresholdRule

__all__ = ["ANSWER_NOISES", "CONFIDENCES", "TEMPERATURES", "grid_size", "tune_policy"]

TEMPERATURES = (0.5, 1.0, 2.0)
CONFIDENCES = (0.3, 0.5, 0.7, 0.85, 0.95)
ANSWER_NOISES = (0.1, 0.2, 0.3)


def _uses_noise(policy: str) -> bool:
    return POLICIES[policy].rejection_use == "noisy-answer"


def grid_size(policy: str = "best") -> int:
    """How many points :func:`tune_policy` runs for ``policy`` with the default grid."""
    return len(TEMPERATURES) * len(CONFIDENCES) + (len(ANSWER_NOISES) - 1 if _uses_noise(policy) else 0)


def tune_policy(
    data: BenchmarkData,
    model: FMModel,
    *,
    policy: str = "best",
    episodes: int = 1000,
    seed: int = 0,
    max_turns: int = 15,
    topk: int = 10,
    temperatures: Sequence[float] = TEMPERATURES,
    confidences: Sequence[float] = CONFIDENCES,
    answer_noises: Sequence[float] = ANSWER_NOISES,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the grid on ``episodes`` valid-split episodes; return what to store in ``model.meta["tuned"]``."""
    pairs = data.splits.get("valid") or []
    if not pairs:
        raise ValueError("the catalog has no valid split to tune on (each user needs 3 interactions)")
    base = build_policy(policy, data.graph, model=model, top_k=topk, max_turns=max_turns, no_rule="strict",
                        tuned=False)
    sr = f"SR@{max_turns}"
    grid: list[dict[str, Any]] = []

    def run_point(temperature: float, confidence: float, noise: float | None) -> dict[str, Any]:
        scorer = base.scorer
        if noise is not None and isinstance(scorer, FMScorer):
            scorer = FMScorer(model, data.graph, rejection="noisy", answer_noise=noise)
        settings = base.settings.model_copy(update={"temperature": temperature, "confidence": confidence})
        engine = Engine(data.graph, scorer, settings, ThresholdRule.from_settings(settings, max_turns))
        run = run_benchmark(engine, pairs, episodes=episodes, seed=seed, max_turns=max_turns,
                            enumerate_facets=data.enumerate_facets)
        point: dict[str, Any] = {"temperature": temperature, "confidence": confidence}
        if noise is not None:
            point["answer_noise"] = noise
        row = {**point, sr: run.metrics[sr], "AT": run.metrics["AT"], "hDCG": run.metrics["hDCG"]}
        grid.append(row)
        if progress is not None:
            progress(1)
        return row

    def winner(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return max(rows, key=lambda row: (round(row[sr], 4), -row["AT"]))

    noises = list(answer_noises) if _uses_noise(policy) else [None]
    best = winner([run_point(t, c, noises[0]) for t, c in itertools.product(temperatures, confidences)])
    if len(noises) > 1:
        best = winner([best, *(run_point(best["temperature"], best["confidence"], n) for n in noises[1:])])
    chosen = {k: best[k] for k in ("temperature", "confidence", "answer_noise") if k in best}
    return {
        "policy": BEST if policy == "best" else policy,
        "settings": chosen,
        "split": "valid", "episodes": min(episodes, len(pairs)), "seed": seed, "max_turns": max_turns,
        "topk": topk, "enumerate_facets": data.enumerate_facets,
        "valid": {sr: best[sr], "AT": best["AT"], "hDCG": best["hDCG"]}, "grid": grid,
    }
