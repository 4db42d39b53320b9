"""Evaluation: the MCR benchmark (a CPR-protocol user simulator, metrics, a runner and reports)
and scripted dialogues (the YAML format here; the runner in :mod:`crs.evals.dialogues`, the
natural-language simulator in :mod:`crs.evals.nl_user`, the judge in :mod:`crs.evals.judge`).

The benchmark runs through the chatbot's own :class:`crs.reasoning.engine.Engine`; scripts run
through the public :class:`crs.Recommender`.
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
from crs.evals.script import DialogueScript, ScriptError, find_scripts, load_script
from crs.evals.simulator import Answer, SimulatedUser, UserSimulator

__all__ = [
    "HDCG",
    "Answer",
    "AverageTurns",
    "BenchmarkRun",
    "DialogueScript",
    "EpisodeResult",
    "Metric",
    "MetricSet",
    "ScriptError",
    "SimulatedUser",
    "SuccessCurve",
    "SuccessRate",
    "UserSimulator",
    "default_metrics",
    "find_scripts",
    "hdcg",
    "load_script",
    "run_benchmark",
    "run_episode",
    "sample_episodes",
]
