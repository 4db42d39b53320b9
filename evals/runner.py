"""Run simulated MCR episodes through the chatbot's own :class:`crs.reasoning.engine.Engine`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crs.evals.metrics import EpisodeResult, MetricSet, default_metrics
from crs.evals.simulator import SimulatedUser, UserSimulator
from crs.reasoning.engine import Engine

__all__ = ["BenchmarkRun", "run_benchmark", "run_episode", "sample_episodes"]


def sample_episodes(pairs: Sequence[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """The protocol's episodes: the pairs shuffled with ``seed``, first ``n`` kept."""
    order = np.random.default_rng(seed).permutation(len(pairs))[: max(n, 0)]
    return [pairs[i] for i in order.tolist()]


def run_episode(engine: Engine, user: UserSimulator, max_turns: int) -> EpisodeResult:
    """One conversation: the opening, then up to ``max_turns`` agent turns."""
    state = engine.apply(engine.start(user.user_id), user.opening())
    questions = lists = 0
    for turn in range(1, max_turns + 1):
        action = engine.decide(state)
        if action.kind == "ask":
            questions += 1
        elif action.kind == "recommend":
            lists += 1
        else:  # nothing left to ask or recommend: the conversation is stuck
            break
        answer = user.answer(action)
        if answer.accepted:
            return EpisodeResult(user.user_id, user.target, turn, answer.rank, questions, lists)
        # What the chatbot does: show the action, then apply the person's answer to it.
        state = engine.apply(engine.record(state, action), answer.feedback)
    return EpisodeResult(user.user_id, user.target, None, None, questions, lists)


@dataclass
class BenchmarkRun:
    """Results of a run; speed counts only the conversations (not loading or training).

    ``episodes_per_sec`` uses the process's CPU time (BLAS runs on one thread, so this is
    one core's speed, unaffected by other jobs on a shared machine); the wall-clock speed
    is ``episodes_per_sec_wall``.
    """

    episodes: list[EpisodeResult]
    seconds: float
    cpu_seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def episodes_per_sec(self) -> float:
        return len(self.episodes) / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    @property
    def episodes_per_sec_wall(self) -> float:
        return len(self.episodes) / self.seconds if self.seconds > 0 else float("inf")


def run_benchmark(
    engine: Engine,
    pairs: Sequence[tuple[str, str]],
    *,
    episodes: int,
    seed: int,
    max_turns: int = 15,
    enumerate_facets: bool = False,
    metrics: MetricSet | None = None,
    progress: Callable[[int], None] | None = None,
) -> BenchmarkRun:
    """Run the first ``episodes`` of the ``seed``-shuffled pairs; time only the conversations."""
    chosen = sample_episodes(pairs, episodes, seed)
    choices = np.random.default_rng([seed, 1]).random(len(chosen)).tolist()
    metric_set = metrics if metrics is not None else default_metrics(max_turns)
    results: list[EpisodeResult] = []
    elapsed = cpu = 0.0
    for (user_id, target), choice in zip(chosen, choices, strict=True):
        sim = SimulatedUser(engine.graph, user_id, target, choice=choice, enumerate_facets=enumerate_facets)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = run_episode(engine, sim, max_turns)
        cpu += time.process_time() - started_cpu
        elapsed += time.perf_counter() - started
        metric_set.update(result)
        results.append(result)
        if progress is not None:
            progress(1)
    return BenchmarkRun(results, elapsed, cpu, metric_set.result())
