"""Grounded LLM generation: the template reply, reworded in the persona's voice by a chat model.

The template reply is always written first; it fixes the structure (question, list, paths)
and is the fallback. The model only rewords its text. The reply is checked by
:class:`~crs.language.llm.grounding.GroundingCheck` and replaced by the template reply when it names an
item the policy did not choose or an attribute outside the path (and the question's options),
praises a dislike, repeats the system prompt, or when the call fails, times out or the prompt
cannot fit its budget. Error replies always use the template (they quote the problem exactly).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from crs.kb.text import phrase, title
from crs.language.llm._calls import call_with_timeout, iterate_with_deadline
from crs.language.llm.config import LLMSettings
from crs.language.llm.grounding import GroundingCheck
from crs.language.llm.prompts import GENERATION_RULES, generation_messages
from crs.language.nlg import ReplyPlan, TemplateNLG
from crs.language.reply import Reply

__all__ = ["Generation", "GroundedResponder"]

logger = logging.getLogger(__name__)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n")
_MARKUP = re.compile(r"<\s*/?\s*user_message|DRAFT REPLY|RULES\.|ABOUT THIS USER|PERSONA:", re.I)


@dataclass(frozen=True, slots=True)
class Generation:
    reply: Reply
    used_llm: bool
    fallback_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    draft: Reply
    messages: list[BaseMessage]
    items: tuple[str, ...]
    attributes: tuple[str, ...]
    dislikes: tuple[str, ...]
    secrets: tuple[str, ...]
    required: tuple[str, ...]  # what the reply must still say: the items' titles, the asked value


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _clean(text: str) -> str:
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


class GroundedResponder:
    """A :class:`~crs.language.nlg.Responder` (and streaming responder) backed by a chat model."""

    def __init__(self, model: BaseChatModel, template: TemplateNLG, *, settings: LLMSettings | None = None) -> None:
        self.model = model
        self.template = template
        self.settings = settings or LLMSettings()
        self.check = GroundingCheck(template.graph)

    # ---------------------------------------------------------------- public
    def respond(self, plan: ReplyPlan) -> Reply:
        return self.generate(plan).reply

    def generate(self, plan: ReplyPlan) -> Generation:
        """The reply, whether the model's words were used, and why not."""
        prepared, draft_only = self._prepare(plan)
        if prepared is None:
            return Generation(draft_only, False, "the template reply is used for this act")
        try:
            answer = call_with_timeout(lambda: self.model.invoke(prepared.messages), self.settings.timeout)
        except Exception as exc:
            return self._fallback(prepared, f"the model call failed: {type(exc).__name__}: {exc}")
        text = _clean(_text(answer.content))
        problem = self._problem(prepared, text, plan)
        if problem:
            return self._fallback(prepared, problem)
        return Generation(prepared.draft.model_copy(update={"text": text}), True)

    def stream_respond(self, plan: ReplyPlan) -> Iterator[Reply]:
        """Replies that grow as the model writes; the last is final (maybe the template reply)."""
        prepared, draft_only = self._prepare(plan)
        if prepared is None:
            yield draft_only
            return
        text = shown = ""
        try:
            for chunk in iterate_with_deadline(lambda: self.model.stream(prepared.messages), self.settings.timeout):
                piece = _text(chunk.content)
                if not piece:
                    continue
                text += piece
                # The last few words may be the start of a longer catalog name ("Blue" of
                # "Blue Train"): only the settled part is checked and shown.
                settled = self.check.settled(text)
                if settled == shown:
                    continue
                if self._problem(prepared, settled, plan, partial=True):
                    break  # stop showing it; the final check below replaces it
                shown = settled
                yield prepared.draft.model_copy(update={"text": settled.lstrip()})
        except Exception as exc:
            yield self._fallback(prepared, f"the model stream failed: {type(exc).__name__}: {exc}").reply
            return
        problem = self._problem(prepared, _clean(text), plan)
        if problem:
            yield self._fallback(prepared, problem).reply
        else:
            yield prepared.draft.model_copy(update={"text": _clean(text)})

    # ---------------------------------------------------------------- internals
    def _prepare(self, plan: ReplyPlan) -> tuple[_Prepared | None, Reply]:
        draft = self.template.respond(plan)
        if plan.kind == "error":
            return None, draft
        graph = self.template.graph
        dislikes = tuple(sorted(self.template.dislikes(plan)))
        items = tuple(r.id for r in draft.recommendations)
        if plan.item is not None:
            items = (*items, plan.item)
        attrs: list[str] = [*plan.accepted, *(a for r in draft.recommendations for a in r.path[:-1])]
        if plan.attribute is not None:
            attrs += [plan.attribute, *plan.options]
        attrs += [a for a in self.template.likes(plan)]
        attrs += [a for a in plan.examples if plan.kind in ("greet", "restart", "clarify")]
        allowed = tuple(a for a in dict.fromkeys(attrs) if a in graph.attr_index and a not in dislikes)
        value = {a.id: a.value for a in graph.attributes}
        try:
            messages, _ = generation_messages(
                plan, self.template.persona, draft.text,
                allowed_items=[graph.item_names[graph.item_index[i]] for i in items if i in graph.item_index],
                allowed_attrs=[value[a] for a in allowed],
                dislikes=[value[a] for a in dislikes if a in value],
                attr_values=value, budget=self.settings.budget,
            )
        except ValueError as exc:  # BudgetExceeded
            logger.info("LLM generation skipped: %s", exc)
            return None, draft
        secrets = (GENERATION_RULES,)
        required = [title(graph.item_names[graph.item_index[i]]) for i in items if i in graph.item_index]
        if draft.question is not None:
            required.append(draft.question.value)
        return _Prepared(draft, messages, items, allowed, dislikes, secrets,
                         tuple(phrase(r) for r in required)), draft

    def _problem(self, prepared: _Prepared, text: str, plan: ReplyPlan, *, partial: bool = False) -> str | None:
        if not partial and not text.strip():
            return "the model returned nothing"
        if _MARKUP.search(text):
            return "the reply contains the prompt's markup"
        if len(text) > 4 * len(prepared.draft.text) + 600:
            return "the reply is far longer than the draft"
        verdict = self.check.check(
            text, items=prepared.items, attributes=prepared.attributes, dislikes=prepared.dislikes,
            draft=prepared.draft.text, secrets=prepared.secrets,
            also_known=(self.template.persona.title,),
        )
        if not verdict.ok:
            return "; ".join(verdict.problems)
        if partial:
            return None
        if plan.previous is not None and text == plan.previous:
            return "the reply repeats the previous one"
        missing = [name for name in prepared.required if f" {name} " not in f" {phrase(text)} "]
        if missing:
            return f"the reply leaves out {', '.join(repr(m) for m in missing)}"
        sentences = [phrase(x) for x in _SENTENCES.split(text) if phrase(x)]
        if len(sentences) != len(set(sentences)):
            return "the reply repeats itself"
        return None

    def _fallback(self, prepared: _Prepared, reason: str) -> Generation:
        logger.info("LLM reply replaced by the template reply: %s", reason)
        return Generation(prepared.draft, False, reason)

