"""What the bot says back: the typed reply every front door (API, CLI, web, bots) receives."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crs.reasoning.state import ActionKind

__all__ = ["Question", "RecommendedItem", "Reply"]


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


class Reply(BaseModel):
    """One bot turn. ``to_json()`` gives the line format that scripts read from ``crs chat --json``."""

    model_config = ConfigDict(frozen=True)

    text: str
    action: ActionKind
    question: Question | None = None
    recommendations: list[RecommendedItem] = Field(default_factory=list)
    candidates: int = 0
    turn: int = 0

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
        }
