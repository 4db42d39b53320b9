"""A Chroma embedding function over the offline :mod:`kb.embeddings` model.

Registered with Chroma under :data:`EMBEDDING_NAME`, so a collection persisted with it
reopens in a fresh process (Chroma rebuilds the function from the stored config) as long as
this module has been imported, which importing :mod:`memory` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from crs.kb.embeddings import Embedder, default_embedder

__all__ = ["EMBEDDING_NAME", "OfflineEmbeddingFunction"]

EMBEDDING_NAME = "crs-offline-wordllama"


@register_embedding_function
class OfflineEmbeddingFunction(EmbeddingFunction[Documents]):
    """Wraps any :class:`kb.embeddings.Embedder` (default: WordLlama 256-d, no downloads)."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder  # loaded lazily: reopening a collection should not cost 0.5 s

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        vectors = self.embedder.embed(list(input))
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    @staticmethod
    def name() -> str:
        return EMBEDDING_NAME

    def get_config(self) -> dict[str, Any]:
        # Only the default model can be rebuilt from config; a custom embedder is passed in
        # again by the caller (Chroma then checks the names match).
        return {"dim": self.embedder.dim if self._embedder is not None else 256}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> OfflineEmbeddingFunction:
        return OfflineEmbeddingFunction()

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]
