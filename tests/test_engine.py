"""Path reasoning: candidates, attribute choice, ask-or-recommend, explanations."""

from __future__ import annotations

import numpy as np
import pytest

from crs.kb import KnowledgeGraph, UnknownIdError
from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings, preference_weights, top_k
from crs.reasoning.state import DialogueState, Feedback
from tests.test_question_reference import reference_question


def candidates(engine: Engine, state: DialogueState) -> set[str]:
    g = engine.graph
    return {g.item_ids[i] for i in engine.view(state).candidates}


def test_accepted_attributes_extend_the_path_and_intersect(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph)
    s = engine.apply(engine.start(), Feedback(accept_attributes=("genre:jazz",)))
    assert candidates(engine, s) == {"kind-of-blue", "a-love-supreme", "blue-train"}
    s = engine.apply(s, Feedback(accept_attributes=("decade:1950s",)))
    assert s.accepted == ("genre:jazz", "decade:1950s")
    assert candidates(engine, s) == {"kind-of-blue", "blue-train"}
    assert s.turn == 2


def test_rejected_item_leaves_the_candidates(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph)
    s = engine.apply(engine.start(), Feedback(accept_attributes=("genre:jazz",), reject_items=("blue-train",)))
    assert candidates(engine, s) == {"kind-of-blue", "a-love-supreme"}


def test_rejected_attribute_is_a_soft_penalty_by_default_and_prunes_when_set(toy_graph: KnowledgeGraph) -> None:
    soft = Engine(toy_graph, settings=PolicySettings(top_k=12))
    s = soft.apply(soft.start(), Feedback(reject_attributes=("genre:pop",)))
    view = soft.view(s)
    assert len(view.candidates) == toy_graph.n_items  # nothing removed
    ranked = [r.item_id for r in soft.recommendations(s, view)]
    assert ranked.index("thriller") > ranked.index("nevermind")  # popular, but penalised
    pruned = Engine(toy_graph, settings=PolicySettings(no_rule="prune"))
    assert "thriller" not in candidates(pruned, s)
    strict = Engine(toy_graph, settings=PolicySettings(no_rule="strict", top_k=12))
    assert strict.recommendations(s, strict.view(s))[0].item_id == "thriller"


def test_changing_ones_mind_moves_an_attribute_between_lists(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph)
    s = engine.apply(engine.start(), Feedback(accept_attributes=("genre:rock",)))
    s = engine.apply(s, Feedback(reject_attributes=("genre:rock",)))
    assert s.accepted == () and s.rejected == ("genre:rock",)


def test_asks_the_max_entropy_attribute_of_the_candidates() -> None:
    from crs.kb import Catalog, Item, build_graph

    items = [Item(id=f"i{n}", name=f"I{n}", attributes={"f": vals, "g": ["z"]})
             for n, vals in enumerate([["a", "b", "c"], ["a", "c"], ["c"], ["c"]])]
    engine = Engine(build_graph(Catalog(items=items)), settings=PolicySettings(top_k=1, confidence=1.0))
    s = engine.apply(engine.start(), Feedback(accept_attributes=("g:z",)))
    action = engine.decide(s)
    # a: half the candidates (1 bit), b: a quarter, c and z: all of them (0 bits)
    assert action.kind == "ask" and action.attribute == "f:a"
    assert action.options == ("f:a", "f:c", "f:b")  # the facet's other values, commonest first
    asked = engine.record(s, action)
    assert asked.question == "f:a"
    assert engine.decide(engine.apply(asked, Feedback(reject_attributes=("f:a",)))).attribute == "f:b"


def test_only_attributes_of_candidates_are_askable(toy_graph: KnowledgeGraph) -> None:
    g = toy_graph
    engine = Engine(g)
    s = engine.apply(engine.start(), Feedback(accept_attributes=("genre:jazz",)))
    view = engine.view(s)
    _, entropy = reference_question(g, s, view.candidates, view.weights)
    askable = {g.attr_ids[a] for a, h in entropy.items() if h > 0}
    assert askable == {"decade:1950s", "decade:1960s", "mood:calm", "mood:uplifting", "mood:energetic"}
    assert g.attr_ids[view.best_attribute] in askable
    assert view.attr_share[g.attribute("genre:jazz")] == pytest.approx(1.0)


def test_recommends_top_k_with_paths_when_few_candidates_remain(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph, settings=PolicySettings(top_k=2))
    s = engine.apply(engine.start(), Feedback(accept_attributes=("genre:jazz", "decade:1950s")))
    action = engine.decide(s)
    assert action.kind == "recommend" and action.candidates == 2
    assert [r.item_id for r in action.recommendations] == ["kind-of-blue", "blue-train"]  # popularity
    assert action.recommendations[0].path == ("genre:jazz", "decade:1950s", "kind-of-blue")
    assert engine.record(s, action).recommended == ("kind-of-blue", "blue-train")


