"""Catalog and interaction loading, and the errors a user sees for broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crs.kb import CatalogError, load_catalog, load_interactions, load_vocabulary


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8")
    return path


GOOD = {"id": "a", "name": "A", "attributes": {"genre": ["jazz", "jazz"], "decade": ["1950s"]}}


def test_loads_jsonl_with_vocabulary_sidecar(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "shop.jsonl", [GOOD, {**GOOD, "id": "b", "description": "d"}])
    (tmp_path / "shop.vocab.json").write_text(
        json.dumps({"facets": {"genre": {"synonyms": {"jazz": ["bebop"]}}, "decade": {}}}), "utf-8"
    )
    catalog = load_catalog(path)
    assert [i.id for i in catalog.items] == ["a", "b"]
    assert catalog.items[0].attributes["genre"] == ["jazz"]  # repeats collapse
    attrs = {a.id: a for a in catalog.attributes()}
    assert set(attrs) == {"genre:jazz", "decade:1950s"}
    assert attrs["genre:jazz"].synonyms == ("bebop",)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([GOOD, '{"id": "b", "name": '], r"shop\.jsonl, line 2: bad JSON"),
        ([GOOD, GOOD], r"line 2, item 'a': duplicate id \(first seen on line 1\)"),
        ([{"id": "x", "name": "X", "attributes": {}}], r"line 1, item 'x': attributes: .*no attributes"),
        ([{"id": "x", "name": "X", "attributes": {"genre": []}}], r"item 'x': .*no attributes"),
        ([{"id": "x", "attributes": {"g": ["v"]}}], r"line 1, item 'x': missing field 'name'"),
        ([{"id": "x", "name": "X", "attributes": {"g": ["v"]}, "colour": 1}], r"unknown field 'colour'"),
        (["[1, 2]"], r"line 1: expected a JSON object, got list"),
        ([], r"the catalog has no items"),
    ],
)
def test_malformed_catalogs_name_file_line_and_problem(tmp_path: Path, rows: list[object], expected: str) -> None:
    path = write_jsonl(tmp_path / "shop.jsonl", rows)
    with pytest.raises(CatalogError, match=expected):
        load_catalog(path)


def test_unknown_facet_is_reported_with_known_ones(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "shop.jsonl", [{**GOOD, "attributes": {"genere": ["jazz"]}}])
    (tmp_path / "shop.vocab.json").write_text(json.dumps({"facets": {"genre": {}, "decade": {}}}), "utf-8")
    with pytest.raises(CatalogError, match=r"line 1, item 'a': unknown facet 'genere' \(known facets: decade, genre\)"):
        load_catalog(path)


def test_vocabulary_typo_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "v.vocab.json"
    path.write_text(json.dumps({"facets": {"genre": {"synonym": {}}}}), "utf-8")
    with pytest.raises(CatalogError, match=r"v\.vocab\.json: unknown field 'facets\.genre\.synonym'"):
        load_vocabulary(path)


def test_missing_file_and_bad_format(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"nope\.jsonl: no such file"):
        load_catalog(tmp_path / "nope.jsonl")
    (tmp_path / "c.xml").write_text("<x/>")
    with pytest.raises(CatalogError, match=r"unsupported catalog format '\.xml'"):
        load_catalog(tmp_path / "c.xml")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(tmp_path / "bin.jsonl")


def test_csv_catalog_with_multi_values(tmp_path: Path) -> None:
    path = tmp_path / "films.csv"
    path.write_text("id,name,genre,decade\nm1,Alien,sci-fi|horror,1970s\nm2,Heat,crime,\n", "utf-8")
    catalog = load_catalog(path)
    assert catalog.items[0].attributes == {"genre": ["sci-fi", "horror"], "decade": ["1970s"]}
    assert catalog.items[1].attributes == {"genre": ["crime"]}


def test_csv_catalog_errors(tmp_path: Path) -> None:
    path = tmp_path / "films.csv"
    path.write_text("id,genre\nm1,crime\n", "utf-8")
    with pytest.raises(CatalogError, match=r"films\.csv, line 1: missing column\(s\): name"):
        load_catalog(path)
    path.write_text("id,name,genre\nm1,Heat,\n", "utf-8")
    with pytest.raises(CatalogError, match=r"line 2, item 'm1': .*no attributes"):
        load_catalog(path)


def test_interactions_from_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "i.csv"
    csv_path.write_text("user,item,timestamp\nu1,a,1700000000\nu2,b,\n", "utf-8")
    rows = load_interactions(csv_path)
    assert [(r.user, r.item, r.timestamp) for r in rows] == [("u1", "a", 1.7e9), ("u2", "b", None)]
    jl = write_jsonl(tmp_path / "i.jsonl", [{"user": "u1", "item": "a"}, {"user": "u1"}])
    with pytest.raises(CatalogError, match=r"i\.jsonl, line 2: missing field 'item'"):
        load_interactions(jl)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\nu1,a,extra\n", "utf-8")
    with pytest.raises(CatalogError, match="line 2: more cells than header columns"):
        load_interactions(bad)
