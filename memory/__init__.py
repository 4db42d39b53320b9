"""Reflective long-term memory: per-user memories, reflection and profiles.

Memories live in Chroma (embedded by default, a server to scale), one collection per user,
reached only through per-user handles. Prospective reflection distils sessions into
topic-level memories (add, merge or supersede); retrospective reflection reranks retrieval
with a small model learned online (RMM); the profile of the valid memories is a soft prior
for the engine. See ``memory.reflective.ReflectiveMemory`` for the conversation's hooks.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load when first used
    from crs.memory.chroma_store import ChromaMemoryStore, Layout
    from crs.memory.clock import Clock, OffsetClock
    from crs.memory.config import MemorySettings, ProfileSettings, RerankerSettings
    from crs.memory.embedding import EMBEDDING_NAME, OfflineEmbeddingFunction
    from crs.memory.entry import MemoryEntry, MemoryKind, memory_id
    from crs.memory.inmemory import InMemoryStore
    from crs.memory.llm import LLMMemory, ReflectionError, ReflectionOutput, llm_candidates
    from crs.memory.neighbours import ItemNeighbours
    from crs.memory.profile import Profile, base_rates, build_profile
    from crs.memory.reflection import Candidate, ReflectionResult, apply_candidates, offline_candidates
    from crs.memory.reflective import ReflectiveMemory, Retrieval
    from crs.memory.reranker import Reranker, RerankerBank, gumbel_top_m
    from crs.memory.session import SessionRecord, TurnEvent, update_record
    from crs.memory.statements import Statement, find_statements
    from crs.memory.store import (
        IsolationError,
        MemoryHit,
        MemoryStore,
        MemoryStoreError,
        StoreCorrupted,
        StoreUnavailable,
        UserMemories,
    )
    from crs.memory.tokens import encoding, fit_to_budget, prepare_offline_tiktoken, token_count

# Importing the store pulls in chromadb (about a second): settings files and tools that only
# need the settings models import ``memory`` without paying for it.
_SUBMODULES: dict[str, tuple[str, ...]] = {
    "chroma_store": ("ChromaMemoryStore", "Layout"),
    "clock": ("Clock", "OffsetClock"),
    "config": ("MemorySettings", "ProfileSettings", "RerankerSettings"),
    "embedding": ("EMBEDDING_NAME", "OfflineEmbeddingFunction"),
    "entry": ("MemoryEntry", "MemoryKind", "memory_id"),
    "inmemory": ("InMemoryStore",),
    "llm": ("LLMMemory", "ReflectionError", "ReflectionOutput", "llm_candidates"),
    "neighbours": ("ItemNeighbours",),
    "profile": ("Profile", "base_rates", "build_profile"),
    "reflection": ("Candidate", "ReflectionResult", "apply_candidates", "offline_candidates"),
    "reflective": ("ReflectiveMemory", "Retrieval"),
    "reranker": ("Reranker", "RerankerBank", "gumbel_top_m"),
    "session": ("SessionRecord", "TurnEvent", "update_record"),
    "statements": ("Statement", "find_statements"),
    "store": ("IsolationError", "MemoryHit", "MemoryStore", "MemoryStoreError", "StoreCorrupted", "StoreUnavailable",
              "UserMemories"),
    "tokens": ("encoding", "fit_to_budget", "prepare_offline_tiktoken", "token_count"),
}
_WHERE = {name: module for module, names in _SUBMODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'crs.memory' has no attribute {name!r}")
    value = getattr(import_module(f"crs.memory.{module}"), name)
    globals()[name] = value  # later reads skip this function
    return value


__all__ = [
    "EMBEDDING_NAME",
    "Candidate",
    "ChromaMemoryStore",
    "Clock",
    "InMemoryStore",
    "IsolationError",
    "ItemNeighbours",
    "LLMMemory",
    "Layout",
    "MemoryEntry",
    "MemoryHit",
    "MemoryKind",
    "MemorySettings",
    "MemoryStore",
    "MemoryStoreError",
    "OfflineEmbeddingFunction",
    "OffsetClock",
    "Profile",
    "ProfileSettings",
    "ReflectionError",
    "ReflectionOutput",
    "ReflectionResult",
    "ReflectiveMemory",
    "Reranker",
    "RerankerBank",
    "RerankerSettings",
    "Retrieval",
    "SessionRecord",
    "Statement",
    "StoreCorrupted",
    "StoreUnavailable",
    "TurnEvent",
    "UserMemories",
    "apply_candidates",
    "base_rates",
    "build_profile",
    "encoding",
    "find_statements",
    "fit_to_budget",
    "gumbel_top_m",
    "llm_candidates",
    "memory_id",
    "offline_candidates",
    "prepare_offline_tiktoken",
    "token_count",
    "update_record",
]
