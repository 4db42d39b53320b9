"""An optional LLM-as-judge: any LangChain chat model scores each bot reply on a pointwise rubric.

Off by default (``crs eval dialogues --judge openai:gpt-4o-mini``). The rubric has four
criteria, each scored 1 to 5: relevance to what the person said, clarity, consistency with
the bot's persona, and grounding (it claims nothing the catalog or the conversation does not
support). A reply the model does not score in the asked JSON is counted as unscored, never
guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

__all__ = ["CRITERIA", "JudgeScore", "LLMJudge", "mean_scores"]

CRITERIA = ("relevance", "clarity", "persona", "grounding")

_SYSTEM = """You grade one reply of a recommender chatbot. Score each criterion from 1 (bad) to 5 (excellent):
- relevance: the reply responds to what the person just said.
- clarity: it is easy to understand and to answer.
- persona: it keeps the bot's persona ({persona}).
- grounding: every claim about items or the person's tastes is supported by the conversation or the items shown.
Answer with JSON only:
{{"relevance": n, "clarity": n, "persona": n, "grounding": n, "comment": "one short sentence"}}"""


@dataclass(frozen=True, slots=True)
class JudgeScore:
    scores: dict[str, int]  # criterion → 1..5; empty when the judge's answer could not be read
    comment: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "comment": self.comment, "error": self.error}


class LLMJudge:
    """Scores replies with ``model``; ``persona`` describes the voice the bot should keep."""

    def __init__(self, model: BaseChatModel, *, persona: str = "neutral and helpful") -> None:
        self.model = model
        self.persona = persona

    def score(self, history: Sequence[tuple[str, str]], reply: str, *, persona: str | None = None) -> JudgeScore:
        convo = "\n".join(f"{role}: {text}" for role, text in history[-8:])
        prompt = f"Conversation so far:\n{convo or '(none)'}\n\nReply to grade:\n{reply}"
        messages = [SystemMessage(_SYSTEM.format(persona=persona or self.persona)), HumanMessage(prompt)]
        try:
            answer = self.model.invoke(messages)
        except Exception as exc:  # a judge failure is reported, never fatal to the run
            return JudgeScore({}, error=f"the judge model failed: {type(exc).__name__}: {exc}")
        return _parse(str(answer.content))


def _parse(text: str) -> JudgeScore:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        data = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return JudgeScore({}, error=f"not a JSON object: {text[:120]!r}")
    scores: dict[str, int] = {}
    for c in CRITERIA:
        value = data.get(c)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 5:
            return JudgeScore({}, error=f"criterion {c!r} is not a score from 1 to 5: {value!r}")
        scores[c] = round(value)
    return JudgeScore(scores, comment=str(data.get("comment", ""))[:300])


def mean_scores(scores: Sequence[JudgeScore]) -> dict[str, float | int]:
    """Per-criterion means over the scored replies, and how many were (un)scored."""
    scored = [s for s in scores if s.scores]
    out: dict[str, float | int] = {c: round(sum(s.scores[c] for s in scored) / len(scored), 3) for c in CRITERIA} \
        if scored else {}
    out["scored"] = len(scored)
    out["unscored"] = len(scores) - len(scored)
    return out
