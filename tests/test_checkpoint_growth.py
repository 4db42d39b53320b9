"""Bounded conversation storage: checkpoints stay one size, old ones are pruned, the transcript is whole."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from crs import Recommender, Settings
from crs.graphs.checkpoint import _CANNOT_PRUNE, PRUNE_EVERY_STEPS, prune_thread, sqlite_checkpointer, thread_id
from crs.graphs.steps import TRANSCRIPT_WINDOW, TurnSteps
from crs.kb import KnowledgeGraph

LINES = ["some jazz please", "no", "yes", "from the 1950s", "just recommend something", "why the first one?",
         "something calmer", "I love rock", "no thanks", "start over"]


def _stored(rec: Recommender, thread: str) -> int:
    conn = rec.checkpointer.conn  # type: ignore[attr-defined]
    (ck,) = conn.execute("SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM checkpoints "
                         "WHERE thread_id = ?", (thread,)).fetchone()
    (log,) = conn.execute("SELECT coalesce(sum(length(line)), 0) FROM crs_transcript WHERE thread_id = ?",
                          (thread,)).fetchone()
    return int(ck + log)


def _growth(rec: Recommender) -> tuple[float, float]:
    """Bytes added per turn over turns 10-20 and over turns 50-60 of one conversation: about
    equal when storage grows linearly, over three times as many when it grows quadratically."""
    thread = thread_id("ann", "long")
    sizes = {}
    for turn in range(1, 61):
        rec.chat("ann", "long", LINES[turn % len(LINES)])
        if turn in (10, 20, 50, 60):
            sizes[turn] = _stored(rec, thread)
    return (sizes[20] - sizes[10]) / 10, (sizes[60] - sizes[50]) / 10


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path)


def test_storage_grows_linearly_and_stays_small(toy_graph: KnowledgeGraph, toy_catalog, settings) -> None:
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings)
    early, late = _growth(rec)
    assert late < 1.5 * early, f"storage grows faster as the conversation goes on: {early:.0f} then {late:.0f} B/turn"
    assert late <= 2048
    kept = rec.checkpointer.conn.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id("ann", "long"),)).fetchone()[0]
    assert kept == 2  # the current checkpoint and the one before it


def test_the_unbounded_state_is_caught_by_the_same_measure(toy_graph: KnowledgeGraph, toy_catalog, settings) -> None:
    """The measure above can fail: with the whole transcript in every checkpoint it sees quadratic growth."""
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings,
                      transcript_window=None, keep_checkpoints=None)
    early, late = _growth(rec)
    assert late > 2 * early


def test_transcript_is_whole_while_the_state_keeps_a_window(toy_graph: KnowledgeGraph, toy_catalog,
                                                            settings) -> None:
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings)
    said = [LINES[t % len(LINES)] for t in range(30)]
    for line in said:
        rec.chat("ann", "s", line)
    lines = rec.transcript("ann", "s")
    assert [t["content"] for t in lines if t["role"] == "user"] == said
    assert len(lines) == 60 and all(t["role"] == "assistant" for t in lines[1::2])
    state = rec.app.get_state(rec._config("ann", "s")).values
    assert len(state["transcript"]) == TRANSCRIPT_WINDOW and state["transcript"] == lines[-TRANSCRIPT_WINDOW:]
    # a restart reads the same file: the conversation and its whole transcript go on
    again = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings)
    assert again.transcript("ann", "s") == lines
    turn = rec.state("ann", "s").turn
    assert again.chat("ann", "s", "jazz").turn == turn + 1
    assert len(again.transcript("ann", "s")) == len(lines) + 2
    again.reset("ann", "s")
    assert again.transcript("ann", "s") == [] and again.state("ann", "s") is None


def test_a_conversation_from_before_the_log_keeps_its_earlier_lines(toy_graph: KnowledgeGraph, toy_catalog,
                                                                      settings, monkeypatch) -> None:
    # the earlier code: the whole transcript in the state, no "said", nothing in the log
    said = TurnSteps._said
    monkeypatch.setattr(TurnSteps, "_said", lambda self, state, reply: {
        k: v for k, v in said(self, state, reply).items() if k != "said"})
    monkeypatch.setattr(Recommender, "_after_turn", lambda self, config, before, out: None)
    old = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings,
                      transcript_window=None, keep_checkpoints=None)
    for line in LINES[:4]:
        old.chat("ann", "s", line)
    assert old.transcripts.read(thread_id("ann", "s")) == []
    monkeypatch.undo()
    earlier = old.transcript("ann", "s")  # read from the state
    assert len(earlier) == 8
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings)
    rec.chat("ann", "s", "jazz")
    lines = rec.transcript("ann", "s")
    assert lines[:8] == earlier and lines[8]["content"] == "jazz" and len(lines) == 10


def test_prune_keeps_the_newest_checkpoints_and_the_state(tmp_path: Path, toy_graph: KnowledgeGraph,
                                                            toy_catalog) -> None:
    saver = sqlite_checkpointer(tmp_path / "c.sqlite")
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=Settings(state_dir=tmp_path),
                      checkpointer=saver, keep_checkpoints=None)
    for line in LINES[:6]:
        rec.chat("ann", "s", line)
    thread = thread_id("ann", "s")
    ids = [c.config["configurable"]["checkpoint_id"] for c in saver.list({"configurable": {"thread_id": thread}})]
    before = rec.state("ann", "s")
    prune_thread(saver, thread, keep=3)
    kept = [c.config["configurable"]["checkpoint_id"] for c in saver.list({"configurable": {"thread_id": thread}})]
    assert kept == ids[:3]
    assert rec.state("ann", "s") == before
    with pytest.raises(ValueError, match="keep must be at least 1"):
        prune_thread(saver, thread, keep=0)


class _PruningSaver(InMemorySaver):
    """A saver with its own prune (as PostgresSaver has): prune_thread must go through it."""

    calls: ClassVar[list[tuple[list[str], str]]] = []

    def prune(self, thread_ids: Any, *, strategy: str = "keep_latest") -> None:
        self.calls.append((list(thread_ids), strategy))


def test_other_savers_prune_through_their_own_api(toy_graph: KnowledgeGraph, toy_catalog, settings, caplog) -> None:
    _PruningSaver.calls.clear()
    rec = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings, checkpointer=_PruningSaver())
    config = {"configurable": {"thread_id": thread_id("ann", "s")}}
    steps = []
    for n in range(40):
        rec.chat("ann", "s", LINES[n % len(LINES)])
        steps.append(rec.app.get_state(config).metadata["step"])
        if _PruningSaver.calls:
            break
    # not in the first block of steps (a conversation's first turns have little to prune), then once
    assert steps[-2] >= PRUNE_EVERY_STEPS > steps[-3]
    assert _PruningSaver.calls == [([thread_id("ann", "s")], "keep_latest")]
    assert rec.transcript("ann", "s")[0]["content"] == LINES[0]  # the log is a file of its own for this saver
    assert (settings.state_dir / "transcripts.sqlite").is_file()
    # a saver that cannot prune says so once and keeps working
    _CANNOT_PRUNE.discard(InMemorySaver)
    plain = Recommender(toy_graph, vocabulary=toy_catalog.vocabulary, settings=settings, checkpointer=InMemorySaver())
    with caplog.at_level(logging.WARNING, logger="crs.graphs.checkpoint"):
        for n in range(60):  # two prunes due, or more
            plain.chat("bob", "s", LINES[n % len(LINES)])
    assert plain.app.get_state({"configurable": {"thread_id": thread_id("bob", "s")}}).metadata["step"] > \
        2 * PRUNE_EVERY_STEPS
    assert [r.message for r in caplog.records].count(
        "InMemorySaver cannot prune old checkpoints; every checkpoint of a conversation is kept") == 1
    assert plain.transcript("bob", "s")[-2]["content"] == LINES[59 % len(LINES)]
