"""What happened in one session, turn by turn, rebuilt from the states the conversation hands over.

The conversation calls ``observe(user_id, state)`` after every turn with the whole graph state.
Comparing each turn's dialogue with the previous one tells what changed and *how*: an
attribute the user named without being asked ("no more metal") is a statement; a yes or no
to the bot's own question is an answer about this session's target only.

A record travels with its conversation (``SessionRecord.to_dict`` goes into the checkpointed
graph state), so whichever worker serves a turn sees the whole session, and deleting the
conversation deletes it. It stays small: once reflected, a turn's event is dropped
(:meth:`SessionRecord.reflected`), and it keeps of the dialogue only what the next diff needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from crs.memory.statements import find_statements

__all__ = ["SessionRecord", "TurnEvent", "next_part", "part_id", "update_record"]

#: the dialogue fields a record keeps: what the next turn's diff and the reflection read
_SEEN = ("turn", "accepted", "rejected", "rejected_items", "seeds", "accepted_item", "question", "options")


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

    def to_dict(self) -> dict[str, Any]:
        """Plain data, empty fields left out (it is checkpointed with every turn)."""
        out: dict[str, Any] = {"turn": self.turn}
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnEvent:
        def ids(key: str) -> tuple[str, ...]:
            return tuple(data.get(key) or ())

        item, message = data.get("accepted_item"), data.get("message")
        return cls(turn=int(data["turn"]), accepted=ids("accepted"), rejected=ids("rejected"),
                   volunteered=ids("volunteered"), accepted_item=str(item) if item else None,
                   rejected_items=ids("rejected_items"), seeds=ids("seeds"), message=str(message) if message else None)


@dataclass
class SessionRecord:
    """The distillable content of one session (plain data; rebuilt from observed turns)."""

    user_id: str
    session_id: str  # the source of its memories: the session, "#n" after the n-th start-over
    events: list[TurnEvent] = field(default_factory=list)
    dialogue: dict[str, Any] | None = None  # the latest dialogue (the fields a diff needs)
    recommended_ids: tuple[str, ...] = ()  # the last list shown (for crediting memories)
    segment: int = 0  # start-overs so far in this conversation
    reflected_turn: int = 0  # the turn its last reflection went up to
    token: str = ""  # this conversation (a deleted and restarted one gets another)

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

    def reflected(self) -> SessionRecord:
        """Its events up to now are in memory: drop them. A choice and the items named as
        examples keep the turns they happened in (without the words), so reflecting the rest
        later proposes the same memory, with the same id, and adds nothing twice."""
        return replace(self, events=self._bare(self.events), reflected_turn=self.turns)

    def shed(self, keep: int) -> int:
        """Keep the newest ``keep`` unreflected turns whole, and of older ones only what
        :meth:`reflected` keeps (a bound for when reflection keeps failing); the turns shed."""
        late = [e for e in self.events if e.turn > self.reflected_turn]
        old = {id(e) for e in late[:max(0, len(late) - keep)]}
        if not old:
            return 0
        bare = {id(e): b for e in self.events if id(e) in old for b in self._bare([e])}
        self.events = [bare.get(id(e)) or e for e in self.events if id(e) not in old or id(e) in bare]
        return len(old)

    def _bare(self, events: list[TurnEvent]) -> list[TurnEvent]:
        item, seeds = self.accepted_item, set(self.final("seeds"))
        kept = []
        for e in events:
            mine = tuple(s for s in e.seeds if s in seeds)
            chose = e.accepted_item if e.accepted_item is not None and e.accepted_item == item else None
            if chose or mine:
                kept.append(TurnEvent(turn=e.turn, accepted_item=chose, seeds=mine))
        return kept

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "segment": self.segment, "token": self.token,
                "reflected_turn": self.reflected_turn, "dialogue": self.dialogue,
                "recommended": list(self.recommended_ids), "events": [e.to_dict() for e in self.events]}

    @classmethod
    def from_dict(cls, user_id: str, data: Mapping[str, Any]) -> SessionRecord:
        return cls(user_id=user_id, session_id=str(data["session_id"]),
                   events=[TurnEvent.from_dict(e) for e in data.get("events") or ()],
                   dialogue=dict(data["dialogue"]) if data.get("dialogue") else None,
                   recommended_ids=tuple(data.get("recommended") or ()), segment=int(data.get("segment") or 0),
                   reflected_turn=int(data.get("reflected_turn") or 0), token=str(data.get("token") or ""))


def _seen(dialogue: Mapping[str, Any]) -> dict[str, Any]:
    # lists, as they come back from a checkpoint: a turn observed twice compares equal
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dialogue.items() if k in _SEEN}


def _user_text(state: Mapping[str, Any]) -> str | None:
    """The user's message of the last turn, if it was text (not a button)."""
    for entry in reversed(state.get("transcript") or []):
        if entry.get("role") == "user":
            text = str(entry.get("content") or "")
            return None if text.startswith("[action]") else text
    return None


def part_id(session_id: str, part: int) -> str:
    """The source id of a session's memories in its ``part``-th part (after that many start-overs).

    >>> part_id("s1", 0), part_id("s1", 2)
    ('s1', 's1#2')
    """
    return session_id if part == 0 else f"{session_id}#{part}"


def next_part(record: Mapping[str, Any], session_id: str) -> dict[str, Any] | None:
    """The record a conversation deleted and started again under ``session_id`` begins with,
    after one that carried ``record``: the session's next part, so that the new conversation's
    turn 1 ("I love jazz") does not get the old turn 1's memory id and pass for a replay of it.
    None when the old conversation can have left nothing in memory (a greeting only).

    >>> next_part({"segment": 1, "reflected_turn": 3}, "s1")
    {'session_id': 's1#2', 'segment': 2}
    >>> next_part({"segment": 0, "events": [{"turn": 1, "message": "hi"}]}, "s1") is None
    True
    """
    left = bool(record.get("reflected_turn") or record.get("segment")) or any(
        set(event) - {"turn", "message"} or find_statements(str(event.get("message") or ""))
        for event in record.get("events") or ())
    if not left:
        return None
    part = int(record.get("segment") or 0) + 1
    return {"session_id": part_id(session_id, part), "segment": part}


def update_record(record: SessionRecord, state: Mapping[str, Any]) -> SessionRecord:
    """Fold one observed turn into the record (returns the same, updated record)."""
    now = state.get("dialogue") or {}
    prev = record.dialogue or {}
    seen = _seen(now)
    if now.get("turn", 0) <= prev.get("turn", -1) and seen == _seen(prev):
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
    record.dialogue = seen
    return record
