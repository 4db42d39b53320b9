"""Tune a policy's knobs on a catalog's own valid split, for storing with its model.

``crs train scorer`` calls :func:`tune_policy` after training: a small grid over the softmax
temperature and the ask-or-recommend threshold, each point run on the same valid-split
episodes through the chatbot's engine. The best point (highest SR@max_turns, then lowest AT)
is what ``crs eval mcr`` and the chat then use (:func:`crs.reasoning.policies.build_policy`
reads it from the model). The test split is never read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from crs.evals.data import BenchmarkData
from crs.evals.runner import run_benchmark
from crs.reasoning.engine import Engine
from crs.reasoning.fm import FMModel
from crs.reasoning.policies import BEST, build_policy
from crs.reasoning.policy import ThresholdRule

__all__ = ["CONFIDENCES", "TEMPERATURES", "tune_policy"]

TEMPERATURES = (0.5, 1.0, 2.0)
CONFIDENCES = (0.3, 0.5, 0.7, 0.85, 0.95)


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
    for temperature, confidence in itertools.product(temperatures, confidences):
        settings = base.settings.model_copy(update={"temperature": temperature, "confidence": confidence})
        engine = Engine(data.graph, base.scorer, settings, ThresholdRule.from_settings(settings, max_turns))
        run = run_benchmark(engine, pairs, episodes=episodes, seed=seed, max_turns=max_turns,
                            enumerate_facets=data.enumerate_facets)
        grid.append({"temperature": temperature, "confidence": confidence,
                     sr: run.metrics[sr], "AT": run.metrics["AT"], "hDCG": run.metrics["hDCG"]})
        if progress is not None:
            progress(1)
    best = max(grid, key=lambda row: (round(row[sr], 4), -row["AT"]))
    return {
        "policy": BEST if policy == "best" else policy,
        "settings": {"temperature": best["temperature"], "confidence": best["confidence"]},
        "split": "valid", "episodes": min(episodes, len(pairs)), "seed": seed, "max_turns": max_turns,
        "topk": topk, "enumerate_facets": data.enumerate_facets,
        "valid": {sr: best[sr], "AT": best["AT"], "hDCG": best["hDCG"]}, "grid": grid,
    }
