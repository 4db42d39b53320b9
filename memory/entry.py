"""One long-term memory: what it says, whom it is about, where it came from and whether it still holds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EvidenceSource", "MemoryEntry", "MemoryKind", "memory_id", "utcnow"]

MemoryKind = Literal["like", "dislike", "fact", "style", "session_summary"]
#: where a memory comes from, which sets its weight and lifetime: said by the person about
#: themselves (lasting, strongest), an item they chose or named as an example (weak evidence
#: about its attributes), or a summary of a session (context for generation only)
EvidenceSource = Literal["stated", "chosen", "named", "summary"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def memory_id(user_id: str, session_id: str, turns: Sequence[int], kind: str, key: str) -> str:
    """A deterministic id: the same candidate from the same session always gets the same id,
    so re-running a reflection (after a crash) overwrites instead of duplicating.

    >>> memory_id("ann", "s1", [1, 2], "like", "tag:rock") == memory_id("ann", "s1", [1, 2], "like", "tag:rock")
    True
    >>> len(memory_id("ann", "s1", [], "fact", "I have kids"))
    32
    """
    raw = json.dumps([user_id, session_id, sorted(turns), kind, key], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


class MemoryEntry(BaseModel):
    """A topic-level memory about one user. ``valid_to`` None means it still holds."""

    model_config = ConfigDict(extra="forbid")

    id: str
    user_id: str
    kind: MemoryKind
    text: str = Field(min_length=1, max_length=2000)
    attribute_ids: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()
    #: a stable key for facts and styles ("diet", "length"), so "not vegetarian any more" finds
    #: the fact it contradicts even when the wording differs
    topic: str | None = None
    #: stated outright by the user ("I'm done with metal") rather than inferred from answers
    explicit: bool = False
    session_id: str = ""
    turns: tuple[int, ...] = ()
    created_at: datetime = Field(default_factory=utcnow)
    valid_from: datetime = Field(default_factory=utcnow)
    valid_to: datetime | None = None
    confidence: float = Field(0.6, ge=0.0, le=1.0)
    #: how many observations back it (merges of restatements add to it)
    support: int = Field(1, ge=1)
    use_count: int = Field(0, ge=0)
    success_count: int = Field(0, ge=0)
    #: ids of candidates already merged in: a rerun of a reflection merges nothing twice
    merged_ids: tuple[str, ...] = ()
    superseded_by: str | None = None
    #: None for memories written before sources were recorded (read by ``evidence_source``)
    source: EvidenceSource | None = None

    @property
    def evidence_source(self) -> EvidenceSource | None:
        """The source, also for older memories: what kind of evidence this is, or None for
        the answers to one search's questions that older versions kept (never a lasting like)."""
        if self.source is not None:
            return self.source
        if self.kind == "session_summary":
            return "summary"
        if self.item_ids:
            return "chosen" if self.text.startswith("Chose ") else "named"
        if self.kind in ("fact", "style"):
            return "stated"
        if self.explicit and not self.text.startswith(("Asked for ", "Said yes to ", "Said no to ")):
            return "stated"
        return None

    @property
    def is_valid(self) -> bool:
        return self.valid_to is None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str) -> MemoryEntry:
        return cls.model_validate_json(raw)

    def metadata(self) -> dict[str, Any]:
        """Flat, filterable fields for the vector store (the full entry rides along as JSON)."""
        return {
            "user_id": self.user_id,
            "kind": self.kind,
            "valid": self.valid_to is None,
            "session_id": self.session_id,
            "topic": self.topic or "",
            "created": self.created_at.timestamp(),
            "entry": self.to_json(),
        }
