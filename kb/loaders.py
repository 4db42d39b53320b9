"""Read catalogs (JSON Lines or CSV) and interactions (CSV or JSON Lines) with clear errors.

Every problem becomes a :class:`~kb.errors.CatalogError` naming the file, the line or item
and what is wrong; nothing from deep inside a parser reaches the caller.
"""

from __future__ import annotations

import csv
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crs.kb.errors import CatalogError
from crs.kb.models import Catalog, Interaction, Item, Vocabulary

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "BUNDLED_CATALOG",
    "iter_interaction_pairs",
    "load_catalog",
    "load_interactions",
    "load_vocabulary",
    "vocabulary_path_for",
]

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
    if suffix not in {".jsonl", ".ndjson", ".json", ".csv"}:
        raise CatalogError(f"unsupported catalog format {suffix!r}; use .jsonl or .csv", path=path)
    vocab_path = Path(vocabulary) if vocabulary is not None else vocabulary_path_for(path)
    vocab = load_vocabulary(vocab_path) if vocabulary is not None or vocab_path.is_file() else None
    with paused_gc():
        if suffix == ".csv":
            items = _validated_items(_csv_catalog_rows(path), path, vocab)
        else:
            items = _validated_items(_jsonl_rows(path, items=True), path, vocab)
        if not items:
            raise CatalogError("the catalog has no items", path=path)
        return Catalog(items=items, vocabulary=vocab, source=str(path))


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a large file loads.

    Loading makes millions of small objects and no cycles, and each full collection walks
    every object made so far: at 1M items the collector took more time than the parsing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_interactions(path: str | Path) -> list[Interaction]:
    """Load ``user,item[,timestamp]`` rows from CSV (with a header) or JSON Lines."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError("no such file", path=path)
    if path.suffix.lower() == ".csv":
        rows: Iterator[tuple[int, dict[str, Any]]] = _csv_dict_rows(path, required={"user", "item"})
    else:
        rows = _jsonl_rows(path)
    with paused_gc():
        return [_interaction(row, path, line) for line, row in rows]


def iter_interaction_pairs(path: str | Path) -> Iterator[tuple[str, str]]:
    """The ``(user, item)`` pairs of an interaction file, validated as :func:`load_interactions`
    validates them (same errors), one at a time: building a graph needs no more, and millions
    of :class:`Interaction` records would cost gigabytes.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError("no such file", path=path)
    if path.suffix.lower() != ".csv":
        for line, row in _jsonl_rows(path):
            valid = _interaction(row, path, line)
            yield valid.user, valid.item
        return
    plain_columns = ({"user", "item"}, {"user", "item", "timestamp"})
    if _csv_header(path) == ["user", "item"]:  # the usual file: rows read as plain lists
        yield from _plain_csv_pairs(path)
        return
    for line, row in _csv_dict_rows(path, required={"user", "item"}):
        user, item = row["user"], row["item"]
        # Fast path for the common row: two ids with nothing to strip and no timestamp are
        # exactly what the model accepts unchanged; any other row goes through the model.
        if user and item and not row.get("timestamp") and user == user.strip() and item == item.strip() \
                and row.keys() in plain_columns:
            yield user, item
        else:
            valid = _interaction(row, path, line)
            yield valid.user, valid.item


def _csv_header(path: Path) -> list[str] | None:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error):
        return None  # the full reader says what is wrong


def _plain_csv_pairs(path: Path) -> Iterator[tuple[str, str]]:
    """The pairs of a ``user,item`` CSV; a row that is not two clean ids goes through
    :func:`_interaction` as a dict, exactly as :func:`_csv_dict_rows` would have made it."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if len(row) == 2:
                    user, item = row
                    if user and item and user == user.strip() and item == item.strip():
                        yield user, item
                        continue
                elif not row:
                    continue  # DictReader skips empty rows too
                elif len(row) > 2:
                    raise CatalogError("more cells than header columns", path=path, line=reader.line_num)
                cells = dict(zip(("user", "item"), [*row, None, None], strict=False))
                valid = _interaction(cells, path, reader.line_num)
                yield valid.user, valid.item
    except UnicodeDecodeError:
        raise CatalogError("not UTF-8 text", path=path) from None
    except csv.Error as exc:
        raise CatalogError(f"bad CSV: {exc}", path=path) from None


def _interaction(row: Any, path: Path, line: int) -> Interaction:
    if isinstance(row, dict) and row.get("timestamp") in ("", None):
        row = {k: v for k, v in row.items() if k != "timestamp"}
    return _validate(Interaction, row, path, line)


def _validated_items(
    rows: Iterator[tuple[int, Any]], path: Path, vocab: Vocabulary | None
) -> list[Item]:
    """Items from ``(line, row)`` pairs; a row may be a JSON text still to parse (see
    :func:`_jsonl_rows` with ``items``)."""
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        item = row if isinstance(row, Item) else _validate(Item, row, path, line)
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


def _jsonl_rows(path: Path, *, items: bool = False) -> Iterator[tuple[int, Any]]:
    """The parsed JSON of each non-blank line, with its line number.

    With ``items``, a line that is a valid item comes back as an :class:`Item`, parsed and
    validated in one step by pydantic (which reuses the string objects of repeated values: 1M
    items share their 10,000 attribute names). A line it refuses comes back as parsed JSON for
    the usual checks, so the errors are exactly those of the plain path.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                if items:
                    try:
                        yield number, Item.model_validate_json(text)
                        continue
                    except ValidationError:
                        pass
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
