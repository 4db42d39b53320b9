"""Read catalogs (JSON Lines or CSV) and interactions (CSV or JSON Lines) with clear errors.

Every problem becomes a :class:`~kb.errors.CatalogError` naming the file, the line or item
and what is wrong; nothing from deep inside a parser reaches the caller.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crs.kb.errors import CatalogError
from crs.kb.models import Catalog, Interaction, Item, Vocabulary

M = TypeVar("M", bound=BaseModel)

__all__ = ["BUNDLED_CATALOG", "load_catalog", "load_interactions", "load_vocabulary", "vocabulary_path_for"]

#: The demo catalog that ships with the package (see kb/data/README.md for its origin).
BUNDLED_CATALOG = Path(__file__).resolve().parent / "data" / "albums.jsonl"

#: In a CSV catalog, a cell holding several values separates them with this character.
CSV_MULTI_SEPARATOR = "|"
_CSV_FIXED_COLUMNS = {"id", "name", "description"}


def describe_validation_error(error: ValidationError) -> str:
    """One readable line for the first problem pydantic found."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    message = first["msg"]
    if first["type"] == "missing":
        return f"missing field {field!r}"
    if first["type"] == "extra_forbidden":
        return f"unknown field {field!r}"
    return f"{field}: {message}" if field else message


def vocabulary_path_for(catalog_path: Path) -> Path:
    """Where a catalog's optional vocabulary lives: ``albums.jsonl`` → ``albums.vocab.json``."""
    return catalog_path.with_name(catalog_path.name.split(".")[0] + ".vocab.json")


def load_vocabulary(path: str | Path) -> Vocabulary:
    path = Path(path)
    data = _read_json_file(path)
    try:
        return Vocabulary.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(describe_validation_error(exc), path=path) from None


def load_catalog(path: str | Path, *, vocabulary: str | Path | None = None) -> Catalog:
    """Load a catalog from ``.jsonl`` or ``.csv``; pick up ``<stem>.vocab.json`` if present.

    >>> load_catalog("missing.jsonl")
    Traceback (most recent call last):
    ...
    crs.kb.errors.CatalogError: missing.jsonl: no such file
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError("no such file" if not path.exists() else "not a file", path=path)
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        rows = _jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_catalog_rows(path)
    else:
        raise CatalogError(f"unsupported catalog format {suffix!r}; use .jsonl or .csv", path=path)
    vocab_path = Path(vocabulary) if vocabulary is not None else vocabulary_path_for(path)
    vocab = load_vocabulary(vocab_path) if vocabulary is not None or vocab_path.is_file() else None
    items = _validated_items(rows, path, vocab)
    if not items:
        raise CatalogError("the catalog has no items", path=path)
    return Catalog(items=items, vocabulary=vocab, source=str(path))


def load_interactions(path: str | Path) -> list[Interaction]:
    """Load ``user,item[,timestamp]`` rows from CSV (with a header) or JSON Lines."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError("no such file", path=path)
    if path.suffix.lower() == ".csv":
        rows: Iterator[tuple[int, dict[str, Any]]] = _csv_dict_rows(path, required={"user", "item"})
    else:
        rows = _jsonl_rows(path)
    out = []
    for line, row in rows:
        if isinstance(row, dict) and row.get("timestamp") in ("", None):
            row = {k: v for k, v in row.items() if k != "timestamp"}
        out.append(_validate(Interaction, row, path, line))
    return out


def _validated_items(
    rows: Iterator[tuple[int, Any]], path: Path, vocab: Vocabulary | None
) -> list[Item]:
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        item = _validate(Item, row, path, line)
        if item.id in seen:
            raise CatalogError(
                f"duplicate id (first seen on line {seen[item.id]})", path=path, line=line,
                item=item.id,
            )
        seen[item.id] = line
        if vocab is not None:
            for facet in item.attributes:
                if facet not in vocab.facets:
                    known = ", ".join(sorted(vocab.facets))
                    raise CatalogError(
                        f"unknown facet {facet!r} (known facets: {known})", path=path, line=line,
                        item=item.id,
                    )
        items.append(item)
    return items


def _validate(model: type[M], row: Any, path: Path, line: int) -> M:
    if not isinstance(row, dict):
        raise CatalogError(f"expected a JSON object, got {type(row).__name__}", path=path, line=line)
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        ident = row.get("id")
        raise CatalogError(
            describe_validation_error(exc), path=path, line=line,
            item=ident if isinstance(ident, str) else None,
        ) from None


def _read_json_file(path: Path) -> Any:
    if not path.is_file():
        raise CatalogError("no such file", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CatalogError("not UTF-8 text", path=path) from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"bad JSON: {exc.msg}", path=path, line=exc.lineno) from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    yield number, json.loads(text)
                except json.JSONDecodeError as exc:
                    raise CatalogError(f"bad JSON: {exc.msg}", path=path, line=number) from None
    except UnicodeDecodeError:
        raise CatalogError("not UTF-8 text", path=path) from None


def _csv_dict_rows(path: Path, *, required: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = set(reader.fieldnames or [])
            missing = required - header
            if missing:
                raise CatalogError(f"missing column(s): {', '.join(sorted(missing))}", path=path, line=1)
            for row in reader:
                if None in row:
                    raise CatalogError("more cells than header columns", path=path, line=reader.line_num)
                yield reader.line_num, dict(row)
    except UnicodeDecodeError:
        raise CatalogError("not UTF-8 text", path=path) from None
    except csv.Error as exc:
        raise CatalogError(f"bad CSV: {exc}", path=path) from None


def _csv_catalog_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV catalog: columns ``id, name[, description]`` plus one column per facet.

    A facet cell holds values separated by ``|``; an empty cell means no value.
    """
    for line, row in _csv_dict_rows(path, required={"id", "name"}):
        attributes = {
            facet: [v.strip() for v in (cell or "").split(CSV_MULTI_SEPARATOR) if v.strip()]
            for facet, cell in row.items()
            if facet not in _CSV_FIXED_COLUMNS
        }
        yield line, {
            "id": row["id"],
            "name": row["name"],
            "description": row.get("description") or "",
            "attributes": attributes,
        }
