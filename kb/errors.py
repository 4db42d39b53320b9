"""One exception hierarchy for everything that reads catalogs and interactions."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CatalogError", "KBError", "UnknownIdError"]


class KBError(Exception):
    """Base class of every error raised by :mod:`kb`."""


class CatalogError(KBError, ValueError):
    """A catalog, vocabulary or interaction file that cannot be used.

    The message always names the file and, when known, the line or item and the problem,
    e.g. ``albums.jsonl, line 3: bad JSON: Expecting ',' delimiter``.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        item: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.line = line
        self.item = item
        where = [p for p in (self.path, f"line {line}" if line else None) if p]
        if item is not None:
            where.append(f"item {item!r}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)


class UnknownIdError(KBError, KeyError):
    """An item or attribute id that the catalog does not contain."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"unknown {kind} id {ident!r}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])
