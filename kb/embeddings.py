"""Offline sentence embeddings, from a model that ships inside a Python package.

The default is WordLlama (MIT, static 256-d token embeddings, tens of thousands of sentences
per second on one core). It never touches the network: the weights and tokenizer are read
from the installed package folder.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Embedder", "WordLlamaEmbedder", "default_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors (so a dot product is a cosine similarity)."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


class WordLlamaEmbedder:
    """WordLlama loaded from its own package folder, with downloads disabled."""

    def __init__(self, dim: int = 256) -> None:
        from pathlib import Path

        import wordllama

        # wordllama 0.4.0.post1 looks for its tokenizer under ``tokenizer/`` but ships it in
        # ``tokenizers/``; loading with the package folder as cache dir finds both files.
        package_dir = Path(wordllama.__file__).parent
        self._model = wordllama.WordLlama.load(
            dim=dim, cache_dir=package_dir, disable_download=True
        )
        self._dim = dim
        self._lock = threading.Lock()  # the tokenizer is not documented as thread-safe

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._model.embed(list(texts), norm=True), dtype=np.float32)
        return vectors


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The process-wide default embedder (loaded once, about half a second)."""
    return WordLlamaEmbedder()
