"""The FM scorer: training is seeded, a saved model loads back, versions are checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crs.kb import KnowledgeGraph
from crs.reasoning.fm import FM_FORMAT_VERSION, FMConfig, FMScorer, ModelVersionError, load_fm, train_fm
from crs.reasoning.policies import build_policy, graph_pairs
from crs.reasoning.scoring import ScoringContext

SMALL = FMConfig(dim=8, epochs=3, batch_size=4, seed=1)


def test_training_is_seeded(toy_graph: KnowledgeGraph) -> None:
    a = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    b = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.attrs, b.attrs)
    assert np.all(a.users[:, -1] == 1.0)  # the bias column stays fixed


def test_saved_model_loads_and_scores_the_same(toy_graph: KnowledgeGraph, tmp_path: Path) -> None:
    model = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    path = tmp_path / "fm.npz"
    model.save(path)
    loaded = load_fm(path, toy_graph)
    assert loaded.user_ids == model.user_ids and loaded.meta["format_version"] == FM_FORMAT_VERSION
    ctx = ScoringContext("u1", np.array([0]), np.array([], dtype=np.int64))
    items = np.arange(toy_graph.n_items)
    assert np.allclose(FMScorer(model, toy_graph).score(ctx, items), FMScorer(loaded, toy_graph).score(ctx, items))
    policy = build_policy("best", toy_graph, model=path, top_k=2)
    assert policy.rejection_use == "noisy-answer" and policy.train_seconds == 0.0


def test_version_mismatch_and_wrong_catalog_raise(toy_graph: KnowledgeGraph, tmp_path: Path) -> None:
    model = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    path = tmp_path / "old.npz"
    model.save(path)
    data = dict(np.load(path))
    data["meta"] = np.asarray('{"format_version": 1}')
    np.savez(path, **data)
    with pytest.raises(ModelVersionError, match="format version 1"):
        load_fm(path, toy_graph)
    model.attrs = model.attrs[:-1]
    model.content = model.content[:-1]
    model.save(tmp_path / "small.npz")
    with pytest.raises(ModelVersionError, match="attributes"):
        load_fm(tmp_path / "small.npz", toy_graph)
    with pytest.raises(FileNotFoundError):
        load_fm(tmp_path / "missing.npz")


def test_bounded_rejection_never_outweighs_the_attribute(toy_graph: KnowledgeGraph) -> None:
    model = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    plain, bounded = FMScorer(model, toy_graph), FMScorer(model, toy_graph, rejection="bounded")
    items = np.arange(toy_graph.n_items)
    r = toy_graph.attribute("genre:pop")
    none = ScoringContext("u1", np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    rej = ScoringContext("u1", np.array([], dtype=np.int64), np.array([r]))
    acc = ScoringContext("u1", np.array([r]), np.array([], dtype=np.int64))
    drop = plain.score(none, items) - bounded.score(rej, items)
    weight = plain.score(acc, items) - plain.score(none, items)  # what accepting r adds
    assert np.all(drop >= 0) and np.all(drop <= np.maximum(weight, 0) + 1e-9)
    assert np.array_equal(plain.score(rej, items), plain.score(none, items))  # "none" ignores it


def test_a_noisy_no_takes_off_a_bounded_penalty_and_removes_no_item(toy_graph: KnowledgeGraph) -> None:
    model = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    bounded = FMScorer(model, toy_graph, rejection="bounded")
    noisy = FMScorer(model, toy_graph, rejection="noisy", answer_noise=0.2)
    items = np.arange(toy_graph.n_items)
    r = toy_graph.attribute("genre:pop")
    rej = ScoringContext("u1", np.array([], dtype=np.int64), np.array([r]))
    having = np.isin(items, toy_graph.attr_items.row(r))
    extra = bounded.score(rej, items) - noisy.score(rej, items)
    # log(0.8 / 0.2) logits off exactly the items having the attribute, nothing off the others
    assert np.allclose(extra[having], np.log(4.0)) and np.all(extra[~having] == 0.0)
    assert np.all(np.isfinite(noisy.score(rej, items)))
    with pytest.raises(ValueError, match=r"answer_noise must be between 0\.1 and 0\.5"):
        FMScorer(model, toy_graph, rejection="noisy", answer_noise=0.01)  # that would be a filter


def test_tuned_answer_noise_is_stored_with_the_model_and_used(toy_graph: KnowledgeGraph) -> None:
    model = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    model.meta["tuned"] = {"policy": "fm-noisy",
                           "settings": {"temperature": 0.5, "confidence": 0.7, "answer_noise": 0.3}}
    built = build_policy("best", toy_graph, model=model, top_k=2)
    assert built.tuned and built.described_settings() == {"temperature": 0.5, "confidence": 0.7,
                                                          "answer_noise": 0.3}
    assert isinstance(built.scorer, FMScorer) and built.scorer.no_penalty == pytest.approx(np.log(0.7 / 0.3))
    untuned = build_policy("best", toy_graph, model=model, top_k=2, tuned=False)
    assert not untuned.tuned and untuned.described_settings()["answer_noise"] == 0.1


def test_unknown_policy_lists_the_known_ones(toy_graph: KnowledgeGraph) -> None:
    with pytest.raises(KeyError, match="known policies: best, filter, fm-bounded, fm-learned, fm-noisy, maxent, scpr"):
        build_policy("nope", toy_graph)


def test_learned_rejections_are_trained_saved_and_a_no_adds_exactly_their_term(
        toy_graph: KnowledgeGraph, tmp_path: Path) -> None:
    config = FMConfig(dim=8, epochs=30, batch_size=4, seed=1, lr=0.05, max_rejected=2)
    model = train_fm(toy_graph, graph_pairs(toy_graph), config)
    assert model.rejects is not None and np.abs(model.rejects).sum() > 0
    path = tmp_path / "fm.npz"
    model.save(path)
    loaded = load_fm(path, toy_graph)
    assert loaded.rejects is not None and np.array_equal(loaded.rejects, model.rejects)
    scorer = build_policy("fm-learned", toy_graph, model=path, top_k=2).scorer
    assert isinstance(scorer, FMScorer)
    items = np.arange(toy_graph.n_items)
    for attr in range(toy_graph.n_attributes):
        # the learned term is N_r·q_v: exactly what a "no" to r changes, and nothing else
        before = scorer.score(ScoringContext("u1", np.array([], dtype=np.int64), np.array([], dtype=np.int64)), items)
        after = scorer.score(ScoringContext("u1", np.array([], dtype=np.int64), np.array([attr])), items)
        assert np.allclose(after - before, scorer.q @ model.rejects[attr], atol=1e-4)
    plain = train_fm(toy_graph, graph_pairs(toy_graph), SMALL)
    with pytest.raises(ValueError, match="no learned rejection vectors"):
        build_policy("fm-learned", toy_graph, model=plain, top_k=2)
