"""crs: a conversational recommender that asks about attributes and recommends items.

Quick start (the bundled album catalog, fully offline)::

    from crs import Recommender
    rec = Recommender.from_settings()
    print(rec.chat("ann", "s1", "something calm from the 60s").text)
"""

from crs.actions import (
    AcceptItem,
    AnswerQuestion,
    ChooseAttributes,
    RecommendNow,
    RejectItems,
    StartOver,
    UserAction,
    Why,
)
from crs.api import CheckpointError, InvalidInput, Recommender, load_knowledge
from crs.language.reply import Question, RecommendedItem, Reply
from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings
from crs.reasoning.state import Action, DialogueState, Feedback
from crs.settings import Settings, SettingsError, load_settings

__all__ = [
    "AcceptItem",
    "Action",
    "AnswerQuestion",
    "CheckpointError",
    "ChooseAttributes",
    "DialogueState",
    "Engine",
    "Feedback",
    "InvalidInput",
    "PolicySettings",
    "Question",
    "RecommendNow",
    "RecommendedItem",
    "Recommender",
    "RejectItems",
    "Reply",
    "Settings",
    "SettingsError",
    "StartOver",
    "UserAction",
    "Why",
    "load_knowledge",
    "load_settings",
]
