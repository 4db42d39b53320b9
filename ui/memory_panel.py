"""The memory panel: what is remembered about the person at this browser, each with a delete button.

Built from ``Recommender.memories(user)`` only (an entry's ``id``, ``kind``, ``text`` and
``created_at``), so it shows what the memory store holds, whatever kinds it comes to have.
Each delete button carries the memory's id; the page sends it back with the browser's own user,
so one person can never list or delete another's memories.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol

from crs.language.memory_talk import RememberedEntry

__all__ = ["MemoryView", "kind_label", "memories_html"]

_KINDS = {"like": "likes", "dislike": "dislikes", "fact": "about you", "style": "how to talk",
          "session_summary": "a search", "choice": "chosen"}


class MemoryView(RememberedEntry, Protocol):
    """The fields of a memory entry the panel shows: what its wording needs, and the id to delete it by."""

    @property
    def id(self) -> str: ...


#: likes that come from what the person did, not said: labelled by that
_SOURCES = {"chosen": "chosen", "named": "named as an example"}


def kind_label(kind: str, source: str | None = None) -> str:
    """A short human label for a memory kind (unknown kinds are shown by name); a like that is
    the record of a choice says so ("chosen"), not "likes".

    >>> kind_label("like"), kind_label("like", "chosen"), kind_label("session_summary")
    ('likes', 'chosen', 'a search')
    """
    if kind == "like" and source in _SOURCES:
        return _SOURCES[source]
    return _KINDS.get(kind, kind.replace("_", " "))


def memories_html(memories: Sequence[MemoryView]) -> str:
    if not memories:
        return '<p class="muted memory-empty">Nothing is remembered about you yet.</p>'
    rows = []
    for m in memories:
        when = m.created_at.strftime("%Y-%m-%d %H:%M")
        rows.append(
            f'<li class="memory" data-memory-row="{escape(m.id)}">'
            f'<span class="memory-kind">{escape(kind_label(m.kind, getattr(m, "evidence_source", None)))}</span>'
            f'<span class="memory-text">{escape(m.text)}</span>'
            f'<time class="memory-when" datetime="{m.created_at.isoformat()}">{when}</time>'
            f'<button type="button" class="memory-delete" data-memory="{escape(m.id)}" '
            f'aria-label="Delete this memory: {escape(m.text)}" title="Delete this memory">Delete</button>'
            "</li>"
        )
    count = "1 memory" if len(memories) == 1 else f"{len(memories)} memories"
    return f'<p class="muted">{count}, newest first.</p><ul class="memories">{"".join(rows)}</ul>'
