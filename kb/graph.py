"""The item–attribute graph: a networkx view for walking paths, plus array indices for speed.

The policy never loops over Python objects item by item: it reads the CSR arrays
(`item → attributes`, `attribute → items`) and the per-item arrays held here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from crs.kb.errors import UnknownIdError
from crs.kb.models import Attribute, Catalog, Interaction

__all__ = ["CSR", "KnowledgeGraph", "build_graph"]

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class CSR:
    """A 0/1 sparse matrix in compressed-row form (rows → sorted column indices)."""

    indptr: IntArray
    indices: IntArray
    n_cols: int

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]], n_cols: int) -> CSR:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = np.fromiter((c for r in rows for c in sorted(r)), dtype=np.int64, count=int(indptr[-1]))
        return cls(indptr, flat, n_cols)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row(self, r: int) -> IntArray:
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def transpose(self) -> CSR:
        rows = np.repeat(np.arange(self.n_rows, dtype=np.int64), np.diff(self.indptr))
        order = np.argsort(self.indices, kind="stable")
        indptr = np.zeros(self.n_cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.indices, minlength=self.n_cols), out=indptr[1:])
        return CSR(indptr, rows[order], self.n_rows)

    def gather(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """(position of the row in ``rows``, column) for every non-zero of the given rows."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        total = int(lengths.sum())
        owner = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return owner, self.indices[np.repeat(starts, lengths) + offsets]

    def weighted_column_sums(self, rows: IntArray, weights: NDArray[np.float64]) -> NDArray[np.float64]:
        """Σ over the given rows of weight × row, as a dense vector of column totals."""
        owner, cols = self.gather(rows)
        return np.bincount(cols, weights=weights[owner], minlength=self.n_cols).astype(np.float64)


@dataclass(frozen=True, eq=False)
class KnowledgeGraph:
    """Items and attributes (and users, when interactions exist) with fast indices.

    Node keys in :attr:`nx_graph` are ``("item", id)``, ``("attribute", id)`` and
    ``("user", id)``.
    """

    item_ids: tuple[str, ...]
    item_names: tuple[str, ...]
    attributes: tuple[Attribute, ...]
    item_attrs: CSR  # item index → attribute indices
    attr_items: CSR  # attribute index → item indices
    popularity: NDArray[np.float64]  # interaction counts per item
    user_items: dict[str, IntArray] = field(default_factory=dict)
    descriptions: tuple[str, ...] = ()

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    @cached_property
    def attr_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attributes)

    @cached_property
    def attr_index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.attr_ids)}

    @cached_property
    def facets(self) -> dict[str, IntArray]:
        """Facet name → indices of its attributes."""
        grouped: dict[str, list[int]] = {}
        for i, attr in enumerate(self.attributes):
            grouped.setdefault(attr.facet, []).append(i)
        return {f: np.asarray(ix, dtype=np.int64) for f, ix in grouped.items()}

    @cached_property
    def attr_facet(self) -> IntArray:
        """Attribute index → facet number (the position of its facet in :attr:`facets`)."""
        out = np.empty(self.n_attributes, dtype=np.int64)
        for number, ix in enumerate(self.facets.values()):
            out[ix] = number
        return out

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_attributes(self) -> int:
        return len(self.attributes)

    def item(self, item_id: str) -> int:
        try:
            return self.item_index[item_id]
        except KeyError:
            raise UnknownIdError("item", item_id) from None

    def attribute(self, attr_id: str) -> int:
        try:
            return self.attr_index[attr_id]
        except KeyError:
            raise UnknownIdError("attribute", attr_id) from None

    def items_with(self, attrs: Iterable[int]) -> NDArray[np.bool_]:
        """Mask of the items that have every given attribute (all items for none)."""
        mask = np.ones(self.n_items, dtype=bool)
        for a in attrs:
            having = np.zeros(self.n_items, dtype=bool)
            having[self.attr_items.row(a)] = True
            mask &= having
        return mask

    def path_to(self, item: int, accepted: Sequence[int]) -> list[str]:
        """The walk that explains an item: accepted attributes it has, then the item itself.

        >>> from kb.models import Catalog, Item
        >>> g = build_graph(Catalog(items=[Item(id="a", name="A", attributes={"genre": ["jazz"]})]))
        >>> g.path_to(0, [0])
        ['genre:jazz', 'a']
        """
        own = set(self.item_attrs.row(item).tolist())
        return [self.attr_ids[a] for a in accepted if a in own] + [self.item_ids[item]]

    @cached_property
    def nx_graph(self) -> nx.Graph:
        """A networkx graph of items, attributes and users, for path queries and analysis."""
        graph = nx.Graph()
        graph.add_nodes_from((("item", i) for i in self.item_ids), kind="item")
        graph.add_nodes_from((("attribute", a) for a in self.attr_ids), kind="attribute")
        owners = np.repeat(np.arange(self.n_items), np.diff(self.item_attrs.indptr))
        items, attrs = self.item_ids, self.attr_ids
        graph.add_edges_from(
            (("item", items[i]), ("attribute", attrs[a]))
            for i, a in zip(owners.tolist(), self.item_attrs.indices.tolist(), strict=True)
        )
        for user, user_items in self.user_items.items():
            graph.add_edges_from((("user", user), ("item", items[i])) for i in user_items.tolist())
        return graph


def build_graph(
    catalog: Catalog, interactions: Iterable[Interaction | tuple[str, str]] = ()
) -> KnowledgeGraph:
    """Index a catalog (and optional interactions) into a :class:`KnowledgeGraph`.

    Interactions are :class:`Interaction` records or plain ``(user, item)`` pairs. Those
    naming items outside the catalog are ignored; popularity counts the rest.
    """
    attributes = catalog.attributes()
    attr_index = {a.id: i for i, a in enumerate(attributes)}
    rows = [
        [attr_index[f"{facet}:{value}"] for facet, values in item.attributes.items() for value in values
         if f"{facet}:{value}" in attr_index]
        for item in catalog.items
    ]
    item_attrs = CSR.from_rows(rows, len(attributes))
    item_index = {item.id: i for i, item in enumerate(catalog.items)}
    popularity = np.zeros(len(catalog.items), dtype=np.float64)
    per_user: dict[str, list[int]] = {}
    for inter in interactions:
        user, item = (inter.user, inter.item) if isinstance(inter, Interaction) else inter
        i = item_index.get(item)
        if i is not None:
            popularity[i] += 1
            per_user.setdefault(user, []).append(i)
    return KnowledgeGraph(
        item_ids=tuple(item.id for item in catalog.items),
        item_names=tuple(item.name for item in catalog.items),
        attributes=tuple(attributes),
        item_attrs=item_attrs,
        attr_items=item_attrs.transpose(),
        popularity=popularity,
        user_items={u: np.asarray(ix, dtype=np.int64) for u, ix in per_user.items()},
        descriptions=tuple(item.description for item in catalog.items),
    )
