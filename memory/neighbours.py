"""Items people choose together: the neighbours of a user's past choices, from the catalog's
interactions (item-based collaborative filtering).

An attribute prior from one or two chosen items says little on a catalog with a coarse
vocabulary (LastFM has 33 tags); the items other people chose alongside them say more. The
similarity of two items is the cosine of their user sets, ``co(i, j) / sqrt(n_i · n_j)``; the
neighbour score of an item is its summed similarity to the chosen items, scaled to [0, 1] by
the best one. The chosen items themselves score 0: they are not offered again unasked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crs.kb.graph import KnowledgeGraph

__all__ = ["ITEM_PRIOR", "ItemNeighbours"]

#: The engine's prior key for one item (crs.reasoning.engine.ITEM_PRIOR; the layers stay apart).
ITEM_PRIOR = "item:"


class ItemNeighbours:
    """Cosine item–item similarity over the users of the graph's interactions (built once)."""

    def __init__(self, graph: KnowledgeGraph) -> None:
        from scipy import sparse  # here: importing the profile code stays cheap

        self._ids = graph.item_ids
        self._index = graph.item_index
        users = [np.unique(items) for items in graph.user_items.values()]
        rows = np.repeat(np.arange(len(users)), [len(u) for u in users])
        cols = np.concatenate(users) if users else np.zeros(0, dtype=np.int64)
        x = sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(users), graph.n_items))
        self._x = x.tocsc()
        self._xt = x.T.tocsr()
        self._norm = np.sqrt(np.asarray(x.sum(axis=0)).ravel())

    def scores(self, item_ids: Sequence[str], top: int = 100) -> dict[str, float]:
        """The ``top`` neighbours of the chosen items (ids the catalog lacks are ignored), each
        with a score in (0, 1]; empty when nothing is known about them."""
        chosen = np.unique([self._index[i] for i in item_ids if i in self._index])
        if len(chosen) == 0 or top <= 0:
            return {}
        co = np.asarray((self._xt @ self._x[:, chosen]).todense(), dtype=np.float64)  # items × chosen
        denom = np.outer(self._norm, self._norm[chosen])
        sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0).sum(axis=1)
        sim[chosen] = 0.0
        best = np.argsort(-sim, kind="stable")[:top]
        best = best[sim[best] > 0]
        if len(best) == 0:
            return {}
        peak = float(sim[best[0]])
        return {self._ids[i]: float(sim[i]) / peak for i in best.tolist()}
