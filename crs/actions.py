"""Structured user actions: what a bot with buttons sends instead of text."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from crs.reasoning.state import DialogueState, Feedback

__all__ = [
    "AcceptItem",
    "AnswerQuestion",
    "ChooseAttributes",
    "RecommendNow",
    "RejectItems",
    "StartOver",
    "UserAction",
    "Why",
    "to_feedback",
]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerQuestion(_Action):
    """Yes or no to the question just asked."""

    type: Literal["answer"] = "answer"
    yes: bool


class ChooseAttributes(_Action):
    """Attribute ids the user wants (``accept``) or does not want (``reject``)."""

    type: Literal["attributes"] = "attributes"
    accept: list[str] = Field(default_factory=list)
    reject: list[str] = Field(default_factory=list)


class AcceptItem(_Action):
    type: Literal["accept_item"] = "accept_item"
    item_id: str


class RejectItems(_Action):
    """Items turned down; with ``show_more``, the next list is asked for at once ("show me more")."""

    type: Literal["reject_items"] = "reject_items"
    item_ids: list[str] = Field(min_length=1)
    show_more: bool = False


class RecommendNow(_Action):
    type: Literal["recommend_now"] = "recommend_now"


class StartOver(_Action):
    type: Literal["start_over"] = "start_over"


class Why(_Action):
    type: Literal["why"] = "why"
    item_id: str | None = None


UserAction = Annotated[
    AnswerQuestion | ChooseAttributes | AcceptItem | RejectItems | RecommendNow | StartOver | Why,
    Field(discriminator="type"),
]


class NoPendingQuestion(ValueError):
    pass


def to_feedback(action: _Action, dialogue: DialogueState | None) -> Feedback:
    """The feedback an action stands for; a yes/no needs the pending question."""
    if isinstance(action, AnswerQuestion):
        question = dialogue.question if dialogue is not None else None
        if question is None:
            raise NoPendingQuestion("there is no pending question to answer yes or no to")
        return Feedback(accept_attributes=(question,)) if action.yes else Feedback(reject_attributes=(question,))
    if isinstance(action, ChooseAttributes):
        return Feedback(accept_attributes=tuple(action.accept), reject_attributes=tuple(action.reject))
    if isinstance(action, AcceptItem):
        return Feedback(accept_item=action.item_id)
    if isinstance(action, RejectItems):
        return Feedback(reject_items=tuple(action.item_ids), intent="recommend_now" if action.show_more else "inform")
    if isinstance(action, RecommendNow):
        return Feedback(intent="recommend_now")
    if isinstance(action, StartOver):
        return Feedback(intent="restart")
    if isinstance(action, Why):
        return Feedback(intent="why", about_item=action.item_id)
    raise TypeError(f"not a user action: {action!r}")
