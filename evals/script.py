"""Dialogue scripts: the YAML format, as a typed model that rejects unknown keys.

A script names a catalog (the bundled one by default), a persona and settings, one or more
users, and its turns. A turn says something (``say``), taps a button (``do``, a structured
action), breaks the session (``session: new``), lets time pass (``wait``) or checks what is
remembered (``memory``); ``say`` and ``do`` turns may carry expectations of the reply
(``expect``). Every error names the file and the turn::

    >>> load_script_text("turns: [{say: yes}, {do: {type: answer, yes: true}}]").turns[0].say
    'yes'
    >>> load_script_text("turns: [{say: hi, expect: {action: greet, colour: red}}]", "x.dialogue.yaml")
    Traceback (most recent call last):
    ...
    crs.evals.script.ScriptError: x.dialogue.yaml, turn 1 (line 1): expect.colour: unknown key
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crs.reasoning.state import ActionKind

__all__ = [
    "SCRIPT_SUFFIX",
    "DialogueScript",
    "Expect",
    "MemoryCheck",
    "ScriptError",
    "TopK",
    "Turn",
    "find_scripts",
    "load_script",
    "load_script_text",
]

SCRIPT_SUFFIX = ".dialogue.yaml"
ACTIONS = get_args(ActionKind)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?|w|weeks?|y|years?)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}


class ScriptError(ValueError):
    """A script that cannot be run; the message names the file, the turn and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopK(_Strict):
    """An item and the list size it must (or must not) be within."""

    item: str
    k: int = Field(3, ge=1)


class Expect(_Strict):
    """What a reply must show. Every field is optional; all given ones must hold."""

    action: str | list[str] | None = None  # one action, or any of several
    asks: str | None = None  # a facet ("decade") or an attribute id ("decade:1970s")
    in_top: TopK | list[TopK] | None = None
    not_in_top: TopK | list[TopK] | None = None
    mentions: str | list[str] | None = None  # words (case-insensitive, whole words)
    not_mentions: str | list[str] | None = None
    max_candidates: int | None = Field(None, ge=0)
    matches: str | None = None  # a regex that must match somewhere in the text
    not_matches: str | None = None
    quick_replies: str | list[str] | None = None  # options the reply's quick replies include
    refused: str | None = None  # the call is refused (InvalidInput) with a message matching this regex

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str | list[str] | None) -> str | list[str] | None:
        for a in [value] if isinstance(value, str) else value or []:
            if a not in ACTIONS:
                raise ValueError(f"unknown action {a!r}; one of {', '.join(ACTIONS)}")
        return value

    @field_validator("matches", "not_matches", "refused")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


MEMORY_KINDS = ("like", "dislike", "fact", "style", "any")


class MemoryCheck(_Strict):
    """What long-term memory holds about a user now.

    Each entry is ``"<kind> <what>"``: a kind (like, dislike, fact, style or any) and an
    attribute id ("genre:jazz") or a word of the memory's text ("vegetarian").
    """

    user: str | None = None  # default: the script's first user
    holds: list[str] = Field(default_factory=list)
    lacks: list[str] = Field(default_factory=list)

    @field_validator("holds", "lacks")
    @classmethod
    def _kind_and_what(cls, values: list[str]) -> list[str]:
        for v in values:
            kind, _, what = v.strip().partition(" ")
            if kind not in MEMORY_KINDS or not what.strip():
                raise ValueError(f"{v!r} is not '<kind> <attribute or word>' with a kind in {', '.join(MEMORY_KINDS)}")
        return values


class Turn(_Strict):
    """One step of a script: exactly one of say / do / session / wait / memory."""

    say: str | None = None
    do: dict[str, Any] | None = None  # a structured action, e.g. {type: answer, yes: true}
    session: Literal["new"] | None = None  # end this session (memory reflects) and start another
    wait: str | None = None  # "3 days": a break in time, which also starts a new session
    memory: MemoryCheck | None = None
    user: str | None = Field(None, alias="as")  # who speaks (default: the script's first user)
    expect: Expect | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> Turn:
        kinds = [k for k in ("say", "do", "session", "wait", "memory") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a turn needs exactly one of say, do, session, wait, memory"
                             + (f" (it has {', '.join(kinds)})" if kinds else ""))
        if self.expect is not None and kinds[0] not in ("say", "do"):
            raise ValueError(f"expect only follows a say or do turn, not {kinds[0]}")
        if self.wait is not None and _DURATION.match(self.wait) is None:
            raise ValueError(f"wait {self.wait!r} is not a duration like '3 days' or '2h'")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("say", "do", "session", "wait", "memory") if getattr(self, k) is not None)

    @property
    def wait_seconds(self) -> float:
        m = _DURATION.match(self.wait or "")
        return float(m.group(1)) * _SECONDS[m.group(2)[0]] if m else 0.0


