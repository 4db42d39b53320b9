"""The fast paths that make a 1M-item catalog load give the same results as the plain ones.

The plain paths are kept here as the reference: per-row pydantic validation of parsed JSON,
``Catalog.attributes()`` then one attribute lookup per item value, and full ``Interaction``
records. The fast ones (one-step JSON validation, one-pass attribute numbering, streamed
interaction pairs) must agree on every graph array and on every error message.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crs.api import load_knowledge
from crs.evals.simulator import SimulatedUser
from crs.kb import CSR, Catalog, CatalogError, KnowledgeGraph, build_graph, load_catalog, load_interactions
from crs.kb.loaders import _jsonl_rows, _validated_items, iter_interaction_pairs
from crs.kb.models import Interaction, Item
from crs.kb.synth import synth_catalog, write_synth
from crs.reasoning import engine as engine_module
from crs.reasoning.engine import Engine
from crs.settings import Settings


def reference_graph(catalog: Catalog, interactions: list[Interaction]) -> KnowledgeGraph:
    """The graph as it was built before the one-pass indexing (the plain path)."""
    attributes = catalog.attributes()
    attr_index = {a.id: i for i, a in enumerate(attributes)}
    rows = [[attr_index[f"{f}:{v}"] for f, vs in item.attributes.items() for v in vs if f"{f}:{v}" in attr_index]
            for item in catalog.items]
    item_attrs = CSR.from_rows(rows, len(attributes))
    item_index = {item.id: i for i, item in enumerate(catalog.items)}
    popularity = np.zeros(len(catalog.items))
    per_user: dict[str, list[int]] = {}
    for inter in interactions:
        i = item_index.get(inter.item)
        if i is not None:
            popularity[i] += 1
            per_user.setdefault(inter.user, []).append(i)
    return KnowledgeGraph(
        item_ids=tuple(item_index), item_names=tuple(i.name for i in catalog.items), attributes=tuple(attributes),
        item_attrs=item_attrs, attr_items=item_attrs.transpose(), popularity=popularity,
        user_items={u: np.asarray(ix, dtype=np.int64) for u, ix in per_user.items()},
        descriptions=tuple(i.description for i in catalog.items),
    )


def assert_same_graph(a: KnowledgeGraph, b: KnowledgeGraph) -> None:
    assert a.item_ids == b.item_ids and a.item_names == b.item_names and a.descriptions == b.descriptions
    assert a.attributes == b.attributes
    for name in ("item_attrs", "attr_items"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x.indptr, y.indptr) and np.array_equal(x.indices, y.indices) and x.n_cols == y.n_cols
    assert np.array_equal(a.popularity, b.popularity)
    assert a.user_items.keys() == b.user_items.keys()
    assert all(np.array_equal(a.user_items[u], b.user_items[u]) for u in a.user_items)
    assert a.item_index == b.item_index and a.attr_index == b.attr_index


def plain_catalog(path: Path) -> Catalog:
    """The plain JSONL path: json.loads, then pydantic validation of each row."""
    return Catalog(items=_validated_items(_jsonl_rows(path), path, None), source=str(path))


@pytest.mark.parametrize(("seed", "facets"), [(0, 1), (1, 5), (2, 40)])
def test_a_synthetic_catalog_loads_and_builds_as_on_the_plain_paths(tmp_path: Path, seed: int, facets: int) -> None:
    made = synth_catalog(items=400, attributes=60, users=80, interactions=1200, seed=seed, facets=facets)
    items_path, inter_path = write_synth(made, tmp_path)
    fast = load_catalog(items_path)
    plain = plain_catalog(items_path)
    assert fast.items == plain.items
    records = load_interactions(inter_path)
    assert list(iter_interaction_pairs(inter_path)) == [(r.user, r.item) for r in records]
    expected = reference_graph(plain, records)
    assert_same_graph(build_graph(fast, records), expected)
    assert_same_graph(build_graph(fast, iter_interaction_pairs(inter_path)), expected)
    graph, _ = load_knowledge(Settings(catalog=items_path, interactions=inter_path, memory=False))
    assert_same_graph(graph, expected)


def test_attribute_order_vocabulary_synonyms_and_messy_rows_match_the_plain_path(tmp_path: Path) -> None:
    rows = [
        {"id": " a ", "name": "A", "attributes": {"genre": ["jazz", "jazz", "bop"], "mood": ["calm"]}},
        {"id": "b", "name": "B", "attributes": {"mood": ["calm", "dark"], "genre": ["rock"]}, "description": "x"},
        {"id": "c", "name": "Ç \u00e9", "attributes": {"genre": ["bop"], "empty": []}},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    (tmp_path / "c.vocab.json").write_text(json.dumps(
        {"facets": {"genre": {"synonyms": {"bop": ["bebop"]}}, "mood": {}, "empty": {}}}), encoding="utf-8")
    fast = load_catalog(path)
    assert [i.id for i in fast.items] == ["a", "b", "c"] and fast.items[0].attributes["genre"] == ["jazz", "bop"]
    assert fast.items == [Item.model_validate(r) for r in rows]
    assert_same_graph(build_graph(fast), reference_graph(fast, []))
    ordered = fast.model_copy(update={"attribute_order": ["mood:dark", "genre:bop", "missing:x", "genre:jazz"]})
    graph = build_graph(ordered)
    assert graph.attr_ids == ("mood:dark", "genre:bop", "genre:jazz")
    assert graph.attributes[1].synonyms == ("bebop",)
    assert_same_graph(graph, reference_graph(ordered, []))


BAD_LINES = [
    '{"id": "a", "name": "A", "attributes": {"g": ["x"]}}\n{"id": "a", "name": "B", "attributes": {"g": ["y"]}}',
    '{"id": "a", "name": "A", "attributes": {"g": []}}',
    '{"id": "a", "name": "A", "attributes": {"g": ["x"]}, "colour": "red"}',
    '{"id": "a", "name": "A"}',
    '[1, 2]',
    '{"id": "a", "name": "A", "attributes": {"g": ["x"]}',
    '\ufeff{"id": "a", "name": "A", "attributes": {"g": ["x"]}}',
    '{"id": "\\ud800", "name": "A", "attributes": {"g": ["x"]}}',
    '{"id": 5, "name": "A", "attributes": {"g": ["x"]}}',
    '{"id": "a", "name": "A", "attributes": {"g": ["x"]}} {"id": "b"}',
]


@pytest.mark.parametrize("text", BAD_LINES)
def test_bad_catalog_lines_give_the_plain_paths_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        expected: object = plain_catalog(path).items
    except CatalogError as exc:
        expected = str(exc)
    try:
        got: object = load_catalog(path).items
    except CatalogError as exc:
        got = str(exc)
    assert got == expected


@pytest.mark.parametrize("text", [
    "user,item\nu1,i1\n u2,i2\nu3, \n",
    "user,item,timestamp\nu1,i1,\nu2,i2,12.5\nu3,i3,soon\n",
    "user,item,extra\nu1,i1,x\n",
    "user,item\nu1\n",
    "user,item\nu1,i1,i2\n",
    "item,user\ni1,u1\n",
    "user,item\n\nu1,i1\n,\n",
    '"user","item"\n"u 1","i,1"\n"u\u2003",i\n',
    "user,item\nu1,\"i1\n",
])
def test_interaction_pairs_validate_as_the_records_do(tmp_path: Path, text: str) -> None:
    path = tmp_path / "inter.csv"
    path.write_text(text, encoding="utf-8")
    try:
        expected: object = [(r.user, r.item) for r in load_interactions(path)]
    except CatalogError as exc:
        expected = str(exc)
    try:
        got: object = list(iter_interaction_pairs(path))
    except CatalogError as exc:
        got = str(exc)
    assert got == expected


def _episodes(engine: Engine, graph: KnowledgeGraph, n: int) -> list[tuple[object, ...]]:
    """What the engine shows in ``n`` simulated conversations: every action, in order."""
    rng = np.random.default_rng(5)
    shown: list[tuple[object, ...]] = []
    users = sorted(graph.user_items)
    for _ in range(n):
        user = users[int(rng.integers(len(users)))]
        target = graph.item_ids[int(rng.choice(graph.user_items[user]))]
        sim = SimulatedUser(graph, user, target, choice=float(rng.random()))
        for state in (engine.start(user), engine.apply(engine.start(user), sim.opening())):
            for _ in range(12):
                action = engine.decide(state)
                shown.append((action.kind, action.attribute, action.options,
                               tuple(r.item_id for r in action.recommendations)))
                answer = sim.answer(action)
                if answer.accepted or action.kind not in ("ask", "recommend"):
                    break
                state = engine.apply(engine.record(state, action), answer.feedback)
    return shown


def test_shares_from_the_sparse_product_choose_what_the_entries_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    made = synth_catalog(items=3000, attributes=300, users=300, interactions=6000, seed=2, facets=6)
    graph = build_graph(Catalog(items=[Item.model_validate(r) for r in made.items]), made.interactions)
    monkeypatch.setattr(engine_module, "_MATVEC_MIN_ITEMS", 10**9)
    entries = _episodes(Engine(graph), graph, 40)
    monkeypatch.setattr(engine_module, "_MATVEC_MIN_ITEMS", 1)  # every set takes the large-set path
    product = _episodes(Engine(graph), graph, 40)
    assert len(entries) > 200 and product == entries
    # The product's shares are the entries' sums, up to rounding.
    weights = np.random.default_rng(0).random(graph.n_items)
    every = np.arange(graph.n_items)
    expected = graph.item_attrs.weighted_column_sums(every, weights)
    assert np.allclose(engine_module._matvec_share(graph, every, weights), expected, rtol=1e-12, atol=1e-12)
    half = every[::2]
    got = engine_module._matvec_share(graph, half, weights[half])
    assert np.allclose(got, np.bincount(graph.item_attrs.gather(half)[1], weights=np.repeat(
        weights[half], np.diff(graph.item_attrs.indptr)[half]), minlength=graph.n_attributes), rtol=1e-12, atol=1e-12)
