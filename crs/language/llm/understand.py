"""LLM understanding: structured output validated against the catalog, the offline parser as fallback.

The model returns :class:`LLMFeedback` (through ``with_structured_output`` where the model
supports it, else as JSON in its text). It is then validated with the catalog as pydantic
validation context: every attribute must be an attribute id of the catalog (or a value or
synonym naming exactly one attribute), every item an item id of the catalog or the name of a
shown item. An invented attribute or item makes the whole reading invalid, and the offline
parser reads the message instead; so do a failed call, a timeout and an ``unknown`` reading.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from crs.kb.graph import KnowledgeGraph
from crs.language.llm._calls import call_with_timeout
from crs.language.llm.budget import fit_lines
from crs.language.llm.config import LLMSettings
from crs.language.llm.prompts import understanding_messages
from crs.language.nlu import NLUContext, OfflineNLU, Understander
from crs.reasoning.state import Feedback

__all__ = ["CatalogVocabulary", "InventedValue", "LLMFeedback", "LLMUnderstander"]

logger = logging.getLogger(__name__)
_JSON = re.compile(r"\{.*\}", re.S)


class InventedValue(ValueError):
    """The model named an attribute or item that the catalog does not have."""


class CatalogVocabulary:
    """Resolves what a model wrote to catalog ids, or raises :class:`InventedValue`."""

    def __init__(self, graph: KnowledgeGraph) -> None:
        self.graph = graph
        by_word: dict[str, set[str]] = {}
        for attr in graph.attributes:
            for form in (attr.id, attr.value, *attr.synonyms):
                by_word.setdefault(form.casefold().strip(), set()).add(attr.id)
        self._attrs = {w: next(iter(ids)) for w, ids in by_word.items() if len(ids) == 1}
        self._attrs.update({a.casefold(): a for a in graph.attr_ids})

    def attribute(self, value: str) -> str:
        found = self._attrs.get(str(value).casefold().strip())
        if found is None:
            raise InventedValue(f"{value!r} is not an attribute of the catalog")
        return found

    def item(self, value: str, shown: tuple[str, ...]) -> str:
        value = str(value).strip()
        if value in self.graph.item_index:
            return value
        names = {self.graph.item_names[self.graph.item_index[i]].casefold(): i
                 for i in shown if i in self.graph.item_index}
        if value.casefold() in names:
            return names[value.casefold()]
        raise InventedValue(f"{value!r} is not an item of the catalog")


def _ctx(info: ValidationInfo) -> tuple[CatalogVocabulary | None, tuple[str, ...]]:
    context = info.context or {}
    return context.get("vocabulary"), tuple(context.get("shown", ()))


def _resolved(values: list[str], info: ValidationInfo, kind: Literal["attribute", "item"]) -> list[str]:
    """Catalog ids for what the model wrote, without repeats (unchanged without a catalog);
    an invented value becomes the validation error that rejects the whole reading."""
    vocabulary, shown = _ctx(info)
    if vocabulary is None:
        return values
    try:
        ids = (vocabulary.attribute(v) if kind == "attribute" else vocabulary.item(v, shown) for v in values)
        return list(dict.fromkeys(ids))
    except InventedValue as exc:
        raise ValueError(str(exc)) from None


class LLMFeedback(BaseModel):
    """What the model reads in a message. Validated against the catalog when given as context."""

    model_config = ConfigDict(extra="ignore")

    intent: Literal["inform", "recommend_now", "restart", "why", "greet", "thanks", "unknown"] = "inform"
    accept_attributes: list[str] = Field(default_factory=list, description="attribute ids the user wants")
    reject_attributes: list[str] = Field(default_factory=list, description="attribute ids the user does not want")
    accept_item: str | None = Field(None, description="item id of a shown item the user takes")
    reject_items: list[str] = Field(default_factory=list, description="item ids of shown items the user rejects")
    about_item: str | None = Field(None, description="item id the user asks 'why' about")

    @field_validator("accept_attributes", "reject_attributes", mode="after")
    @classmethod
    def _attributes(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _resolved(value, info, "attribute")

    @field_validator("reject_items", mode="after")
    @classmethod
    def _items(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _resolved(value, info, "item")

    @field_validator("accept_item", "about_item", mode="after")
    @classmethod
    def _item(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not str(value).strip():
            return None
        return _resolved([value], info, "item")[0]

    def to_feedback(self) -> Feedback:
        accept = tuple(self.accept_attributes)
        reject = tuple(a for a in self.reject_attributes if a not in accept)
        if self.intent == "why":
            return Feedback(intent="why", about_item=self.about_item)
        if self.intent == "restart":
            return Feedback(accept, reject, intent="restart")
        items = tuple(i for i in self.reject_items if i != self.accept_item)
        intent = self.intent
        if intent == "recommend_now" and self.accept_item is not None:
            intent = "inform"
        if intent in ("greet", "thanks", "unknown") and (accept or reject or self.accept_item or items):
            intent = "inform"
        return Feedback(accept, reject, self.accept_item, items, intent)


class LLMUnderstander:
    """An :class:`~crs.language.nlu.Understander` backed by a chat model, with the offline parser behind it."""

    def __init__(
        self,
        model: BaseChatModel,
        graph: KnowledgeGraph,
        fallback: Understander | None = None,
        *,
        settings: LLMSettings | None = None,
    ) -> None:
        self.model = model
        self.graph = graph
        self.fallback = fallback or OfflineNLU(graph)
        self.settings = settings or LLMSettings()
        self.vocabulary = CatalogVocabulary(graph)
        self._structured: Any = None
        try:
            self._structured = model.with_structured_output(LLMFeedback)
        except (NotImplementedError, AttributeError, TypeError, ValueError):
            self._structured = None  # the model has no tool calling / JSON mode: parse its text

    def understand(self, text: str, context: NLUContext) -> Feedback:
        try:
            reading = self.read(text, context)
        except Exception as exc:  # a failed, late or invented reading: the offline parser decides
            logger.info("LLM understanding fell back to the offline parser: %s", exc)
            return self.fallback.understand(text, context)
        offline = self.fallback.understand(text, context)
        if reading.intent == "unknown" and reading.is_empty:
            return offline
        if offline.like_items or offline.want_items:  # catalog names: matched exactly, offline
            reading = replace(reading, like_items=offline.like_items, want_items=offline.want_items,
                              intent="inform" if reading.intent == "unknown" else reading.intent)
        return reading

    def read(self, text: str, context: NLUContext) -> Feedback:
        """The model's reading, validated; raises on an invented id, a timeout or a failed call."""
        messages = understanding_messages(
            text, vocabulary=self._vocabulary_lines(text, context),
            shown=[(i, self.graph.item_names[self.graph.item_index[i]])
                   for i in context.recommended if i in self.graph.item_index],
            question=context.question,
        )
        raw = call_with_timeout(lambda: self._call(messages), self.settings.timeout)
        data = raw.model_dump() if isinstance(raw, BaseModel) else raw
        try:
            parsed = LLMFeedback.model_validate(
                data, context={"vocabulary": self.vocabulary, "shown": context.recommended})
        except ValidationError as exc:
            raise InventedValue(exc.errors()[0]["msg"]) from None
        return parsed.to_feedback()

    def _call(self, messages: Any) -> Any:
        if self._structured is not None:
            return self._structured.invoke(messages)
        content = self.model.invoke(messages).content
        text = content if isinstance(content, str) else json.dumps(content)
        found = _JSON.search(text)
        if found is None:
            raise ValueError("the model's answer holds no JSON object")
        return json.loads(found.group(0))

    def _vocabulary_lines(self, text: str, context: NLUContext) -> list[str]:
        """Catalog words for the prompt: those in play first, then those the message shares a word
        with, then the commonest; cut to ``budget.vocabulary`` tokens."""
        g = self.graph
        words = set(re.findall(r"[^\W_]+", text.casefold()))
        sizes = g.attr_items.indptr[1:] - g.attr_items.indptr[:-1]
        in_play = [a for a in (context.question, *context.options, *context.accepted) if a in g.attr_index]
        mentioned = [a.id for a in g.attributes
                     if words & set(re.findall(r"[^\W_]+", " ".join((a.value, *a.synonyms)).casefold()))]
        common = [g.attr_ids[i] for i in sorted(range(g.n_attributes), key=lambda i: -int(sizes[i]))]
        attrs = (g.attributes[g.attr_index[a]] for a in dict.fromkeys([*in_play, *mentioned, *common]))
        lines = (a.id + (f" ({', '.join(a.synonyms[:3])})" if a.synonyms else "") for a in attrs)
        return fit_lines(lines, self.settings.budget.vocabulary, self.settings.budget.encoding)
