"""Retrospective reflection: the RMM reranker learns what gets used, and persists per user."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crs.evals.memory import reranker_simulation
from crs.memory import ChromaMemoryStore, MemoryEntry, MemorySettings, ReflectiveMemory, RerankerBank, gumbel_top_m
from crs.memory.reranker import Reranker, RerankerSettings


def test_an_untrained_reranker_is_plain_cosine() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal(32).astype(np.float32)
    mems = rng.standard_normal((10, 32)).astype(np.float32)
    model = Reranker.fresh(32, RerankerSettings(), seed=1)
    assert np.allclose(model.scores(q, mems), mems @ q, atol=1e-5)


def test_sampling_is_seeded() -> None:
    logits = np.linspace(0, 1, 20)
    a = gumbel_top_m(logits, 5, np.random.default_rng(3))
    b = gumbel_top_m(logits, 5, np.random.default_rng(3))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 5


def test_learning_beats_retrieval_without_it() -> None:
    result = reranker_simulation(rounds=240, seed=0)
    assert result["precision_reranked"] > result["precision_cosine"] + 0.15
    assert result["precision_reranked"] > result["precision_reranked_first_third"]
    other = reranker_simulation(rounds=240, seed=7)
    assert other["precision_reranked"] > other["precision_cosine"]


def test_state_is_persisted_per_user_and_forgotten(tmp_path: Path) -> None:
    bank = RerankerBank(tmp_path)
    model = bank.get("ann", 16)
    rng = np.random.default_rng(0)
    q, mems = rng.standard_normal(16).astype(np.float32), rng.standard_normal((6, 16)).astype(np.float32)
    model.update(q, mems, [0, 1], [1.0, -1.0], bank.settings)
    bank.save("ann")
    again = RerankerBank(tmp_path).get("ann", 16)
    assert again.updates == 1 and np.allclose(again.scores(q, mems), model.scores(q, mems))
    assert RerankerBank(tmp_path).get("bob", 16).updates == 0  # one user's learning is not another's
    assert bank.forget("ann") and not any(tmp_path.iterdir())


def test_a_damaged_state_file_falls_back_to_plain_retrieval(tmp_path: Path) -> None:
    bank = RerankerBank(tmp_path)
    path = bank.path("ann")
    assert path is not None
    path.write_bytes(b"not an npz")
    assert bank.get("ann", 8).updates == 0


def test_feedback_updates_the_model_and_use_counts(tmp_path: Path) -> None:
    mem = ReflectiveMemory(ChromaMemoryStore.persistent(tmp_path / "s"), settings=MemorySettings(seed=1))
    assert mem.store is not None
    mem.store.for_user("ann").upsert([
        MemoryEntry(id=f"m{k}", user_id="ann", kind="like", text=t)
        for k, t in enumerate(["Likes jazz.", "Likes rock.", "Has kids.", "Prefers short replies."])
    ])
    ret = mem.retrieve("ann", "music they like", k=4, m=2)
    assert len(ret.entries) == 2 and all(e.user_id == "ann" for e in ret.entries)
    used = ret.entries[0].id
    mem.feedback(ret, [used], accepted=True)
    assert mem.rerankers.get("ann", 256).updates == 1
    assert mem.store.for_user("ann").get([used])[0].success_count == 1
    path = mem.rerankers.path("ann")
    assert path is not None and path.is_file()
    mem.feedback(ret, [used], accepted=True)  # a retrieval is credited once
    assert mem.rerankers.get("ann", 256).updates == 1
