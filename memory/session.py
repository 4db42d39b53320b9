"""What happened in one session, turn by turn, rebuilt from the states the conversation hands over.

The conversation calls ``observe(user_id, state)`` after every turn with the whole graph state.
Comparing each turn's dialogue with the previous one tells what changed and *how*: an
attribute the user named without being asked ("no more metal") is a statement; a yes or no
to the bot's own question is an answer about this session's target only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SessionRecord", "TurnEvent", "update_record"]


@dataclass(frozen=True, slots=True)
class TurnEvent:
    turn: int
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    volunteered: tuple[str, ...] = ()  # of accepted + rejected: said without being asked
    accepted_item: str | None = None
    rejected_items: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()  # items named as examples this turn ("like Kind of Blue")
    message: str | None = None


@dataclass
class SessionRecord:
    """The distillable content of one session (plain data; rebuilt from observed turns)."""

    user_id: str
    session_id: str
    events: list[TurnEvent] = field(default_factory=list)
    dialogue: dict[str, Any] | None = None  # the latest DialogueState.to_dict()
    recommended_ids: tuple[str, ...] = ()  # the last list shown (for crediting memories)

    @property
    def turns(self) -> int:
        return int((self.dialogue or {}).get("turn", 0))

    def final(self, key: str) -> tuple[str, ...]:
        return tuple((self.dialogue or {}).get(key, ()) or ())

    @property
    def accepted_item(self) -> str | None:
        value = (self.dialogue or {}).get("accepted_item")
        return str(value) if value else None

    def turns_of(self, attr: str) -> tuple[int, ...]:
        return tuple(e.turn for e in self.events if attr in e.accepted or attr in e.rejected)

    def volunteered(self, attr: str) -> bool:
        return any(attr in e.volunteered for e in self.events)

    def messages(self) -> list[tuple[int, str]]:
        return [(e.turn, e.message) for e in self.events if e.message]


def _user_text(state: Mapping[str, Any]) -> str | None:
    """The user's message of the last turn, if it was text (not a button)."""
    for entry in reversed(state.get("transcript") or []):
        if entry.get("role") == "user":
            text = str(entry.get("content") or "")
            return None if text.startswith("[action]") else text
    return None


def update_record(record: SessionRecord, state: Mapping[str, Any]) -> SessionRecord:
    """Fold one observed turn into the record (returns the same, updated record)."""
    now = state.get("dialogue") or {}
    prev = record.dialogue or {}
    if now.get("turn", 0) <= prev.get("turn", -1) and now == prev:
        return record  # the same turn observed twice
    asked = {prev.get("question")} | set(prev.get("options") or ())
    acc = [a for a in now.get("accepted", ()) if a not in set(prev.get("accepted", ()))]
    rej = [a for a in now.get("rejected", ()) if a not in set(prev.get("rejected", ()))]
    old_items = set(prev.get("rejected_items", ()))
    rej_items = tuple(i for i in now.get("rejected_items", ()) if i not in old_items)
    seeds = tuple(i for i in now.get("seeds", ()) if i not in set(prev.get("seeds", ())))
    item = now.get("accepted_item") if now.get("accepted_item") != prev.get("accepted_item") else None
    if acc or rej or rej_items or seeds or item or _user_text(state):
        record.events.append(
            TurnEvent(
                turn=int(now.get("turn", 0)),
                accepted=tuple(acc),
                rejected=tuple(rej),
                volunteered=tuple(a for a in (*acc, *rej) if a not in asked),
                accepted_item=item,
                rejected_items=rej_items,
                seeds=seeds,
                message=_user_text(state),
            )
        )
    shown = tuple(now.get("recommended", ()) or ())
    if shown:
        record.recommended_ids = shown
    record.dialogue = dict(now)
    return record
