"""Prospective reflection through an LLM (optional): a validated schema in, candidates out.

The chat model is any LangChain ``BaseChatModel``. Models with tool calling use
``with_structured_output``; others are asked for JSON, which is validated against the same
schema. Memories naming attribute ids the catalog does not have are dropped; an invalid reply
raises :class:`ReflectionError` (the caller falls back to offline reflection).
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crs.memory.reflection import Candidate
from crs.memory.session import SessionRecord

__all__ = ["LLMMemory", "ReflectionError", "ReflectionOutput", "llm_candidates"]


class ReflectionError(RuntimeError):
    """The LLM's reflection could not be used."""


class LLMMemory(BaseModel):
    """One memory the LLM distils from the session."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["like", "dislike", "fact", "style"]
    text: str = Field(min_length=1, max_length=300, description="third person, e.g. 'Is vegetarian.'")
    attribute_ids: list[str] = Field(default_factory=list, description="catalog attribute ids it is about")
    topic: str | None = Field(None, max_length=80, description="a stable key, e.g. 'diet' or 'genre:metal'")
    stated: bool = Field(False, description="the user said it outright (not inferred)")
    turns: list[int] = Field(default_factory=list, description="turn numbers it comes from")
    confidence: float = Field(0.7, ge=0, le=1)


class ReflectionOutput(BaseModel):
    """Topic-level memories about the user from one session."""

    model_config = ConfigDict(extra="forbid")

    memories: list[LLMMemory] = Field(default_factory=list, max_length=50)


_PROMPT = """You maintain long-term memory for a recommender chatbot.
From the session below, list topic-level memories about the user: likes and dislikes (with the
catalog attribute ids given), facts they said about themselves, and how they want replies
(style). Only what the user said or clearly did; no guesses. Mark stated=true when they said it
outright. Use the turn numbers shown.
Answer with JSON matching this schema: {schema}

Structured feedback: accepted attributes {accepted}; rejected attributes {rejected};
accepted item {item}.
Transcript:
{transcript}"""


def _prompt(record: SessionRecord, transcript: list[dict[str, Any]]) -> str:
    lines = [f"[turn {m.get('turn', '?')}] {m.get('role')}: {m.get('content')}" for m in transcript[-60:]]
    if not lines:
        lines = [f"[turn {t}] user: {text}" for t, text in record.messages()]
    return _PROMPT.format(
        schema=json.dumps(ReflectionOutput.model_json_schema()),
        accepted=list(record.final("accepted")), rejected=list(record.final("rejected")),
        item=record.accepted_item, transcript="\n".join(lines),
    )


def _parse(raw: Any) -> ReflectionOutput:
    if isinstance(raw, ReflectionOutput):
        return raw
    if isinstance(raw, dict):
        return ReflectionOutput.model_validate(raw)
    text = getattr(raw, "content", raw)
    if not isinstance(text, str):
        text = json.dumps(text)
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        raise ReflectionError("the model's reflection has no JSON object")
    return ReflectionOutput.model_validate_json(match.group(0))


def llm_candidates(
    model: Any,
    record: SessionRecord,
    *,
    transcript: list[dict[str, Any]] | None = None,
    known_attributes: Container[str] | None = None,
) -> list[Candidate]:
    """Candidates from an LLM's structured reflection, validated and checked against the catalog."""
    prompt = _prompt(record, transcript or [])
    try:
        try:
            runnable = model.with_structured_output(ReflectionOutput)
        except NotImplementedError:
            runnable = None
        raw = runnable.invoke(prompt) if runnable is not None else model.invoke(prompt)
        output = _parse(raw)
    except (ValidationError, ValueError) as exc:
        raise ReflectionError(f"the model's reflection does not match the schema: {exc}") from exc
    out = []
    for m in output.memories:
        attrs = tuple(a for a in m.attribute_ids if known_attributes is None or a in known_attributes)
        if m.attribute_ids and not attrs:
            continue  # about things the catalog does not have: not usable as a preference
        topic = m.topic or (f"pref:{attrs[0]}" if m.kind in ("like", "dislike") and attrs else None)
        out.append(Candidate(
            kind=m.kind, text=m.text.strip(), attribute_ids=attrs, topic=topic, explicit=m.stated,
            turns=tuple(sorted(set(m.turns))), confidence=m.confidence,
            key=f"llm:{m.kind}:{topic}:{m.text.strip().lower()}",
        ))
    return out
