"""Path reasoning over the item–attribute graph: dialogue state, scoring, question choice and the engine.

Pure computation, no input or output: this layer imports only ``crs.kb``.
"""

from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings
from crs.reasoning.state import Action, DialogueState, Feedback

__all__ = ["Action", "DialogueState", "Engine", "Feedback", "PolicySettings"]
