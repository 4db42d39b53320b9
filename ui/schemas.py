"""The HTTP API's request and response bodies (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator

from crs import Reply, UserAction
from crs.reasoning.state import ActionKind

__all__ = [
    "ID_PATTERN",
    "ChatRequest",
    "ErrorBody",
    "ForgetReport",
    "MemoryOut",
    "PendingOut",
    "QuestionOut",
    "RecommendationOut",
    "ReplyOut",
    "ShownItemOut",
    "chat_request",
    "reply_out",
]

#: user, session and memory ids: what a bot's ids look like, and nothing that needs escaping
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatRequest(_Strict):
    """One turn: either ``text`` (what the person typed) or ``action`` (a button they pressed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["text"]}, {"required": ["action"]}]})

    user_id: str = Field(pattern=ID_PATTERN, description="the person, in your tenant's own ids")
    session_id: str = Field(pattern=ID_PATTERN, description="the conversation; a new id starts a new one")
    # Either field may be left out, but never sent as null: the default (None) is not validated,
    # an explicit null is, and fails, as the schema says.
    text: Annotated[str, StringConstraints(min_length=1, pattern=r"\S")] = Field(  # type: ignore[assignment]
        None, description="the person's message (not only spaces)")
    action: UserAction = Field(None, description="a structured action instead of text")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_of(self) -> ChatRequest:
        if (self.text is None) == (self.action is None):
            raise ValueError("give exactly one of 'text' or 'action'")
        return self


def chat_request(max_chars: int) -> type[ChatRequest]:
    """The request model of a server whose messages may have at most ``max_chars`` characters."""
    # the constraints sit on the string itself: on the optional field they would also meet null
    constrained = Annotated[str, StringConstraints(min_length=1, max_length=max_chars, pattern=r"\S")]
    text = (constrained, Field(None, description="the person's message (not only spaces)"))
    return create_model("ChatRequest", __base__=ChatRequest, text=text)  # type: ignore[call-overload, no-any-return]


class QuestionOut(_Strict):
    facet: str
    value: str
    options: list[str]
    option_ids: list[str] = Field(description="attribute ids of options, for a 'attributes' action")


class RecommendationOut(_Strict):
    id: str
    name: str
    why: str


class ShownItemOut(_Strict):
    id: str
    name: str


class PendingOut(_Strict):
    """What is still open under a clarification or an explanation: a question, or a list."""

    question: QuestionOut | None
    recommendations: list[ShownItemOut]


class ReplyOut(_Strict):
    """The reply object of ``crs chat --json``, with the questions' option ids for buttons."""

    text: str
    action: ActionKind  # every kind a reply can have, memory replies included
    question: QuestionOut | None
    recommendations: list[RecommendationOut]
    candidates: int
    turn: int
    pending: PendingOut | None


def reply_out(reply: Reply) -> dict[str, Any]:
    body = reply.to_json()
    if reply.question is not None:
        body["question"]["option_ids"] = list(reply.question.option_ids)
    pending = reply.pending
    if pending is not None and pending.question is not None and body.get("pending"):
        body["pending"]["question"]["option_ids"] = list(pending.question.option_ids)
    return body


class MemoryOut(_Strict):
    id: str
    kind: str
    text: str
    attribute_ids: list[str]
    item_ids: list[str]
    explicit: bool = Field(description="stated by the person, not inferred")
    session_id: str
    created_at: datetime
    confidence: float


class ForgetReport(_Strict):
    user_id: str
    deleted: dict[str, int] = Field(description="what was removed, by kind")
    not_scrubbed: list[str] = Field(default_factory=list,
                                    description="files only a memory server can scrub (deleted through its API)")


class ErrorDetail(BaseModel):
    where: str
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="a stable machine-readable name, e.g. 'invalid_json'")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo
