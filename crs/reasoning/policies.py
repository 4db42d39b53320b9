"""A boring registry: policy name → a factory of (scorer, PolicySettings, DecisionRule).

Every policy runs on the one :class:`crs.reasoning.engine.Engine`; a policy is only a choice of
scorer, settings and decision rule. ``best`` is an alias of the best policy measured on
the MCR benchmark. Policies that use a trained FM take a model (or a path to one); without
it they train one on the graph's interactions and report how long that took.

>>> sorted(POLICIES)
['best', 'filter', 'fm-bounded', 'fm-learned', 'fm-noisy', 'maxent', 'scpr']
>>> build_policy("nope", None)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
KeyError: "unknown policy 'nope'; known policies: best, filter, ..."
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from crs.kb.graph import KnowledgeGraph
from crs.reasoning.engine import Engine
from crs.reasoning.fm import MIN_ANSWER_NOISE, FMModel, FMScorer, load_fm, train_fm
from crs.reasoning.policy import DecisionRule, NoRule, PolicySettings, ThresholdRule
from crs.reasoning.scoring import PopularityScorer, Scorer

__all__ = [
    "BEST",
    "POLICIES",
    "BuiltPolicy",
    "PolicySpec",
    "RejectionUse",
    "build_policy",
    "graph_pairs",
    "policy_names",
    "tuned_settings",
]

RejectionUse = Literal["none", "learned", "bounded", "noisy-answer", "filter-strength"]

#: The policy that ``best`` stands for.
BEST = "fm-noisy"
#: The settings ``crs train scorer`` may tune and store with a model.
TUNABLE = ("temperature", "confidence", "answer_noise")


@dataclass(frozen=True)
class Options:
    """What every factory may read: list size, turn budget, the rule for "no" answers, and the
    share of wrong "no" answers a ``noisy`` scorer assumes."""

    top_k: int
    max_turns: int | None
    no_rule: NoRule
    answer_noise: float = MIN_ANSWER_NOISE


@dataclass(frozen=True)
class PolicySpec:
    name: str
    description: str
    rejection_use: RejectionUse
    uses_model: bool
    factory: Callable[[KnowledgeGraph, FMModel | None, Options], tuple[Scorer, PolicySettings, DecisionRule]]


@dataclass(frozen=True)
class BuiltPolicy:
    name: str
    scorer: Scorer
    settings: PolicySettings
    rule: DecisionRule
    rejection_use: RejectionUse
    train_seconds: float = 0.0
    tuned: bool = False  # the settings came from the model's tuning on its valid split

    def engine(self, graph: KnowledgeGraph) -> Engine:
        return Engine(graph, self.scorer, self.settings, self.rule)

    def described_settings(self) -> dict[str, float]:
        """The settings a report states: temperature, threshold, and the assumed share of wrong
        "no" answers for a policy that uses one."""
        out = {"temperature": self.settings.temperature, "confidence": self.settings.confidence}
        if self.rejection_use == "noisy-answer":
            out["answer_noise"] = float(getattr(self.scorer, "answer_noise", MIN_ANSWER_NOISE))
        return out


def _settings(opts: Options, **values: Any) -> PolicySettings:
    return PolicySettings(top_k=opts.top_k, no_rule=opts.no_rule, options=0, max_questions=100, **values)


def _maxent(graph: KnowledgeGraph, model: FMModel | None, opts: Options) -> tuple[
        Scorer, PolicySettings, DecisionRule]:
    # Uniform weights (a huge temperature): the classic max-entropy question; popularity ranks.
    settings = _settings(opts, temperature=1e9, confidence=1.0, min_entropy=0.0)
    return PopularityScorer(graph), settings, ThresholdRule.from_settings(settings, opts.max_turns)


def _fm(rejection: Literal["none", "bounded", "learned", "noisy"], temperature: float, confidence: float) -> Callable[
        [KnowledgeGraph, FMModel | None, Options], tuple[Scorer, PolicySettings, DecisionRule]]:
    def factory(graph: KnowledgeGraph, model: FMModel | None, opts: Options) -> tuple[
            Scorer, PolicySettings, DecisionRule]:
        assert model is not None
        settings = _settings(opts, temperature=temperature, confidence=confidence, min_entropy=0.0)
        scorer = FMScorer(model, graph, rejection=rejection, answer_noise=opts.answer_noise)
        return scorer, settings, ThresholdRule.from_settings(settings, opts.max_turns)

    return factory


def _filter(graph: KnowledgeGraph, model: FMModel | None, opts: Options) -> tuple[
        Scorer, PolicySettings, DecisionRule]:
    scorer, settings, rule = _fm("none", 1.0, 0.5)(graph, model, opts)
    if settings.no_rule == "strict":  # a soft penalty far larger than any attribute's weight
        settings = settings.model_copy(update={"no_rule": "soft", "rejection_weight": 30.0})
    return scorer, settings, rule


_SPECS = [
    PolicySpec("maxent", "popularity ranking + max-entropy questions (the classic baseline)",
               "none", False, _maxent),
    PolicySpec("scpr", "SCPR-style: FM scorer, FM-weighted entropy, ask/recommend threshold; ignores 'no' "
               "(the best policy without its use of 'no' answers)",
               "none", True, _fm("none", 1.0, 0.5)),
    PolicySpec("fm-bounded", "FM + weighted entropy + tuned ask/recommend threshold; a 'no' subtracts at most "
               "the weight the attribute would add if accepted", "bounded", True, _fm("bounded", 1.0, 0.5)),
    PolicySpec("fm-noisy", "fm-bounded, and a 'no' is evidence from a person who answers wrongly a share "
               f"answer_noise (at least {MIN_ANSWER_NOISE:g}) of the time: items having the attribute lose "
               "log((1 - answer_noise) / answer_noise) more logits (at most 2.2), and stay candidates",
               "noisy-answer", True, _fm("noisy", 1.0, 0.5)),
    PolicySpec("fm-learned", "FM + weighted entropy + tuned threshold; a 'no' adds a rejection vector learned in "
               "training (co-candidates having the attribute as negatives)", "learned", True,
               _fm("learned", 1.0, 0.5)),
    PolicySpec("filter", "FM with a 'no' penalty of 30 logits: the prune rule in disguise (for reference)",
               "filter-strength", True, _filter),
]
POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in _SPECS}
POLICIES["best"] = POLICIES[BEST]


def policy_names() -> list[str]:
    return sorted(POLICIES)


def graph_pairs(graph: KnowledgeGraph) -> list[tuple[str, str]]:
    """The (user, item) interactions a graph was built with (its training data)."""
    ids = graph.item_ids
    return [(user, ids[i]) for user, items in graph.user_items.items() for i in items.tolist()]


def build_policy(
    name: str,
    graph: KnowledgeGraph | None,
    *,
    model: FMModel | str | Path | None = None,
    top_k: int = 3,
    max_turns: int | None = None,
    no_rule: NoRule = "strict",
    tuned: bool = True,
) -> BuiltPolicy:
    """Build a registered policy for ``graph``. Unknown names raise, listing the known ones.

    With ``tuned`` (the default), a model that carries settings tuned for this policy on its
    catalog's valid split (``crs train scorer``, stored in ``meta["tuned"]``) overrides the
    registry's defaults for them.
    """
    spec = POLICIES.get(name)
    if spec is None:
        raise KeyError(f"unknown policy {name!r}; known policies: {', '.join(policy_names())}")
    if graph is None:
        raise ValueError("a policy needs a graph")
    train_seconds = 0.0
    fm: FMModel | None = None
    if spec.uses_model:
        if isinstance(model, FMModel):
            fm = model
        elif model is not None:
            fm = load_fm(model, graph)
        else:
            started = time.perf_counter()
            fm = train_fm(graph, graph_pairs(graph))
            train_seconds = time.perf_counter() - started
    stored = tuned_settings(fm, spec.name) if tuned else {}
    was_tuned = bool(stored)
    opts = Options(top_k, max_turns, no_rule)
    if "answer_noise" in stored:
        opts = replace(opts, answer_noise=stored.pop("answer_noise"))
    scorer, settings, rule = spec.factory(graph, fm, opts)
    if stored:
        settings = settings.model_copy(update=stored)
        rule = ThresholdRule.from_settings(settings, max_turns)
    return BuiltPolicy(spec.name, scorer, settings, rule, spec.rejection_use, train_seconds, was_tuned)


def tuned_settings(model: FMModel | None, policy: str) -> dict[str, float]:
    """The settings tuned for ``policy`` stored in the model (empty when there are none)."""
    tuned = model.meta.get("tuned") if model is not None else None
    if not isinstance(tuned, dict) or tuned.get("policy") != policy:
        return {}
    values = tuned.get("settings")
    if not isinstance(values, dict):
        return {}
    return {k: float(v) for k, v in values.items() if k in TUNABLE}
