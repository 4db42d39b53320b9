"""Item scoring behind a Protocol: how much the current user would like each candidate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from crs.kb.graph import KnowledgeGraph

__all__ = ["FloatArray", "IntArray", "PopularityScorer", "Scorer", "ScoringContext"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ScoringContext:
    """What a scorer may look at: the user and the attribute answers so far (graph indices)."""

    user: str | None
    accepted: IntArray
    rejected: IntArray


@runtime_checkable
class Scorer(Protocol):
    """Scores are logits: higher is better, and differences are comparable across turns."""

    name: str

    def score(self, context: ScoringContext, items: IntArray) -> FloatArray: ...


class PopularityScorer:
    """Log-popularity from interactions; without interactions every item scores the same.

    >>> from kb import Catalog, Item, build_graph
    >>> g = build_graph(Catalog(items=[Item(id="a", name="A", attributes={"x": ["1"]}),
    ...                              Item(id="b", name="B", attributes={"x": ["1"]})]),
    ...                 [("u", "b"), ("v", "b")])
    >>> PopularityScorer(g).score(ScoringContext(None, np.array([]), np.array([])), np.arange(2))
    array([0.        , 1.09861229])
    """

    name = "popularity"

    def __init__(self, graph: KnowledgeGraph) -> None:
        self._logits = np.log1p(graph.popularity)

    def score(self, context: ScoringContext, items: IntArray) -> FloatArray:
        scores: FloatArray = self._logits[items]
        return scores
