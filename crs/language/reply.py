"""What the bot says back: the typed reply every front door (API, CLI, web, bots) receives."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crs.reasoning.state import ActionKind

__all__ = ["Pending", "Question", "RecommendedItem", "Reply"]


class Question(BaseModel):
    model_config = ConfigDict(frozen=True)

    attribute: str = Field(description="attribute id, e.g. 'genre:jazz'")
    facet: str
    value: str
    options: list[str] = Field(default_factory=list, description="values offered, asked one first")
    option_ids: list[str] = Field(default_factory=list, description="attribute ids of ``options``, in order")


class RecommendedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    why: str
    path: list[str] = Field(default_factory=list, description="attribute ids, then the item id")


class Pending(BaseModel):
    """What is still open after a reply about something else (a clarification, an explanation,
    an error): the question waiting for an answer, or the list waiting for a choice. A front
    door keeps offering its quick replies."""

    model_config = ConfigDict(frozen=True)

    question: Question | None = None
    recommendations: list[RecommendedItem] = Field(default_factory=list)


class Reply(BaseModel):
    """One bot turn. ``to_json()`` gives the line format that scripts read from ``crs chat --json``."""

    model_config = ConfigDict(frozen=True)

    text: str
    action: ActionKind
    question: Question | None = None
    recommendations: list[RecommendedItem] = Field(default_factory=list)
    candidates: int = 0
    turn: int = 0
    pending: Pending | None = None

    @property
    def open_question(self) -> Question | None:
        """The question the person may answer now: this reply's, or the one still pending."""
        if self.question is not None:
            return self.question
        return self.pending.question if self.pending is not None else None

    @property
    def open_recommendations(self) -> list[RecommendedItem]:
        """The list the person may choose from now: this reply's, or the one still pending."""
        if self.action == "recommend":
            return list(self.recommendations)
        return list(self.pending.recommendations) if self.pending is not None else []

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "action": self.action,
            "question": None
            if self.question is None
            else {"facet": self.question.facet, "value": self.question.value,
                  "options": list(self.question.options)},
            "recommendations": [{"id": r.id, "name": r.name, "why": r.why} for r in self.recommendations],
            "candidates": self.candidates,
            "turn": self.turn,
            "pending": None
            if self.pending is None
            else {"question": None if self.pending.question is None else {
                      "facet": self.pending.question.facet, "value": self.pending.question.value,
                      "options": list(self.pending.question.options)},
                  "recommendations": [{"id": r.id, "name": r.name} for r in self.pending.recommendations]},
        }
