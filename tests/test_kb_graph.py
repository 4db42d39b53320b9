"""The item–attribute graph and its array indices."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crs.kb import CSR, KnowledgeGraph, UnknownIdError, load_scpr
from tests.conftest import require_data


def test_indices_agree_with_the_catalog(toy_graph: KnowledgeGraph) -> None:
    g = toy_graph
    jazz = g.attribute("genre:jazz")
    having = {g.item_ids[i] for i in g.attr_items.row(jazz)}
    assert having == {"kind-of-blue", "a-love-supreme", "blue-train"}
    purple = g.item("purple-rain")
    assert {g.attr_ids[a] for a in g.item_attrs.row(purple)} == {
        "genre:pop", "genre:rock", "decade:1980s", "mood:energetic"}
    assert g.popularity[g.item("thriller")] == 2
    assert set(g.facets) == {"genre", "decade", "mood"}


def test_items_with_intersects_attributes(toy_graph: KnowledgeGraph) -> None:
    g = toy_graph
    mask = g.items_with([g.attribute("genre:jazz"), g.attribute("decade:1950s")])
    assert {g.item_ids[i] for i in np.flatnonzero(mask)} == {"kind-of-blue", "blue-train"}
    assert g.items_with([]).all()


def test_nx_graph_has_items_attributes_and_users(toy_graph: KnowledgeGraph) -> None:
    nxg = toy_graph.nx_graph
    assert nxg.has_edge(("item", "thriller"), ("attribute", "genre:pop"))
    assert nxg.has_edge(("user", "u1"), ("item", "kind-of-blue"))
    assert nxg.nodes[("attribute", "mood:calm")]["kind"] == "attribute"


def test_unknown_ids_raise_clear_errors(toy_graph: KnowledgeGraph) -> None:
    with pytest.raises(UnknownIdError, match="unknown item id 'nope'"):
        toy_graph.item("nope")
    with pytest.raises(UnknownIdError, match="unknown attribute id 'genre:polka'"):
        toy_graph.attribute("genre:polka")


def test_csr_weighted_column_sums_and_transpose() -> None:
    m = CSR.from_rows([[0, 2], [1], [2, 1, 0]], n_cols=3)
    sums = m.weighted_column_sums(np.array([0, 2]), np.array([1.0, 0.5, 2.0]))
    # rows 0 and 2 with weights 1.0 and 0.5 (weights are indexed by position in `rows`)
    assert sums.tolist() == [1.5, 0.5, 1.5]
    t = m.transpose()
    assert [t.row(c).tolist() for c in range(3)] == [[0, 2], [1, 2], [0, 2]]


def test_scpr_loader_uses_real_names_and_benchmark_ids() -> None:
    data = require_data("lastfm")
    ds = load_scpr(data, "lastfm")
    g = ds.graph
    assert (g.n_items, g.n_attributes) == (7432, 33)
    assert g.item_ids[0] == "0" and g.item_names[0] == "The Honorary Title"
    assert g.attr_ids[2] == "tag:rock"
    assert len(ds.splits["test"]) == 11892
    assert g.popularity.sum() == len(ds.splits["train"])


def test_lastfm_star_loads_with_networkx_view() -> None:
    data = require_data("lastfm_star")
    start = time.perf_counter()
    ds = load_scpr(data, "lastfm_star")
    _ = ds.graph.nx_graph
    elapsed = time.perf_counter() - start
    assert (ds.graph.n_items, ds.graph.n_attributes) == (7432, 8438)
    print(f"LastFM* load + graph build: {elapsed:.2f}s")  # the timing floor lives in benchmarks/


def test_scpr_loader_errors(tmp_path) -> None:
    from crs.kb import CatalogError

    with pytest.raises(CatalogError, match="unknown dataset 'movielens'"):
        load_scpr(tmp_path, "movielens")
    with pytest.raises(CatalogError, match="no SCPR dataset 'lastfm'"):
        load_scpr(tmp_path, "lastfm")
