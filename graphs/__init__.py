"""LangGraph state machines that wire the engine's steps into a conversation."""

from crs.graphs.checkpoint import (
    CheckpointError,
    delete_user_threads,
    scrub_checkpoints,
    sqlite_checkpointer,
    thread_id,
)
from crs.graphs.conversation import build_conversation_graph

__all__ = [
    "CheckpointError",
    "build_conversation_graph",
    "delete_user_threads",
    "scrub_checkpoints",
    "sqlite_checkpointer",
    "thread_id",
]
