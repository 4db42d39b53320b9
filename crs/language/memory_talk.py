"""What the bot says about its memory of a person: the list behind "what do you remember about
me?", and the answers to "forget that ..." and "forget everything about me"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

__all__ = ["RememberedEntry", "describe_memory", "forget_me_question", "forgot_text", "memories_text"]

# A memory's third-person text, turned to the second person ("Loves jazz." → "You said you love jazz.")
_SECOND_PERSON = (
    ("Loves ", "You said you love "), ("Likes ", "You said you like "), ("Can't stand ", "You said you can't stand "),
    ("Done with ", "You said you're done with "), ("Doesn't like ", "You said you don't like "),
    ("Not into ", "You said you're not into "), ("Chose ", "You chose "), ("Named ", "You mentioned "),
    ("Is not ", "You said you're not "), ("Is ", "You said you're "), ("Has ", "You said you have "),
    ("Does not have ", "You said you don't have "), ("Prefers ", "You prefer "), ("Lives in ", "You live in "),
    ("Works as ", "You work as "), ("Works in ", "You work in "), ("Works at ", "You work at "),
    ("Studies ", "You study "),
)


class RememberedEntry(Protocol):
    """What the wording needs of a memory (``crs.memory.MemoryEntry`` has it)."""

    @property
    def kind(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


def describe_memory(entry: RememberedEntry) -> str:
    """One memory in the second person.

    >>> from types import SimpleNamespace as M
    >>> describe_memory(M(kind="like", text="Loves jazz.", created_at=datetime(2026, 11, 3)))
    'You said you love jazz.'
    >>> describe_memory(M(kind="like", text="Chose Kind of Blue — Miles Davis.", created_at=datetime(2026, 11, 3)))
    'You chose Kind of Blue — Miles Davis (Nov 3).'
    """
    text = entry.text.strip()
    for prefix, said in _SECOND_PERSON:
        if text.startswith(prefix):
            out = said + text[len(prefix):]
            if prefix == "Chose ":
                out = out.rstrip(".") + f" ({entry.created_at:%b} {entry.created_at.day})."
            return out
    return text


def memories_text(entries: Sequence[RememberedEntry]) -> str:
    """The reply to "what do you remember about me?": everything, one memory a line."""
    shown = [e for e in entries if e.kind != "session_summary"]
    if not shown:
        return "I don't remember anything about you yet."
    lines = [f"- {describe_memory(e)}" for e in shown]
    return "\n".join(["Here's what I remember about you:", *lines,
                      "Say 'forget that ...' to drop one, or 'forget everything about me'."])


def forgot_text(entries: Sequence[RememberedEntry]) -> str:
    """The reply to "forget that ...": what was forgotten, or that nothing matched.

    >>> from types import SimpleNamespace as M
    >>> day = datetime(2026, 11, 3)
    >>> forgot_text([M(kind="session_summary", text="Looked for jazz; chose Kind of Blue.", created_at=day),
    ...              M(kind="like", text="Chose Kind of Blue.", created_at=day)])
    "Done, I've forgotten it: you chose Kind of Blue (Nov 3), and the search it ended."
    """
    if not entries:
        return "I don't have anything like that remembered, so there's nothing to forget."
    searches = [e for e in entries if e.kind == "session_summary"]
    said = "; ".join(describe_memory(e).rstrip(".") for e in entries if e.kind != "session_summary")
    if not said:  # only the summary of a search ("looked for jazz; chose ...")
        text = searches[0].text.strip().rstrip(".")
        return f"Done, I've forgotten that search: {text[:1].lower() + text[1:]}."
    ended = ", and the search it ended" if len(searches) == 1 else (
        f", and the {len(searches)} searches they ended" if searches else "")
    return f"Done, I've forgotten it: {said[:1].lower() + said[1:]}{ended}."


def forget_me_question() -> str:
    return ("Do you want me to forget everything about you: what you told me, what you chose and our "
            "conversations? This can't be undone. Say yes to confirm.")
