"""From a user's currently valid memories to a profile and a soft prior for the engine.

The prior is a per-attribute log-odds term: with ``p`` the remembered chance that what the user
wants has attribute ``a`` and ``b`` its base rate, the weight is ``logit(p) − logit(b)``. Added
to the logits of every item having ``a``, that is the naive-Bayes update of the item scores
(the terms for attributes an item lacks are the same for all items up to a constant that the
softmax drops). ``p`` is a smoothed count of the evidence in valid memories, each weighted by
confidence and recency. It is a soft term only: nothing is filtered, and expired memories
(``valid_to`` set) never count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from crs.kb.graph import KnowledgeGraph
from crs.memory.config import ProfileSettings
from crs.memory.entry import MemoryEntry, utcnow
from crs.memory.tokens import fit_to_budget

__all__ = ["Profile", "ProfileSettings", "base_rates", "build_profile"]


def base_rates(graph: KnowledgeGraph) -> dict[str, float]:
    """Interaction-weighted share of each attribute: what a random wanted item has, a priori.

    Weighted by popularity because the scorer already prefers popular items; the prior then
    says only how this user differs from everyone.
    """
    pop = np.asarray(graph.popularity, dtype=np.float64) + 1.0
    total = float(pop.sum())
    sizes = np.diff(graph.attr_items.indptr)
    owners = np.repeat(np.arange(graph.n_attributes), sizes)
    mass = np.bincount(owners, weights=pop[graph.attr_items.indices], minlength=graph.n_attributes)
    rates = np.clip(mass / total, 1e-4, 1 - 1e-4)
    return {a: float(r) for a, r in zip(graph.attr_ids, rates.tolist(), strict=True)}


@dataclass(frozen=True)
class Profile:
    """What is remembered about one user now, and the prior it implies.

    Its ``likes``/``dislikes``/``facts``/``style``/``memories``/``user_id`` fields have the
    shape of ``crs.language.personas.UserProfile``, so the reply writer can read it directly.
    """

    user_id: str | None = None
    likes: tuple[str, ...] = ()  # attribute ids with a positive weight, strongest first
    dislikes: tuple[str, ...] = ()  # said no to or stated, with a negative weight, strongest first
    avoid: tuple[str, ...] = ()  # stated dislikes ("I'm done with metal"): kept out of lists
    facts: tuple[str, ...] = ()  # "Is vegetarian.", newest first
    style: tuple[str, ...] = ()  # "Prefers short, brief replies.", newest first
    memories: tuple[str, ...] = ()  # memory texts for generation, within the token budget
    prior: tuple[tuple[str, float], ...] = ()  # (attribute id, weight) for Engine.start
    items: tuple[str, ...] = ()  # items chosen before, newest first
    entries: int = 0  # valid memories behind this profile
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.likes or self.dislikes or self.facts or self.style or self.memories)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.prior)

    def name(self, attribute_id: str) -> str:
        return self.names.get(attribute_id) or attribute_id.split(":", 1)[-1]

    @property
    def top_like(self) -> str | None:
        """The remembered liked attribute to confirm rather than ask about, if any."""
        return self.likes[0] if self.likes else None

    def confirm_prompt(self) -> str | None:
        """A question that confirms instead of asks: "Last time you were into X, still in that mood?"."""
        top = self.top_like
        return None if top is None else f"Last time you were into {self.name(top)}, still in that mood?"

    def text(self) -> str:
        """A short description for generation (bound it with :func:`memory.fit_to_budget`)."""
        parts = []
        if self.likes:
            parts.append("Likes: " + ", ".join(self.name(a) for a in self.likes[:8]) + ".")
        if self.dislikes:
            parts.append("Not into: " + ", ".join(self.name(a) for a in self.dislikes[:8]) + ".")
        parts.extend(self.facts)
        parts.extend(self.style)
        return " ".join(parts)


def _recency(entry: MemoryEntry, now: datetime, half_life_days: float) -> float:
    age = max(0.0, (now - entry.valid_from).total_seconds()) / 86400.0
    return math.pow(0.5, age / half_life_days)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def build_profile(
    user_id: str,
    entries: Iterable[MemoryEntry],
    *,
    rates: Mapping[str, float] | None = None,
    settings: ProfileSettings | None = None,
    names: Mapping[str, str] | None = None,
    now: datetime | None = None,
    memory_budget: int = 0,
) -> Profile:
    """The profile of the currently valid entries (expired ones are ignored here too).

    ``memory_budget`` > 0 fills :attr:`Profile.memories` with style, fact and session-summary
    texts (newest first) that fit in that many tokens.
    """
    s = settings or ProfileSettings()
    now = now or utcnow()
    valid = [e for e in entries if e.valid_to is None and e.user_id == user_id]
    yes: dict[str, float] = {}
    no: dict[str, float] = {}
    said_no: set[str] = set()  # attributes with direct negative evidence (not only inferred)
    stated: dict[str, int] = {}  # +1 stated like, -1 stated dislike: the newest statement wins
    stated_at: dict[str, datetime] = {}
    items: list[tuple[datetime, str]] = []
    for e in valid:
        if e.kind not in ("like", "dislike"):
            continue
        w = e.confidence * e.support * _recency(e, now, s.half_life_days)
        if e.explicit:
            w *= s.explicit_boost
        bucket = yes if e.kind == "like" else no
        if e.kind == "dislike":
            said_no.update(e.attribute_ids)
        for a in e.attribute_ids:
            bucket[a] = bucket.get(a, 0.0) + w
            if e.explicit and not e.item_ids and (a not in stated_at or e.valid_from >= stated_at[a]):
                stated[a], stated_at[a] = (1 if e.kind == "like" else -1), e.valid_from
        if e.kind == "like" and e.item_ids:
            items.extend((e.valid_from, i) for i in e.item_ids)
            if s.implicit_negatives and rates is not None:
                has = set(e.attribute_ids)
                for a in rates:
                    if a not in has:
                        no[a] = no.get(a, 0.0) + w
    weights: dict[str, float] = {}
    for a in set(yes) | set(no):
        b = (rates or {}).get(a, 0.5)
        y, n = yes.get(a, 0.0), no.get(a, 0.0)
        p = (y + s.smoothing * b) / (y + n + s.smoothing)
        p = min(max(p, 1e-3), 1 - 1e-3)
        d = _logit(p) - _logit(b)
        w = d * (s.like_scale if d > 0 else s.dislike_scale)
        # A statement wins over inferred evidence: "done with metal" is never a positive weight.
        if stated.get(a) == -1:
            w = min(w, -s.min_weight * 2)
        elif stated.get(a) == 1:
            w = max(w, s.min_weight * 2)
        w = max(-s.max_weight, min(s.max_weight, w))
        if abs(w) >= s.min_weight:
            weights[a] = w
    ranked = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[: s.max_prior]
    # What the person likes and dislikes is read from every weight, not only those kept for
    # the prior, and a dislike needs a "no" or a statement: an attribute the chosen items lack
    # weighs against it in the scores, but nobody said they were not into it.
    by_weight = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    likes = tuple(a for a, w in by_weight if w > 0)
    dislikes = tuple(a for a, w in reversed(by_weight) if w < 0 and a in said_no)
    avoid = tuple(a for a in dislikes if stated.get(a) == -1)
    facts = _newest_texts(valid, "fact")
    style = _newest_texts(valid, "style")
    summaries = _newest_texts(valid, "session_summary")
    items.sort(reverse=True)
    return Profile(
        user_id=user_id,
        likes=likes,
        dislikes=dislikes,
        avoid=avoid,
        facts=facts,
        style=style,
        memories=tuple(fit_to_budget([*style, *facts, *summaries], memory_budget)) if memory_budget else (),
        prior=tuple((a, round(w, 4)) for a, w in ranked),
        items=tuple(dict.fromkeys(i for _, i in items)),
        entries=len(valid),
        names=dict(names or {}),
    )


def _newest_texts(entries: Sequence[MemoryEntry], kind: str) -> tuple[str, ...]:
    chosen = sorted((e for e in entries if e.kind == kind), key=lambda e: e.valid_from, reverse=True)
    return tuple(dict.fromkeys(e.text for e in chosen))
