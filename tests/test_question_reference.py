"""The fast question choice against a plain reference, on real data.

The engine counts weighted shares over binned, narrowed and shared candidate entries (see
``crs.reasoning.engine``); the reference below loops over the candidates' attribute rows. Both
must pick a question of the same entropy at every turn of real episodes, on LastFM (33
attributes: one bin per attribute) and LastFM* (8,438: the bins the candidates name).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crs.evals.data import load_benchmark_data
from crs.evals.runner import sample_episodes
from crs.evals.simulator import SimulatedUser
from crs.kb import KnowledgeGraph
from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings
from crs.reasoning.state import DialogueState
from tests.conftest import require_data


def entropy(p: float) -> float:
    if p <= 1e-12 or p >= 1 - 1e-9:
        return -1.0  # not askable: every candidate, or none, has it
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def reference_question(graph: KnowledgeGraph, state: DialogueState, candidates: np.ndarray,
                       weights: np.ndarray) -> tuple[float, dict[int, float]]:
    """The largest binary entropy over askable attributes, and the entropy of each attribute."""
    share: dict[int, float] = {}
    for item, weight in zip(candidates.tolist(), weights.tolist(), strict=True):
        for attr in graph.item_attrs.row(item).tolist():
            share[attr] = share.get(attr, 0.0) + weight
    never = {graph.attr_index[a] for a in (*state.asked, *state.accepted)}
    scores = {a: entropy(p) for a, p in share.items() if a not in never}
    return max(scores.values(), default=-1.0), scores


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["lastfm", "lastfm_star"])
def test_the_engine_asks_a_question_of_the_largest_entropy(dataset: str) -> None:
    data = load_benchmark_data(dataset, require_data(dataset))
    graph = data.graph
    # Popularity-weighted shares (temperature 1) and many questions: every turn's choice counts.
    engine = Engine(graph, settings=PolicySettings(top_k=10, temperature=1.0, confidence=0.9, max_questions=100,
                                                   no_rule="strict", options=0, min_entropy=0.0))
    checked = lists = 0
    for user, target in sample_episodes(data.splits["test"], 60, seed=3):
        sim = SimulatedUser(graph, user, target, choice=0.5)
        state = engine.apply(engine.start(user), sim.opening())
        for _ in range(15):
            view = engine.view(state)
            action = engine.decide(state)
            if action.kind == "ask":
                best, scores = reference_question(graph, state, view.candidates, view.weights)
                chosen = graph.attr_index[action.attribute]
                assert scores[chosen] == pytest.approx(best, abs=1e-9), (user, target, state.turn)
                assert view.best_entropy == pytest.approx(best, abs=1e-9)
                checked += 1
            elif action.kind == "recommend":
                lists += 1
            else:
                break
            answer = sim.answer(action)
            if answer.accepted:
                break
            state = engine.apply(engine.record(state, action), answer.feedback)
    assert checked > 200 and lists > 10  # questions after failed lists too (shared entries)
