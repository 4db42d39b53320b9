"""Who is speaking and to whom: bot personas (YAML) and the user's profile (from memory).

A :class:`Persona` is the bot's voice: a name, a tone, a verbosity, how many emoji, the words
it uses for the domain (``item``/``items``) and, per dialogue act, a list of templates that
:class:`crs.language.nlg.TemplateNLG` rotates through. Four are bundled (``crs personas`` lists them);
more can be loaded from a YAML file or written inline in the settings. Templates a persona
leaves out are taken from the ``default`` persona.

A :class:`UserProfile` is what long-term memory knows about the person: likes and dislikes
(attribute ids), facts ("has kids") and style wishes ("keep it short"). It shapes the words
(style wishes override the persona's verbosity and emoji), the explanations ("because you
like X and Y") and what is mentioned (never a dislike as praise; a fact only when relevant).

>>> sorted(bundled_personas())
['clerk', 'default', 'expert', 'playful']
>>> load_persona("expert").verbosity
'terse'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ACTS",
    "BUNDLED_DIR",
    "DEFAULT_PERSONA",
    "Persona",
    "PersonaError",
    "PersonaTemplates",
    "UserProfile",
    "Voice",
    "bundled_personas",
    "load_persona",
    "load_persona_file",
    "resolve_persona",
]

BUNDLED_DIR = Path(__file__).with_name("personas")
DEFAULT_PERSONA = "default"

Verbosity = Literal["terse", "normal", "chatty"]
EmojiUse = Literal["none", "some", "lots"]

#: Template lists a persona may define, and the placeholders each may use.
ACTS: dict[str, frozenset[str]] = {
    "greet": frozenset({"examples", "item", "items", "likes"}),
    "greet_back": frozenset({"examples", "item", "items", "likes"}),  # greeting a known user
    "ask": frozenset({"question", "value", "facet", "item", "items"}),
    "ask_default": frozenset({"value", "facet", "item", "items"}),  # when the facet has no question
    "confirm": frozenset({"value", "facet", "item", "items"}),  # a remembered like, checked first
    # the same two, when memory says where the like comes from ({said}: "you said you love jazz")
    "greet_said": frozenset({"said", "examples", "item", "items"}),
    "confirm_said": frozenset({"said", "value", "facet", "item", "items"}),
    "options": frozenset({"options"}),
    "recommend": frozenset({"item", "items", "n"}),
    "rec_line": frozenset({"n", "name", "why"}),
    "why_path": frozenset({"attrs"}),
    "why_like": frozenset({"likes"}),
    "why_both": frozenset({"attrs", "likes"}),
    "why_none": frozenset({"item"}),
    "caveat": frozenset({"attrs", "item"}),
    "fact_note": frozenset({"fact"}),
    "explain": frozenset({"name", "why", "item"}),
    "explain_unknown": frozenset({"name", "item"}),
    "accepted": frozenset({"name", "item"}),
    "restart": frozenset({"examples", "item", "items"}),
    "nothing_left": frozenset({"accepted", "item", "items"}),
    "clarify": frozenset({"examples", "item", "items"}),
    # not understood while a question is open (asked again), or while a list waits for a pick
    "clarify_question": frozenset({"question", "value", "facet", "item", "items"}),
    "clarify_list": frozenset({"n", "item", "items"}),
    "undone": frozenset(),  # before the question or list shown again after "go back"
    "undo_nothing": frozenset(),  # "go back" with nothing to go back to
    "undo_start": frozenset({"examples", "item", "items"}),  # "go back" to where the conversation began
    "facet_values": frozenset({"facet", "values", "item", "items"}),  # "what genres do you have?"
    "help": frozenset({"facets", "examples", "item", "items"}),  # "help", "what can I say?"
    "thanks": frozenset(),
    "understood": frozenset({"understood"}),  # what a message asked for, acknowledged first
    "explain_question": frozenset({"value", "facet", "n", "item", "items"}),  # "why?" before any list
    "explain_nothing": frozenset({"examples", "item", "items"}),  # "why?" with nothing asked or shown
    "error": frozenset({"problem"}),
    "openers": frozenset(),
    "closers": frozenset(),
}


class PersonaError(ValueError):
    """A persona that cannot be found or used; the message lists the known names."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class PersonaTemplates(BaseModel):
    """Templates per dialogue act; ``None`` means "take the default persona's"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    greet: tuple[str, ...] | None = None
    greet_back: tuple[str, ...] | None = None
    ask: tuple[str, ...] | None = None
    ask_default: tuple[str, ...] | None = None
    confirm: tuple[str, ...] | None = None
    greet_said: tuple[str, ...] | None = None
    confirm_said: tuple[str, ...] | None = None
    options: tuple[str, ...] | None = None
    recommend: tuple[str, ...] | None = None
    rec_line: tuple[str, ...] | None = None
    why_path: tuple[str, ...] | None = None
    why_like: tuple[str, ...] | None = None
    why_both: tuple[str, ...] | None = None
    why_none: tuple[str, ...] | None = None
    caveat: tuple[str, ...] | None = None
    fact_note: tuple[str, ...] | None = None
    explain: tuple[str, ...] | None = None
    explain_unknown: tuple[str, ...] | None = None
    accepted: tuple[str, ...] | None = None
    restart: tuple[str, ...] | None = None
    nothing_left: tuple[str, ...] | None = None
    clarify: tuple[str, ...] | None = None
    clarify_question: tuple[str, ...] | None = None
    clarify_list: tuple[str, ...] | None = None
    undone: tuple[str, ...] | None = None
    undo_nothing: tuple[str, ...] | None = None
    undo_start: tuple[str, ...] | None = None
    facet_values: tuple[str, ...] | None = None
    help: tuple[str, ...] | None = None
    thanks: tuple[str, ...] | None = None
    understood: tuple[str, ...] | None = None
    explain_question: tuple[str, ...] | None = None
    explain_nothing: tuple[str, ...] | None = None
    error: tuple[str, ...] | None = None
    openers: tuple[str, ...] | None = None
    closers: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check_placeholders(self) -> PersonaTemplates:
        for act, allowed in ACTS.items():
            for template in getattr(self, act) or ():
                try:
                    unknown = _fields(template) - allowed
                except ValueError as exc:
                    raise ValueError(f"templates.{act}: {template!r}: {exc}") from None
                if unknown:
                    raise ValueError(
                        f"templates.{act}: {template!r} uses {sorted(unknown)}; allowed: {sorted(allowed)}"
                    )
                if act == "error" and "problem" not in _fields(template):
                    raise ValueError(f"templates.error: {template!r} must contain {{problem}}")
            if getattr(self, act) == ():
                raise ValueError(f"templates.{act}: give at least one template, or leave it out")
        return self


class Persona(BaseModel):
    """The bot's voice. Load one with :func:`load_persona` or write it in the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    display_name: str = ""
    description: str = ""
    tone: str = "neutral"
    verbosity: Verbosity = "normal"
    emoji: EmojiUse = "none"
    emojis: tuple[str, ...] = ()
    wording: dict[str, str] = Field(default_factory=dict, description="domain words: item, items")
    llm_style: str = Field("", description="extra style instructions for an LLM voice")
    templates: PersonaTemplates = Field(default_factory=PersonaTemplates)

    @field_validator("wording")
    @classmethod
    def _known_words(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"item", "items"}
        if unknown:
            raise ValueError(f"unknown wording keys {sorted(unknown)}; allowed: ['item', 'items']")
        return value

    @model_validator(mode="after")
    def _emoji_list(self) -> Persona:
        if self.emoji != "none" and not self.emojis:
            raise ValueError("emoji use is not 'none' but no emojis are listed")
        return self

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def with_defaults(self, base: Persona) -> Persona:
        """This persona with every template it leaves out taken from ``base``."""
        own = self.templates.model_dump(exclude_none=True)
        merged = {**base.templates.model_dump(exclude_none=True), **own}
        wording = {**base.wording, **self.wording}
        return self.model_copy(update={"templates": PersonaTemplates(**merged), "wording": wording})


