"""Metrics of the MCR benchmark as small composable objects.

Each metric sees every :class:`EpisodeResult` through ``update`` and reports a dict of
numbers through ``result``; :class:`MetricSet` runs several at once. Turns are counted as
UNICORN counts them: the opening (turn 0) is free, the agent's turns are 1..max_turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "HDCG",
    "AverageTurns",
    "EpisodeResult",
    "Metric",
    "MetricSet",
    "SuccessCurve",
    "SuccessRate",
    "default_metrics",
    "hdcg",
]


@dataclass(frozen=True, slots=True)
class EpisodeResult:
    user: str | None
    target: str
    success_turn: int | None  # 1-based agent turn of the accepted list, None on failure
    rank: int | None  # 1-based rank of the target in that list
    questions: int = 0
    lists: int = 0


def hdcg(turn: int, rank: int) -> float:
    """hDCG of one success at 1-based agent turn ``turn`` with the target at 1-based ``rank``.

    The data README's formula with its 0-based turn t = turn - 1:
    1/log2(t+3) + (1/log2(t+2) - 1/log2(t+3)) / log2(r+1).

    >>> hdcg(1, 1)
    1.0
    >>> round(hdcg(2, 3), 6)
    0.565465
    """
    t = turn - 1
    hi, lo = 1 / math.log2(t + 2), 1 / math.log2(t + 3)
    return lo + (hi - lo) / math.log2(rank + 1)


class Metric(Protocol):
    def update(self, episode: EpisodeResult) -> None: ...

    def result(self) -> dict[str, float | list[float]]: ...


@dataclass
class SuccessRate:
    """SR@k: the share of episodes that succeed by agent turn k."""

    k: int
    hits: int = 0
    count: int = 0

    def update(self, episode: EpisodeResult) -> None:
        self.count += 1
        self.hits += episode.success_turn is not None and episode.success_turn <= self.k

    def result(self) -> dict[str, float | list[float]]:
        return {f"SR@{self.k}": self.hits / self.count if self.count else 0.0}


@dataclass
class AverageTurns:
    """AT: mean agent turns used; a failure counts as the full budget."""

    max_turns: int
    total: int = 0
    count: int = 0

    def update(self, episode: EpisodeResult) -> None:
        self.count += 1
        self.total += episode.success_turn if episode.success_turn is not None else self.max_turns

    def result(self) -> dict[str, float | list[float]]:
        return {"AT": self.total / self.count if self.count else 0.0}


@dataclass
class HDCG:
    """hDCG averaged over episodes (a failure adds 0)."""

    total: float = 0.0
    count: int = 0

    def update(self, episode: EpisodeResult) -> None:
        self.count += 1
        if episode.success_turn is not None and episode.rank is not None:
            self.total += hdcg(episode.success_turn, episode.rank)

    def result(self) -> dict[str, float | list[float]]:
        return {"hDCG": self.total / self.count if self.count else 0.0}


@dataclass
class SuccessCurve:
    """SR@k for every k = 1..max_turns, as one list (index 0 is SR@1)."""

    max_turns: int
    by_turn: list[int] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        self.by_turn = [0] * self.max_turns

    def update(self, episode: EpisodeResult) -> None:
        self.count += 1
        if episode.success_turn is not None and episode.success_turn <= self.max_turns:
            self.by_turn[episode.success_turn - 1] += 1

    def result(self) -> dict[str, float | list[float]]:
        curve, total = [], 0
        for hits in self.by_turn:
            total += hits
            curve.append(total / self.count if self.count else 0.0)
        return {"success_curve": curve}


@dataclass
class MetricSet:
    metrics: list[Metric]

    def update(self, episode: EpisodeResult) -> None:
        for metric in self.metrics:
            metric.update(episode)

    def result(self) -> dict[str, float | list[float]]:
        out: dict[str, float | list[float]] = {}
        for metric in self.metrics:
            out.update(metric.result())
        return out


def default_metrics(max_turns: int) -> MetricSet:
    """SR@k for every k up to the budget (and 5, 10, 15 always), AT, hDCG and the curve."""
    ks = sorted({*range(1, max_turns + 1), 5, 10, 15})
    return MetricSet([*(SuccessRate(k) for k in ks), AverageTurns(max_turns), HDCG(), SuccessCurve(max_turns)])
