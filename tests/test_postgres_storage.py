"""Conversation storage in PostgreSQL stays bounded: old checkpoints are pruned every few turns."""

from __future__ import annotations

import time
from pathlib import Path

from crs import Recommender, Settings
from crs.graphs.checkpoint import PRUNE_EVERY_STEPS, thread_id

LINES = ["some jazz please", "no", "yes", "from the 1950s", "just recommend something", "why the first one?",
         "something calmer", "I love rock", "no thanks", "start over"]


def test_a_long_conversation_keeps_few_checkpoints_in_postgres(tmp_path: Path, postgres_url: str) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, memory=False, checkpoints_url=postgres_url))
    user = f"long-{time.monotonic_ns()}"
    config = {"configurable": {"thread_id": thread_id(user, "s")}}
    kept, steps = [], []
    for turn in range(1, 81):
        rec.chat(user, "s", LINES[turn % len(LINES)])
        kept.append(len(list(rec.checkpointer.list(config))))
        steps.append(rec.app.get_state(config).metadata["step"])
    assert steps[-1] > 4 * PRUNE_EVERY_STEPS  # the conversation crossed several pruning blocks
    # never more than a block and a turn of checkpoints (a turn runs at least 5 steps; the first
    # prune comes in the turn after step 64), and pruned to the newest one again and again
    assert max(kept) <= (PRUNE_EVERY_STEPS + 10) // 5 + 1
    assert kept.count(1) >= 4
    assert [m["content"] for m in rec.transcript(user, "s") if m["role"] == "user"][-3:] == [
        LINES[78 % 10], LINES[79 % 10], LINES[80 % 10]]  # the whole conversation is still in the log
