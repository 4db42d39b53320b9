"""The simulated user's rules and the runner, on the toy catalog (no benchmark data needed)."""

from __future__ import annotations

import json

import pytest

from crs.evals.runner import run_benchmark, run_episode, sample_episodes
from crs.evals.simulator import SimulatedUser
from crs.kb import KnowledgeGraph
from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings
from crs.reasoning.state import Action, Recommendation


def rec(*ids: str) -> Action:
    return Action(kind="recommend", recommendations=tuple(Recommendation(i, i, (i,), 0.0) for i in ids))


def test_opening_volunteers_one_attribute_of_the_target(toy_graph: KnowledgeGraph) -> None:
    own = {"genre:jazz", "decade:1950s", "mood:calm"}
    seen = {SimulatedUser(toy_graph, "u", "kind-of-blue", choice=c / 10).opening().accept_attributes
            for c in range(10)}
    assert all(len(a) == 1 for a in seen)
    assert {a[0] for a in seen} == own  # every attribute can open, and only the target's


def test_binary_question_is_yes_exactly_when_the_target_has_it(toy_graph: KnowledgeGraph) -> None:
    user = SimulatedUser(toy_graph, "u", "kind-of-blue")
    yes = user.answer(Action(kind="ask", attribute="mood:calm")).feedback
    no = user.answer(Action(kind="ask", attribute="mood:party")).feedback
    assert yes.accept_attributes == ("mood:calm",) and not yes.reject_attributes
    assert no.reject_attributes == ("mood:party",) and not no.accept_attributes


def test_list_succeeds_exactly_when_it_holds_the_target(toy_graph: KnowledgeGraph) -> None:
    user = SimulatedUser(toy_graph, "u", "kind-of-blue")
    hit = user.answer(rec("blue-train", "kind-of-blue"))
    assert hit.accepted and hit.rank == 2
    miss = user.answer(rec("blue-train", "thriller"))
    assert not miss.accepted and miss.feedback.reject_items == ("blue-train", "thriller")


def test_failed_list_leaves_the_candidates(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph, settings=PolicySettings(no_rule="strict"))
    user = SimulatedUser(toy_graph, "u", "kind-of-blue")
    s = engine.start("u")
    before = set(engine.view(s).candidates.tolist())
    s = engine.apply(s, user.answer(rec("thriller")).feedback)
    assert before - set(engine.view(s).candidates.tolist()) == {toy_graph.item("thriller")}


@pytest.mark.parametrize(("no_rule", "removed"), [("strict", False), ("prune", True)])
def test_a_no_removes_candidates_only_under_prune(toy_graph: KnowledgeGraph, no_rule: str, removed: bool) -> None:
    engine = Engine(toy_graph, settings=PolicySettings(no_rule=no_rule))  # type: ignore[arg-type]
    user = SimulatedUser(toy_graph, "u", "kind-of-blue")
    s = engine.apply(engine.start("u"), user.answer(Action(kind="ask", attribute="genre:pop")).feedback)
    assert ("thriller" in {toy_graph.item_ids[i] for i in engine.view(s).candidates}) is not removed


def test_enumerated_facets_answer_with_all_values_of_the_facet(toy_graph: KnowledgeGraph) -> None:
    user = SimulatedUser(toy_graph, "u", "purple-rain", enumerate_facets=True)  # genre: pop, rock
    fb = user.answer(Action(kind="ask", attribute="genre:pop", options=("genre:pop", "genre:jazz"))).feedback
    assert set(fb.accept_attributes) == {"genre:pop", "genre:rock"}
    assert fb.reject_attributes == ("genre:jazz",)
    fb = user.answer(Action(kind="ask", attribute="genre:jazz", options=("genre:jazz", "genre:folk"))).feedback
    assert set(fb.accept_attributes) == {"genre:pop", "genre:rock"}
    assert fb.reject_attributes == ("genre:jazz", "genre:folk")


def test_episode_counts_agent_turns_after_the_opening(toy_graph: KnowledgeGraph) -> None:
    # top_k 12 ≥ the catalog: the first agent turn recommends everything and succeeds at rank ≤ 12
    engine = Engine(toy_graph, settings=PolicySettings(top_k=12, no_rule="strict"))
    result = run_episode(engine, SimulatedUser(toy_graph, "u1", "blue"), max_turns=15)
    assert result.success_turn == 1 and result.rank is not None and result.lists == 1
    # a budget of one question and no list can only fail
    never = Engine(toy_graph, settings=PolicySettings(top_k=1, confidence=1.0, max_questions=99))
    failed = run_episode(never, SimulatedUser(toy_graph, "u1", "blue"), max_turns=1)
    assert failed.success_turn is None and failed.questions == 1


def test_same_seed_same_results(toy_graph: KnowledgeGraph) -> None:
    pairs = [(u, toy_graph.item_ids[i]) for u in ("u1", "u2", "u3") for i in range(toy_graph.n_items)]
    assert sample_episodes(pairs, 5, 7) == sample_episodes(pairs, 5, 7)
    assert sample_episodes(pairs, 5, 7) != sample_episodes(pairs, 5, 8)

    def run(seed: int) -> str:
        engine = Engine(toy_graph, settings=PolicySettings(top_k=2, no_rule="strict"))
        out = run_benchmark(engine, pairs, episodes=20, seed=seed, max_turns=5)
        return json.dumps([out.metrics, [e.success_turn for e in out.episodes]])

    assert run(3) == run(3)
