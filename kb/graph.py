"""The item–attribute graph: a networkx view for walking paths, plus array indices for speed.

The policy never loops over Python objects item by item: it reads the CSR arrays
(`item → attributes`, `attribute → items`) and the per-item arrays held here.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from crs.kb.errors import UnknownIdError
from crs.kb.loaders import paused_gc
from crs.kb.models import Attribute, Catalog, Interaction, attribute_id

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

    @cached_property
    def attr_item_matrix(self) -> Any:
        """``attr_items`` as a scipy sparse 0/1 matrix (attributes × items), for shares over a
        large candidate set as one matrix–vector product (see the engine's ``_Question``)."""
        from scipy.sparse import csr_array  # only large catalogs need it

        a = self.attr_items
        index = np.int32 if self.n_items < 2**31 and len(a.indices) < 2**31 else np.int64  # less to read
        return csr_array((np.ones(len(a.indices)), a.indices.astype(index), a.indptr.astype(index)),
                         shape=(self.n_attributes, self.n_items))

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

    Interactions are :class:`Interaction` records or plain ``(user, item)`` pairs (e.g. from
    :func:`kb.loaders.iter_interaction_pairs`). Those naming items outside the catalog are
    ignored; popularity counts the rest.

    Attributes are numbered in one pass over the items, in order of first appearance (or
    ``catalog.attribute_order``), as :meth:`Catalog.attributes` lists them.
    """
    with paused_gc():
        attributes, item_attrs = _index_attributes(catalog)
        item_ids = tuple(item.id for item in catalog.items)
        item_index = {item: i for i, item in enumerate(item_ids)}
        popularity, user_items = _index_interactions(interactions, item_index)
        graph = KnowledgeGraph(
            item_ids=item_ids,
            item_names=tuple(item.name for item in catalog.items),
            attributes=tuple(attributes),
            item_attrs=item_attrs,
            attr_items=item_attrs.transpose(),
            popularity=popularity,
            user_items=user_items,
            descriptions=tuple(item.description for item in catalog.items),
        )
        graph.__dict__["item_index"] = item_index  # the cached_property, already computed
        return graph


def _index_interactions(
    interactions: Iterable[Interaction | tuple[str, str]], item_index: dict[str, int]
) -> tuple[NDArray[np.float64], dict[str, IntArray]]:
    """Popularity per item, and each user's items in the order given (known items only).

    One pass collects a code per user and the item index of each pair; counting and grouping
    are then numpy work (a stable sort keeps each user's order).
    """
    codes: dict[str, int] = {}
    owner = array("q")
    picked = array("q")
    for inter in interactions:
        user, item = (inter.user, inter.item) if isinstance(inter, Interaction) else inter
        i = item_index.get(item)
        if i is not None:
            code = codes.get(user)
            if code is None:
                code = codes[user] = len(codes)
            owner.append(code)
            picked.append(i)
    users = np.frombuffer(owner, dtype=np.int64) if len(owner) else np.zeros(0, dtype=np.int64)
    items = np.frombuffer(picked, dtype=np.int64) if len(picked) else np.zeros(0, dtype=np.int64)
    popularity = np.bincount(items, minlength=len(item_index)).astype(np.float64)
    order = np.argsort(users, kind="stable")
    bounds = np.cumsum(np.bincount(users, minlength=len(codes)))
    grouped = np.split(items[order], bounds[:-1]) if len(codes) else []
    return popularity, dict(zip(codes, grouped, strict=True))


def _index_attributes(catalog: Catalog) -> tuple[list[Attribute], CSR]:
    """The attributes, and the item → attribute CSR, in one pass over the items.

    Attribute ids are looked up per facet (no ``facet:value`` string is made per item), and
    the rows are sorted with one numpy sort instead of one Python sort per item.
    """
    numbers: dict[str, dict[str, int]] = {}  # facet → value → number in order of first appearance
    found: list[tuple[str, str]] = []
    flat = array("q")
    lengths = array("q")
    for item in catalog.items:
        n = 0
        for facet, values in item.attributes.items():
            known = numbers.get(facet)
            if known is None:
                known = numbers[facet] = {}
            try:
                flat.extend([known[v] for v in values])
            except KeyError:  # a value seen for the first time
                for v in values:
                    number = known.get(v)
                    if number is None:
                        number = known[v] = len(found)
                        found.append((facet, v))
                    flat.append(number)
            n += len(values)
        lengths.append(n)
    cols = np.frombuffer(flat, dtype=np.int64) if len(flat) else np.zeros(0, dtype=np.int64)
    counts = np.frombuffer(lengths, dtype=np.int64) if len(lengths) else np.zeros(0, dtype=np.int64)
    ids = [attribute_id(f, v) for f, v in found]
    if catalog.attribute_order is not None:  # renumber in the given order; drop what it leaves out
        position = {a: i for i, a in enumerate(ids)}
        order = [position[a] for a in dict.fromkeys(catalog.attribute_order) if a in position]
        renumber = np.full(len(found), -1, dtype=np.int64)
        renumber[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        found = [found[i] for i in order]
        cols = renumber[cols]
        kept = cols >= 0
        counts = np.bincount(np.repeat(np.arange(len(counts)), counts)[kept], minlength=len(counts))
        cols = cols[kept]
    n_cols = len(found)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    key = owner * max(n_cols, 1) + cols
    if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
        key.sort()  # sort each row's columns (rows stay in order: the owner leads the key)
        cols = key - owner * max(n_cols, 1)
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    attributes = [
        Attribute(facet=f, value=v, synonyms=catalog.synonyms(f, v)) for f, v in found
    ]
    return attributes, CSR(indptr, np.ascontiguousarray(cols, dtype=np.int64), n_cols)
