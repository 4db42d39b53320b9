"""Understanding and wording: the offline parser and lexicon, template replies, personas and optional LLMs.

This layer imports ``crs.kb``, ``crs.reasoning`` and (for token counting) ``crs.memory.tokens``.
"""

from crs.language.personas import Persona, load_persona
from crs.language.reply import Question, RecommendedItem, Reply

__all__ = ["Persona", "Question", "RecommendedItem", "Reply", "load_persona"]