# ------------------------------------------------------------------------------ loading
def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read persona file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PersonaError(f"{path}: cannot parse persona file: {exc}") from None
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: a persona file holds one mapping (name, tone, templates, ...)")
    return data


def _validate(data: Mapping[str, Any], where: str) -> Persona:
    try:
        return Persona.model_validate(dict(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"]) or "persona"
        raise PersonaError(f"{where}: {loc}: {error['msg']}") from None


def bundled_personas() -> dict[str, Path]:
    """Name → YAML file of every bundled persona."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.yaml"))}


@cache
def _bundled(name: str) -> Persona:
    files = bundled_personas()
    if name not in files:
        raise PersonaError(f"unknown persona {name!r}; known personas: {', '.join(files)}")
    persona = _validate(_read_yaml(files[name]), str(files[name]))
    if name == DEFAULT_PERSONA:
        missing = [act for act in ACTS if getattr(persona.templates, act) is None]
        if missing:  # the default persona is every other persona's fallback
            raise PersonaError(f"the default persona lacks templates: {missing}")
        return persona
    return persona.with_defaults(_bundled(DEFAULT_PERSONA))


def load_persona(name: str = DEFAULT_PERSONA) -> Persona:
    """A bundled persona by name; an unknown name raises :class:`PersonaError` listing the known ones."""
    return _bundled(name)


def load_persona_file(path: str | Path) -> Persona:
    """A persona from a YAML file; templates it leaves out come from the default persona."""
    path = Path(path)
    return _validate(_read_yaml(path), str(path)).with_defaults(load_persona())


def resolve_persona(spec: Persona | Mapping[str, Any] | str | Path | None) -> Persona:
    """A persona from a name, a ``.yaml`` path, a mapping (inline in settings) or a Persona."""
    base = load_persona()
    if spec is None:
        return base
    if isinstance(spec, Persona):
        return spec.with_defaults(base)
    if isinstance(spec, Mapping):
        return _validate(spec, "settings persona").with_defaults(base)
    text = str(spec)
    if isinstance(spec, Path) or text.endswith((".yaml", ".yml")):
        return load_persona_file(text)
    return load_persona(text)


# ------------------------------------------------------------------------------ the user
_SHORT = re.compile(r"\b(short|brief|concise|terse|to the point|fewer words|less chat\w*)\b", re.I)
_LONG = re.compile(r"\b(more detail\w*|detailed|longer|chatty|tell me more|explain more)\b", re.I)
_NO_EMOJI = re.compile(r"\b(no|without|fewer|less|hate|stop( using)?)\s+(emoji|emojis|emoticons|smileys)\b", re.I)
_EMOJI = re.compile(r"\b(more|love|use|like)\s+(emoji|emojis)\b", re.I)


@dataclass(frozen=True, slots=True)
class UserProfile:
    """What long-term memory knows about one user. Only ever this user's: never merged."""

    likes: tuple[str, ...] = ()  # attribute ids, most important first
    dislikes: tuple[str, ...] = ()  # attribute ids
    facts: tuple[str, ...] = ()  # "vegetarian", "has kids"
    style: tuple[str, ...] = ()  # "keep it short", "no emoji"
    memories: tuple[str, ...] = field(default=())  # retrieved memory texts, most relevant first
    user_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserProfile:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or ()
            return tuple(str(v) for v in ([value] if isinstance(value, str) else value))

        return cls(strings("likes"), strings("dislikes"), strings("facts"), strings("style"),
                   strings("memories"), data.get("user_id"))

    @property
    def is_empty(self) -> bool:
        return not (self.likes or self.dislikes or self.facts or self.style or self.memories)


@dataclass(frozen=True, slots=True)
class Voice:
    """The persona as it speaks to one user: style wishes override verbosity and emoji."""

    persona: Persona
    verbosity: Verbosity
    emoji: EmojiUse

    @classmethod
    def of(cls, persona: Persona, profile: UserProfile | None = None) -> Voice:
        verbosity, emoji = persona.verbosity, persona.emoji
        for wish in profile.style if profile else ():
            if _SHORT.search(wish):
                verbosity = "terse"
            elif _LONG.search(wish):
                verbosity = "chatty"
            if _NO_EMOJI.search(wish):
                emoji = "none"
            elif _EMOJI.search(wish) and persona.emojis:
                emoji = "lots" if emoji == "some" else "some" if emoji == "none" else emoji
        return cls(persona, verbosity, emoji)


def merge_unique(*groups: Iterable[str]) -> tuple[str, ...]:
    """Concatenate, keeping the first occurrence of each string."""
    return tuple(dict.fromkeys(x for group in groups for x in group))
