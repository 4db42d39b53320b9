"""Checking a reply against a script turn's expectations, and memory against a memory check.

Each failed expectation is a :class:`Mismatch`: what was expected, and what came back, in
words a person reads in a diff.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from crs.evals.script import Expect, MemoryCheck, TopK
from crs.language.reply import Reply

__all__ = ["Mismatch", "check_memory", "check_reply", "quick_reply_labels"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    what: str  # the expectation, e.g. "action" or "mentions 'jazz'"
    expected: str
    got: str

    def to_dict(self) -> dict[str, str]:
        return {"what": self.what, "expected": self.expected, "got": self.got}


class _Memory(Protocol):  # read-only, so a MemoryEntry (kind a Literal, ids a tuple) is one
    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def attribute_ids(self) -> Sequence[str]: ...


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def quick_reply_labels(reply: Reply) -> list[str]:
    """The options a person can tap after this reply (the demo's buttons, by label).

    A question offers yes, no, its other values and "just recommend"; a list offers each item
    and "none of these"; a finished search offers "start over". After a clarification, an
    explanation or an error, the question or list still open keeps its options.
    """
    question = reply.open_question
    if question is not None:
        others = [v for v, a in zip(question.options, question.option_ids, strict=False) if a != question.attribute]
        return ["Yes", "No", *others, "Just recommend"]
    items = reply.open_recommendations
    if items:
        return [*(r.name for r in items), "None of these"]
    if reply.action in ("accepted", "thanks"):
        return ["Start over"]
    return []


def _word_in(word: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word.casefold())}(?!\w)", text.casefold()) is not None


def _shown(reply: Reply) -> list[str]:
    return [r.id for r in reply.recommendations] if reply.action == "recommend" else []


def _top(reply: Reply, spec: TopK) -> bool:
    return spec.item in _shown(reply)[: spec.k]


def check_reply(expect: Expect | None, reply: Reply) -> list[Mismatch]:
    """Every expectation the reply does not meet (an empty list: the turn passes)."""
    if expect is None:
        return []
    out: list[Mismatch] = []
    shown = _shown(reply)
    if expect.action is not None:
        wanted = _many(expect.action)
        if reply.action not in wanted:
            out.append(Mismatch("action", " or ".join(wanted), reply.action))
    if expect.asks is not None:
        q = reply.question if reply.action == "ask" else None
        got = "no question" if q is None else f"{q.attribute} ({q.facet})"
        ok = q is not None and (q.attribute == expect.asks if ":" in expect.asks else q.facet == expect.asks)
        if not ok:
            out.append(Mismatch("asks about", expect.asks, got))
    for spec in _many(expect.in_top):
        if not _top(reply, spec):
            out.append(Mismatch(f"{spec.item} in the top {spec.k}", "listed", f"list: {shown or 'none'}"))
    for spec in _many(expect.not_in_top):
        if _top(reply, spec):
            out.append(Mismatch(f"{spec.item} not in the top {spec.k}", "not listed", f"list: {shown}"))
    for word in _many(expect.mentions):
        if not _word_in(word, reply.text):
            out.append(Mismatch(f"mentions {word!r}", "mentioned", "not in the text"))
    for word in _many(expect.not_mentions):
        if _word_in(word, reply.text):
            out.append(Mismatch(f"does not mention {word!r}", "absent", "in the text"))
    if expect.max_candidates is not None and reply.candidates > expect.max_candidates:
        out.append(Mismatch("candidates", f"at most {expect.max_candidates}", str(reply.candidates)))
    if expect.matches is not None and re.search(expect.matches, reply.text) is None:
        out.append(Mismatch(f"matches /{expect.matches}/", "a match", "no match"))
    if expect.not_matches is not None and (m := re.search(expect.not_matches, reply.text)) is not None:
        out.append(Mismatch(f"does not match /{expect.not_matches}/", "no match", repr(m.group(0))))
    labels = quick_reply_labels(reply)
    for option in _many(expect.quick_replies):
        if not any(option.casefold() == label.casefold() for label in labels):
            out.append(Mismatch(f"quick replies include {option!r}", option, ", ".join(labels) or "none"))
    return out


def _held(memories: Sequence[_Memory], spec: str) -> bool:
    kind, _, what = spec.strip().partition(" ")
    what = what.strip()
    for m in memories:
        if kind != "any" and m.kind != kind:
            continue
        if what in m.attribute_ids or (":" not in what and _word_in(what, m.text)):
            return True
    return False


def check_memory(check: MemoryCheck, memories: Sequence[_Memory]) -> list[Mismatch]:
    out: list[Mismatch] = []
    listing = "; ".join(f"{m.kind}: {m.text}" for m in memories) or "nothing remembered"
    for spec in check.holds:
        if not _held(memories, spec):
            out.append(Mismatch(f"memory holds {spec!r}", "held", listing))
    for spec in check.lacks:
        if _held(memories, spec):
            out.append(Mismatch(f"memory lacks {spec!r}", "absent", listing))
    return out
