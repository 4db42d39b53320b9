"""The MCR benchmark: a CPR-protocol user simulator, metrics, a runner and reports.

Everything runs through the chatbot's own :class:`crs.reasoning.engine.Engine`.
"""

from crs.evals.metrics import (
    HDCG,
    AverageTurns,
    EpisodeResult,
    Metric,
    MetricSet,
    SuccessCurve,
    SuccessRate,
    default_metrics,
    hdcg,
)
from crs.evals.runner import BenchmarkRun, run_benchmark, run_episode, sample_episodes
from crs.evals.simulator import Answer, SimulatedUser, UserSimulator

__all__ = [
    "HDCG",
    "Answer",
    "AverageTurns",
    "BenchmarkRun",
    "EpisodeResult",
    "Metric",
    "MetricSet",
    "SimulatedUser",
    "SuccessCurve",
    "SuccessRate",
    "UserSimulator",
    "default_metrics",
    "hdcg",
    "run_benchmark",
    "run_episode",
    "sample_episodes",
]
