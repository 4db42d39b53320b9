"""Fitting the prompt into a token budget.

The prompt has fixed parts and flexible parts. The fixed parts are the rules, the grounding
facts (the template's draft reply, the chosen items and the path's attributes) and this
turn's user message, itself first cut to ``budget.message`` tokens. They are never cut: if
they alone exceed ``budget.total``, :class:`BudgetExceeded` is raised and the caller uses the
template reply without calling the model.

The flexible parts each have a cap (``budget.persona``, ``budget.profile``,
``budget.memories``, ``budget.history``) and share what the fixed parts leave. When they do
not all fit, they are cut in this order (:data:`TRUNCATION_ORDER`), each only as far as needed:

1. ``history``: the oldest turns go first (the newest turns are kept, without gaps);
2. ``memories``: the least relevant memories go first (they arrive most relevant first);
3. ``profile``: facts go first, then style wishes, then likes; dislikes go last (they keep
   the bot from praising what the person dislikes);
4. ``persona``: the persona's description is shortened last, token by token.

Every count uses tiktoken with an offline encoding, plus :data:`MESSAGE_OVERHEAD` tokens per
chat message for the role markers (and :data:`QUOTE_OVERHEAD` for the tags
around a user turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crs.language.llm.config import TokenBudget
from crs.language.llm.tokens import cut_to_tokens, token_count

__all__ = [
    "MESSAGE_OVERHEAD",
    "QUOTE_OVERHEAD",
    "TRUNCATION_ORDER",
    "BudgetExceeded",
    "FittedPrompt",
    "PromptParts",
    "fit_prompt",
]

TRUNCATION_ORDER = ("history", "memories", "profile", "persona")
MESSAGE_OVERHEAD = 4
QUOTE_OVERHEAD = 16  # the <user_message> tags around a user turn, and the closing instruction


class BudgetExceeded(ValueError):
    """The fixed parts of the prompt alone do not fit the budget."""


@dataclass(frozen=True, slots=True)
class PromptParts:
    fixed: str  # rules and grounding facts: never cut
    message: str  # this turn's user text (cut to budget.message first)
    persona: str = ""
    profile: tuple[str, ...] = ()  # lines, the one to keep longest first (dislikes, likes, style, facts)
    memories: tuple[str, ...] = ()  # most relevant first
    history: tuple[tuple[str, str], ...] = ()  # (role, text), oldest first


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    fixed: str
    message: str
    persona: str
    profile: tuple[str, ...]
    memories: tuple[str, ...]
    history: tuple[tuple[str, str], ...]
    cut: tuple[str, ...] = field(default=())  # the sections that lost something


def fit_lines(lines: Iterable[str], limit: int, enc: str) -> list[str]:
    """The longest prefix of ``lines`` that fits ``limit`` tokens (a newline each)."""
    kept, used = [], 0
    for line in lines:
        cost = token_count(line, enc) + 1
        if used + cost > limit:
            break
        kept.append(line)
        used += cost
    return kept


def fit_prompt(parts: PromptParts, budget: TokenBudget) -> FittedPrompt:
    """Cut the flexible parts so that the whole prompt fits ``budget.total`` (module docstring)."""
    enc = budget.encoding
    message = cut_to_tokens(parts.message, budget.message, enc)
    fixed_cost = token_count(parts.fixed, enc) + token_count(message, enc) + 2 * MESSAGE_OVERHEAD + QUOTE_OVERHEAD
    if fixed_cost > budget.total:
        raise BudgetExceeded(
            f"the rules, grounding facts and message need {fixed_cost} tokens; the budget is {budget.total}"
        )
    left = budget.total - fixed_cost
    cut: list[str] = []

    def room(cap: int) -> int:
        # Once a section was cut for want of room, the sections cut before it get nothing.
        return 0 if starved else min(cap, left)

    starved = False
    limit = room(budget.persona)
    persona = cut_to_tokens(parts.persona, limit, enc)
    left -= token_count(persona, enc)
    if persona != parts.persona:
        cut.append("persona")
        starved = limit < budget.persona

    def lines_section(name: str, lines: Sequence[str], cap: int) -> list[str]:
        nonlocal left, starved
        limit = room(cap)
        kept = fit_lines(lines, limit, enc)
        left -= sum(token_count(line, enc) + 1 for line in kept)
        if len(kept) < len(lines):
            cut.append(name)
            starved = starved or limit < cap
        return kept

    # Profile lines arrive keep-longest first; cutting from the end drops facts before dislikes.
    profile = lines_section("profile", parts.profile, budget.profile)
    memories = lines_section("memories", parts.memories, budget.memories)

    history: list[tuple[str, str]] = []
    space = room(budget.history)
    for role, text in reversed(parts.history):  # newest first; stop at the first that does not fit
        cost = token_count(text, enc) + MESSAGE_OVERHEAD + (QUOTE_OVERHEAD if role != "assistant" else 0)
        if cost > space:
            break
        history.append((role, text))
        space -= cost
    if len(history) < len(parts.history):
        cut.append("history")
    order = {name: i for i, name in enumerate(TRUNCATION_ORDER)}
    return FittedPrompt(
        parts.fixed,
        message,
        persona,
        tuple(profile),
        tuple(memories),
        tuple(reversed(history)),
        tuple(sorted(cut, key=order.__getitem__)),
    )
