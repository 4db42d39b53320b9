"""Optional LLM backends: understanding, grounded generation, prompts and token budgets.

Nothing here is needed on the default path. Provider packages are imported only when a
provider is used, and a missing one fails with :class:`MissingExtraError` naming the extra.
Pass any langchain-core ``BaseChatModel`` in code, or name a provider in the settings::

    [llm]
    provider = "local"     # or "openai", "ollama", "anthropic"
"""

from crs.language.llm.budget import TRUNCATION_ORDER, BudgetExceeded, fit_prompt
from crs.language.llm.config import LLMSettings, TokenBudget
from crs.language.llm.generate import Generation, GroundedResponder
from crs.language.llm.grounding import GroundingCheck, Verdict
from crs.language.llm.providers import PROVIDERS, MissingExtraError, load_chat_model
from crs.language.llm.understand import LLMFeedback, LLMUnderstander

__all__ = [
    "PROVIDERS",
    "TRUNCATION_ORDER",
    "BudgetExceeded",
    "Generation",
    "GroundedResponder",
    "GroundingCheck",
    "LLMFeedback",
    "LLMSettings",
    "LLMUnderstander",
    "MissingExtraError",
    "TokenBudget",
    "Verdict",
    "fit_prompt",
    "load_chat_model",
]