def test_decision_rule_settings(toy_graph: KnowledgeGraph) -> None:
    s0 = DialogueState()
    never_ask = Engine(toy_graph, settings=PolicySettings(max_questions=0))
    assert never_ask.decide(s0).kind == "recommend"
    confident = Engine(toy_graph, settings=PolicySettings(top_k=3, confidence=0.01))
    assert confident.decide(s0).kind == "recommend"
    curious = Engine(toy_graph, settings=PolicySettings(top_k=3, confidence=1.0, max_questions=9))
    assert curious.decide(s0).kind == "ask"
    assert curious.decide(s0, force_recommend=True).kind == "recommend"


def test_no_candidates_left_asks_to_clarify(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph)
    s = engine.apply(engine.start(), Feedback(accept_attributes=("genre:jazz", "decade:1990s")))
    assert engine.decide(s).kind == "clarify"


def test_unknown_ids_are_rejected_and_state_is_unchanged(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph)
    s = engine.start()
    with pytest.raises(UnknownIdError, match="unknown attribute id 'genre:polka'"):
        engine.apply(s, Feedback(accept_attributes=("genre:polka",)))
    with pytest.raises(UnknownIdError, match="unknown item id 'x'"):
        engine.apply(s, Feedback(reject_items=("x",)))
    assert s == engine.start()


def test_state_round_trips_through_plain_data(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph)
    s = engine.start("ann", prior=[("mood:calm", 0.5), ("genre:polka", 1.0)])
    s = engine.apply(s, Feedback(accept_attributes=("genre:jazz",), reject_items=("blue-train",)))
    data = s.to_dict()
    import json

    assert DialogueState.from_dict(json.loads(json.dumps(data))) == s
    assert s.prior == (("mood:calm", 0.5),)  # unknown attributes never enter the prior


def test_prior_from_memory_is_soft(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph, settings=PolicySettings(top_k=12))
    s = engine.start("ann", prior=[("mood:calm", 3.0)])
    ranked = [r.item_id for r in engine.recommendations(s, engine.view(s))]
    assert set(ranked[:2]) == {"kind-of-blue", "vespertine"}
    assert len(ranked) == toy_graph.n_items  # a prior never removes anything


def test_policy_helpers() -> None:
    w = preference_weights(np.array([0.0, np.log(3.0)]), 1.0)
    assert w.tolist() == pytest.approx([0.25, 0.75])
    assert top_k(np.array([5, 6, 7]), np.array([1.0, 3.0, 3.0]), 2).tolist() == [6, 7]


@pytest.fixture(scope="module")
def albums() -> KnowledgeGraph:
    from crs.kb import BUNDLED_CATALOG, build_graph, load_catalog

    return build_graph(load_catalog(BUNDLED_CATALOG))


def test_named_examples_pull_similar_items_up_and_are_not_recommended(albums: KnowledgeGraph) -> None:
    engine = Engine(albums, settings=PolicySettings(top_k=5))
    state = engine.apply(engine.start("ann"), Feedback(like_items=("kind-of-blue",)))
    assert state.seeds == ("kind-of-blue",)
    view = engine.view(state)
    assert albums.item_index["kind-of-blue"] not in view.candidates.tolist()  # the person knows it
    seed = set(albums.item_attrs.row(albums.item_index["kind-of-blue"]).tolist())
    top = engine.recommendations(state, view)
    shared = [len(seed & set(albums.item_attrs.row(albums.item_index[r.item_id]).tolist())) for r in top]
    unseeded = engine.recommendations(engine.start("ann"), engine.view(engine.start("ann")))
    baseline = [len(seed & set(albums.item_attrs.row(albums.item_index[r.item_id]).tolist())) for r in unseeded]
    assert min(shared) >= 3 and sum(shared) > sum(baseline)
    assert DialogueState.from_dict(state.to_dict()) == state


def test_items_asked_for_come_first(albums: KnowledgeGraph) -> None:
    engine = Engine(albums, settings=PolicySettings(top_k=3))
    wanted = ("kind-of-blue", "bitches-brew")
    state = engine.apply(engine.start("ann"), Feedback(want_items=wanted))
    action = engine.decide(state)
    assert action.kind == "recommend"
    assert {r.item_id for r in action.recommendations[:2]} == set(wanted)
    with pytest.raises(UnknownIdError):
        engine.apply(state, Feedback(like_items=("no-such-album",)))
