"""The engine and the FM scorer are shared by every conversation's thread: with tiny caches
(constant eviction) and many threads, every dialogue goes exactly as in a single-threaded run."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest

from crs.evals.simulator import SimulatedUser
from crs.kb import KnowledgeGraph, build_graph, load_catalog, load_interactions
from crs.kb.synth import synth_catalog, write_synth
from crs.reasoning.engine import Engine
from crs.reasoning.fm import FMConfig, FMScorer, train_fm
from crs.reasoning.policies import graph_pairs
from crs.reasoning.policy import PolicySettings

THREADS = 8
EPISODES = 40
ROUNDS = 3  # each thread runs every dialogue this many times, in its own order


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeGraph:
    made = synth_catalog(items=400, attributes=40, users=80, interactions=3000, seed=5, facets=3)
    items, interactions = write_synth(made, tmp_path_factory.mktemp("synth"))
    return build_graph(load_catalog(items), load_interactions(interactions))


@pytest.fixture(scope="module")
def model(graph: KnowledgeGraph) -> Any:
    return train_fm(graph, graph_pairs(graph), FMConfig(dim=8, epochs=2, batch_size=64, seed=1))


def _engine(graph: KnowledgeGraph, model: Any, cache: int) -> Engine:
    engine = Engine(graph, FMScorer(model, graph, cache_size=cache), PolicySettings(no_rule="soft", top_k=5))
    engine._cache_size = cache  # the candidate-set cache
    return engine


def _dialogue(engine: Engine, graph: KnowledgeGraph, user: str, target: str, choice: float) -> list[Any]:
    """Every decision of one simulated conversation, with the scores of what was listed."""
    sim = SimulatedUser(graph, user, target, choice=choice)
    state = engine.apply(engine.start(user), sim.opening())
    trace: list[Any] = []
    for _ in range(10):
        action = engine.decide(state)
        view = engine.view(state)
        trace.append((action.kind, action.attribute, action.options, action.candidates,
                      [asdict(r)["item_id"] for r in action.recommendations],
                      np.round(view.scores[:50], 9).tolist()))
        if action.kind not in ("ask", "recommend"):
            break
        answer = sim.answer(action)
        if answer.accepted:
            break
        state = engine.apply(engine.record(state, action), answer.feedback)
    return trace


def _episodes(graph: KnowledgeGraph) -> list[tuple[str, str, float]]:
    pairs = sorted({(u, graph.item_ids[i]) for u, items in graph.user_items.items() for i in items.tolist()})
    rng = np.random.default_rng(0)
    picked = rng.choice(len(pairs), EPISODES, replace=False)
    return [(*pairs[i], float(rng.random())) for i in picked]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between almost every bytecode
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_shared_engine_with_tiny_caches_gives_single_threaded_results(graph: KnowledgeGraph, model: Any,
                                                                       fast_switching: None) -> None:
    episodes = _episodes(graph)
    expected = [_dialogue(_engine(graph, model, 512), graph, *e) for e in episodes]
    shared = _engine(graph, model, 2)
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        order = np.random.default_rng(n).permutation(len(episodes)).tolist()
        try:
            start.wait()
            got = {i: _dialogue(shared, graph, *episodes[i]) for _ in range(ROUNDS) for i in order}
            results[n] = [got[i] for i in range(len(episodes))]
        except BaseException as exc:  # a KeyError from a cache evicted under a reader, say
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert len(results) == THREADS
    for n in range(THREADS):
        wrong = [i for i in range(len(episodes)) if results[n][i] != expected[i]]
        assert wrong == [], f"thread {n}: dialogues {wrong} differ from the single-threaded run"
