"""Memory's prior counts less towards recommending as a session's lists are rejected, so a wrong
guess from memory gives way to questions instead of list after list; the lists it shows are still
ranked with all of it (``PolicySettings.prior_fade``)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from crs.kb import BUNDLED_CATALOG, KnowledgeGraph, build_graph, load_catalog
from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings
from crs.reasoning.state import DialogueState, Feedback


@pytest.fixture(scope="module")
def albums() -> KnowledgeGraph:
    return build_graph(load_catalog(BUNDLED_CATALOG))


def _view(engine: Engine, state: DialogueState) -> tuple[dict[str, float], dict[str, float]]:
    view = engine.view(state)
    ids = [engine.graph.item_ids[i] for i in view.candidates]
    return dict(zip(ids, view.scores.tolist(), strict=True)), dict(zip(ids, view.weights.tolist(), strict=True))


def test_each_rejected_list_fades_the_prior_in_the_decision_not_in_the_ranking(albums: KnowledgeGraph) -> None:
    engine = Engine(albums, settings=PolicySettings(top_k=5, prior_fade=0.5, prior_fade_after=0))
    prior = [("mood:calm", 2.0), ("genre:pop", -1.0)]
    calm = set(albums.attr_items.row(albums.attr_index["mood:calm"]).tolist())
    pop = set(albums.attr_items.row(albums.attr_index["genre:pop"]).tolist())
    rejected = tuple(albums.item_ids[i] for i in range(10))  # two lists of five
    for n, fade in ((0, 1.0), (5, 0.5), (10, 0.25)):
        scores, weights = _view(engine, engine.apply(engine.start("ann", prior), Feedback(reject_items=rejected[:n])))
        base, _ = _view(engine, engine.apply(engine.start("ann"), Feedback(reject_items=rejected[:n])))
        added = {item: 2.0 * (albums.item_index[item] in calm) - 1.0 * (albums.item_index[item] in pop)
                 for item in scores}
        for item, score in scores.items():  # lists are ranked with all of the prior
            assert score - base[item] == pytest.approx(added[item])
        # the rule and the question see the faded prior: softmax of base + fade x prior
        logits = np.array([base[i] + fade * added[i] for i in scores])
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert np.allclose([weights[i] for i in scores], expected)
    # the state keeps the remembered prior as it was
    state = engine.apply(engine.start("ann", prior), Feedback(reject_items=rejected))
    assert state.prior == (("mood:calm", 2.0), ("genre:pop", -1.0))


def test_the_first_rejected_list_is_forgiven_by_default(albums: KnowledgeGraph) -> None:
    engine = Engine(albums, settings=PolicySettings(top_k=5))  # prior_fade 0.5, after one list
    free = Engine(albums, settings=PolicySettings(top_k=5, prior_fade=1.0))
    prior = [("mood:calm", 2.0)]
    calm = set(albums.attr_items.row(albums.attr_index["mood:calm"]).tolist())
    rejected = tuple(albums.item_ids[i] for i in range(15))
    for n, fade in ((5, 1.0), (10, 0.5), (15, 0.25)):
        state = engine.apply(engine.start("ann", prior), Feedback(reject_items=rejected[:n]))
        base = free.view(engine.apply(engine.start("ann"), Feedback(reject_items=rejected[:n])))
        view = engine.view(state)
        logits = base.scores + fade * 2.0 * np.isin(view.candidates, list(calm))
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert np.allclose(view.weights, expected), n


def _acts(engine: Engine, prior: list[tuple[str, float]], turns: int) -> list[str]:
    s = engine.start("ann", prior)
    kinds = []
    for _ in range(turns):
        action = engine.decide(s)
        s = engine.record(s, action)
        kinds.append(action.kind)
        if action.kind == "recommend":  # none of these
            s = engine.apply(s, Feedback(reject_items=tuple(r.item_id for r in action.recommendations)))
        else:
            s = engine.apply(s, Feedback(reject_attributes=(action.attribute,)))
    return kinds


def test_a_missed_guess_from_memory_turns_into_questions(albums: KnowledgeGraph) -> None:
    # memory is sure about twenty items; the person wants none of them
    prior = [(f"item:{albums.item_ids[i]}", 20.0 - 0.5 * i) for i in range(20)]
    faded = _acts(Engine(albums, settings=PolicySettings(top_k=5, prior_fade=0.5)), prior, 5)
    at_once = _acts(Engine(albums, settings=PolicySettings(top_k=5, prior_fade=0.5, prior_fade_after=0)), prior, 5)
    never = _acts(Engine(albums, settings=PolicySettings(top_k=5, prior_fade=1.0)), prior, 5)
    assert at_once == ["recommend", "ask", "ask", "ask", "ask"]
    assert faded[:2] == ["recommend", "recommend"] and faded[2:] == ["ask", "ask", "ask"]  # one miss forgiven
    assert never[:4] == ["recommend"] * 4  # without the fade, memory's lists go on


def test_no_prior_no_change(albums: KnowledgeGraph) -> None:
    rejected = tuple(albums.item_ids[:5])
    a = Engine(albums, settings=PolicySettings(top_k=5, prior_fade=0.5))
    b = Engine(albums, settings=PolicySettings(top_k=5, prior_fade=1.0))
    sa = a.apply(a.start("ann"), Feedback(reject_items=rejected))
    assert np.array_equal(a.view(sa).scores, b.view(sa).scores)
    assert np.array_equal(a.view(sa).weights, b.view(sa).weights)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_prior_fade_out_of_range_is_an_error(bad: float) -> None:
    with pytest.raises(ValidationError, match="prior_fade"):
        PolicySettings(prior_fade=bad)
