"""The conversation state and the messages that change it.

Everything here is plain data made of ids (strings), never graph objects, so a state can be
written to any checkpoint and read back by another process or another catalog build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

__all__ = [
    "Action",
    "ActionKind",
    "DialogueState",
    "Feedback",
    "Intent",
    "Recommendation",
]

Intent = Literal[
    "inform",  # the message carries attribute or item feedback
    "recommend_now",  # "just recommend something"
    "restart",  # "start over"
    "why",  # "why this one?"
    "undo",  # "go back": the state before the last answer, its question or list again
    "options",  # "what genres do you have?" (about_facet), or "help" (no facet)
    "greet",
    "thanks",
    "unknown",  # nothing could be placed: ask the user to rephrase
    "memories",  # "what do you remember about me?"
    "forget",  # "forget that I like jazz"
    "forget_me",  # "forget everything about me" (asks for confirmation first)
]
ActionKind = Literal[
    "ask", "recommend", "clarify", "explain", "accepted", "restart", "greet", "thanks", "error",
    "memories", "forget", "confirm_forget", "forgotten", "options",
]


@dataclass(frozen=True, slots=True)
class Feedback:
    """What one user turn says, whether it came from text (NLU) or from a button."""

    accept_attributes: tuple[str, ...] = ()
    reject_attributes: tuple[str, ...] = ()
    accept_item: str | None = None
    reject_items: tuple[str, ...] = ()
    intent: Intent = "inform"
    #: the item a "why?" is about, when the user named one
    about_item: str | None = None
    #: items named as examples of what is wanted ("something like Kind of Blue")
    like_items: tuple[str, ...] = ()
    #: items asked for themselves, e.g. an artist's ("anything by Miles Davis")
    want_items: tuple[str, ...] = ()
    #: the facet whose values were asked for ("what genres do you have?")
    about_facet: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (
            self.accept_attributes or self.reject_attributes or self.accept_item or self.reject_items
            or self.like_items or self.want_items
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feedback:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True, slots=True)
class DialogueState:
    """Where one conversation stands: the accepted path and everything ruled out so far."""

    user_id: str | None = None
    accepted: tuple[str, ...] = ()  # attribute ids, in the order they extended the path
    rejected: tuple[str, ...] = ()  # attribute ids the user said no to
    asked: tuple[str, ...] = ()  # attribute ids already asked about (any answer)
    rejected_items: tuple[str, ...] = ()
    #: items named as examples ("like Kind of Blue"): their attributes weigh softly in the
    #: scores, and they are not recommended themselves (the person knows them)
    seeds: tuple[str, ...] = ()
    #: items asked for by name or artist: they come first whenever they fit the path
    wanted: tuple[str, ...] = ()
    recommended: tuple[str, ...] = ()  # the list shown last, for "the second one"
    question: str | None = None  # attribute id of the question awaiting an answer
    options: tuple[str, ...] = ()  # attribute ids offered with that question
    accepted_item: str | None = None
    turn: int = 0
    questions_in_a_row: int = 0
    #: soft prior from long-term memory: attribute id → weight (negative for dislikes)
    prior: tuple[tuple[str, float], ...] = field(default=())
    #: remembered stated dislikes ("done with metal"): lists leave them out unless accepted again
    avoid: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # Every field is immutable (str, int, tuples), so a shallow copy is a safe one; asdict's
        # deep copy of the prior cost more than the rest of the turn's own work.
        return {name: getattr(self, name) for name in _DIALOGUE_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialogueState:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        values["prior"] = tuple((str(a), float(w)) for a, w in values.get("prior", ()))
        return cls(**values)

    def evolve(self, **changes: Any) -> DialogueState:
        return replace(self, **changes)


_DIALOGUE_FIELDS = tuple(f.name for f in fields(DialogueState))


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    name: str
    path: tuple[str, ...]  # attribute ids then the item id: the walk that explains it
    score: float


@dataclass(frozen=True, slots=True)
class Action:
    """What the policy decided to do next."""

    kind: ActionKind
    attribute: str | None = None  # for "ask": the attribute asked about
    options: tuple[str, ...] = ()  # for "ask": other values of the same facet worth offering
    recommendations: tuple[Recommendation, ...] = ()
    candidates: int = 0