class DialogueScript(_Strict):
    """A whole script; ``path`` and ``lines`` are filled in by the loader."""

    name: str | None = None
    description: str | None = None
    catalog: str = "bundled"  # "bundled", or a catalog file relative to the script
    persona: str = "default"
    settings: dict[str, Any] = Field(default_factory=dict)  # crs Settings overrides
    memory: bool = False  # long-term memory (Chroma) on for this script
    users: list[str] = Field(default_factory=lambda: ["user"], min_length=1)
    tags: list[str] = Field(default_factory=list)
    turns: list[Turn] = Field(min_length=1)
    path: str = ""
    lines: list[int] = Field(default_factory=list)  # the YAML line of each turn

    @property
    def title(self) -> str:
        return self.name or Path(self.path).name.removesuffix(SCRIPT_SUFFIX)

    @model_validator(mode="after")
    def _known_users(self) -> DialogueScript:
        for n, turn in enumerate(self.turns, start=1):
            who = turn.user or (turn.memory.user if turn.memory else None)
            if who is not None and who not in self.users:
                raise ValueError(f"turns.{n - 1}: user {who!r} is not one of the script's users {self.users}")
        return self


class _ScriptLoader(yaml.SafeLoader):
    """YAML where only true/false are booleans: ``say: yes`` says "yes", ``{yes: true}`` has a key "yes"."""


_ScriptLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ScriptLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


def load_script(path: str | Path) -> DialogueScript:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScriptError(f"{path}: not UTF-8 text") from None
    return load_script_text(text, str(path))


def load_script_text(text: str, path: str = "<script>") -> DialogueScript:
    """Parse and validate a script; errors name the file, the turn and its line."""
    try:
        node = yaml.compose(text, Loader=_ScriptLoader)
        data = yaml.load(text, Loader=_ScriptLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScriptError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{path}: a script is a mapping with at least 'turns'")
    lines = _turn_lines(node)
    try:
        return DialogueScript.model_validate({**data, "path": path, "lines": lines})
    except ValidationError as exc:
        raise ScriptError(_describe(exc, path, lines)) from None


def _turn_lines(node: Any) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "turns" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _describe(exc: ValidationError, path: str, lines: list[int]) -> str:
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo explains the rest
    loc = [str(p) for p in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        nested: dict[str, type[BaseModel]] = {"expect": Expect, "memory": MemoryCheck}
        model = nested.get(loc[-2] if len(loc) > 1 else "", Turn if "turns" in loc else DialogueScript)
        close = difflib.get_close_matches(loc[-1], [f.alias or n for n, f in model.model_fields.items()], n=1)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    # pydantic names union members (e.g. "str" in expect.action.str): keep only the user's keys
    loc = [p for p in loc if p not in ("str", "list[str]", "TopK", "list[TopK]", "function-after[_one_kind()]")]
    if loc[:1] == ["turns"] and len(loc) >= 2 and loc[1].isdigit():
        n = int(loc[1])
        line = f" (line {lines[n]})" if n < len(lines) else ""
        where = f"{path}, turn {n + 1}{line}"
        key = ".".join(loc[2:])
    else:
        m = re.match(r"turns\.(\d+): (.*)", message)
        if m:
            n = int(m.group(1))
            line = f" (line {lines[n]})" if n < len(lines) else ""
            return f"{path}, turn {n + 1}{line}: {m.group(2)}"
        where, key = path, ".".join(loc)
    return f"{where}: {key}: {message}" if key else f"{where}: {message}"


def find_scripts(paths: Sequence[Path | str]) -> list[Path]:
    """Files as given; folders searched for ``*.dialogue.yaml``, sorted. A missing path raises."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob(f"*{SCRIPT_SUFFIX}")))
        elif p.is_file():
            found.append(p)
        else:
            raise ScriptError(f"{p}: no such file or folder")
    return found
