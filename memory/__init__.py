"""Reflective long-term memory: per-user memories, reflection and profiles.

Memories live in Chroma (embedded by default, a server to scale), one collection per user,
reached only through per-user handles. Prospective reflection distils sessions into
topic-level memories (add, merge or supersede); retrospective reflection reranks retrieval
with a small model learned online (RMM); the profile of the valid memories is a soft prior
for the engine. See ``memory.reflective.ReflectiveMemory`` for the conversation's hooks.
"""

from memory.chroma_store import ChromaMemoryStore, Layout
from memory.embedding import EMBEDDING_NAME, OfflineEmbeddingFunction
from memory.entry import MemoryEntry, MemoryKind, memory_id
from memory.inmemory import InMemoryStore
from memory.llm import LLMMemory, ReflectionError, ReflectionOutput, llm_candidates
from memory.profile import Profile, ProfileSettings, base_rates, build_profile
from memory.reflection import Candidate, ReflectionResult, apply_candidates, offline_candidates
from memory.reflective import MemorySettings, ReflectiveMemory, Retrieval
from memory.reranker import Reranker, RerankerBank, RerankerSettings, gumbel_top_m
from memory.session import SessionRecord, TurnEvent, update_record
from memory.statements import Statement, find_statements
from memory.store import (
    IsolationError,
    MemoryHit,
    MemoryStore,
    MemoryStoreError,
    StoreUnavailable,
    UserMemories,
)
from memory.tokens import encoding, fit_to_budget, prepare_offline_tiktoken, token_count

__all__ = [
    "EMBEDDING_NAME",
    "Candidate",
    "ChromaMemoryStore",
    "InMemoryStore",
    "IsolationError",
    "LLMMemory",
    "Layout",
    "MemoryEntry",
    "MemoryHit",
    "MemoryKind",
    "MemorySettings",
    "MemoryStore",
    "MemoryStoreError",
    "OfflineEmbeddingFunction",
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
