"""From a user's currently valid memories to a profile and a soft prior for the engine.

The prior is a per-attribute log-odds term: with ``p`` the remembered chance that what the user
wants has attribute ``a`` and ``b`` its base rate, the weight is ``logit(p) − logit(b)``. Added
to the logits of every item having ``a``, that is the naive-Bayes update of the item scores
(the terms for attributes an item lacks are the same for all items up to a constant that the
softmax drops). ``p`` is a smoothed count of the evidence in valid memories, each weighted by
confidence and recency, from choices; a stated preference adds a fixed, stronger term. It is a
soft term only: nothing is filtered, and expired memories
(``valid_to`` set) never count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from crs.kb.graph import KnowledgeGraph
from crs.memory.config import ProfileSettings
from crs.memory.entry import MemoryEntry, utcnow
from crs.memory.neighbours import ITEM_PRIOR
from crs.memory.tokens import fit_to_budget

__all__ = ["Profile", "ProfileSettings", "base_rates", "build_profile", "said_verb"]


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
    likes: tuple[str, ...] = ()  # stated likes (newest first), then likes established by choices
    dislikes: tuple[str, ...] = ()  # stated dislikes, newest first
    avoid: tuple[str, ...] = ()  # stated dislikes ("I'm done with metal"): kept out of lists
    facts: tuple[str, ...] = ()  # "Is vegetarian.", newest first
    style: tuple[str, ...] = ()  # "Prefers short, brief replies.", newest first
    memories: tuple[str, ...] = ()  # memory texts for generation, within the token budget
    #: (attribute id or "item:<item id>", weight) for Engine.start
    prior: tuple[tuple[str, float], ...] = ()
    items: tuple[str, ...] = ()  # items chosen before, newest first
    entries: int = 0  # valid memories behind this profile
    names: Mapping[str, str] = field(default_factory=dict)
    #: where each like and dislike comes from, so a reply can name it: a statement (attribute →
    #: how it was said: "love", "can't stand") or choices in several sessions (attribute → the
    #: chosen items' names, newest first)
    said: Mapping[str, str] = field(default_factory=dict)
    chosen: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def sources(self) -> dict[str, str]:
        """Each like's and dislike's source in words: "you said you love jazz", "like Kind of
        Blue and Blue Train, which you chose before"."""
        out = {a: f"you said you {verb} {self.name(a)}" for a, verb in self.said.items()}
        out.update({a: f"like {' and '.join(names)}, which you chose before" for a, names in self.chosen.items()})
        return out

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
        if top is None:
            return None
        return f"Last time {self.sources.get(top) or 'you were into ' + self.name(top)}. Still in that mood?"

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


_SAID_VERB = (("Loves ", "love"), ("Likes ", "like"), ("Can't stand ", "can't stand"),
              ("Done with ", "are done with"), ("Doesn't like ", "don't like"), ("Not into ", "don't like"))


def said_verb(text: str, kind: str) -> str:
    """How a stated preference was said, from its memory text ("Loves jazz." → "love")."""
    for prefix, verb in _SAID_VERB:
        if text.startswith(prefix):
            return verb
    return "like" if kind == "like" else "don't like"


def build_profile(
    user_id: str,
    entries: Iterable[MemoryEntry],
    *,
    rates: Mapping[str, float] | None = None,
    settings: ProfileSettings | None = None,
    names: Mapping[str, str] | None = None,
    item_names: Mapping[str, str] | None = None,
    now: datetime | None = None,
    memory_budget: int = 0,
    neighbours: Callable[[Sequence[str], int], Mapping[str, float]] | None = None,
) -> Profile:
    """The profile of the currently valid entries (expired ones are ignored here too).

    - Stated preferences are the strongest: the newest statement on an attribute wins, and a
      stated like or dislike is a like or dislike of the profile, with "you said ..." as source.
    - Choices (and items named as examples) are weak evidence about their attributes, weighted
      by recency; an attribute shared by choices of at least ``established_sessions`` different
      sessions becomes a like, with the items as source. Below that it only nudges the prior.
      A choice made before the person said they are done with one of its attributes is no
      evidence any more (it is still an item chosen before).
    - Nothing else counts (answers to one search's questions are never lasting evidence).

    ``neighbours`` (``ItemNeighbours.scores``), with ``settings.item_weight`` > 0, adds an item
    term to the prior: ``item_weight`` × the neighbour score of the items people chose along
    with the user's choices. It is weak evidence like the choices' attributes: never a like,
    never named in a reply.

    ``memory_budget`` > 0 fills :attr:`Profile.memories` with style, fact and session-summary
    texts (newest first) that fit in that many tokens.
    """
    s = settings or ProfileSettings()
    now = now or utcnow()
    valid = [e for e in entries if e.valid_to is None and e.user_id == user_id]
    names = dict(names or {})
    yes: dict[str, float] = {}
    no: dict[str, float] = {}
    sessions: dict[str, set[str]] = {}
    by_attr: dict[str, list[tuple[datetime, str]]] = {}  # attribute → (when, chosen item)
    stated: dict[str, tuple[datetime, int, str]] = {}  # attribute → (when, +1/-1, how it was said)
    items: list[tuple[datetime, str]] = []
    for e in valid:
        if e.kind in ("like", "dislike") and e.evidence_source == "stated":
            for a in e.attribute_ids:
                if a not in stated or e.valid_from >= stated[a][0]:
                    stated[a] = (e.valid_from, 1 if e.kind == "like" else -1, said_verb(e.text, e.kind))
    for e in valid:
        source = e.evidence_source
        if e.kind == "like" and source in ("chosen", "named"):
            if source == "chosen":
                items.extend((e.valid_from, i) for i in e.item_ids)
            if s.retire_on_change_of_mind and any(
                    a in stated and stated[a][1] < 0 and stated[a][0] > e.valid_from for a in e.attribute_ids):
                # A change of mind since ("I'm done with jazz"): what was chosen for it says
                # nothing about taste now. Still remembered as chosen (not offered again).
                continue
            w = e.confidence * _recency(e, now, s.half_life_days)
            for a in e.attribute_ids:
                yes[a] = yes.get(a, 0.0) + w
                sessions.setdefault(a, set()).add(e.session_id or e.id)
                if source == "chosen":
                    by_attr.setdefault(a, []).extend((e.valid_from, i) for i in e.item_ids)
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
        weights[a] = d * (s.like_scale if d > 0 else s.dislike_scale)
    for a, (_, sign, _verb) in stated.items():  # a statement wins over what choices suggest
        weights[a] = max(weights.get(a, 0.0), 0.0) + s.stated_like if sign > 0 else -s.stated_dislike
    weights = {a: max(-s.max_weight, min(s.max_weight, w)) for a, w in weights.items() if abs(w) >= s.min_weight}
    ranked = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[: s.max_prior]

    stated_likes = sorted((a for a, (_, sign, _v) in stated.items() if sign > 0), key=lambda a: stated[a][0],
                          reverse=True)
    established = sorted(
        (a for a, ss in sessions.items()
         if len(ss) >= s.established_sessions and a not in stated and weights.get(a, 0.0) > 0 and by_attr.get(a)),
        key=lambda a: (-weights[a], a))
    chosen_names = {a: tuple((item_names or {}).get(i, i) for i in dict.fromkeys(
        i for _, i in sorted(by_attr[a], reverse=True)))[:2] for a in established}
    dislikes = tuple(sorted((a for a, (_, sign, _v) in stated.items() if sign < 0), key=lambda a: stated[a][0],
                            reverse=True))
    facts = _newest_texts(valid, "fact")
    style = _newest_texts(valid, "style")
    summaries = _newest_texts(valid, "session_summary")
    items.sort(reverse=True)
    chosen_items = tuple(dict.fromkeys(i for _, i in items))
    item_terms: list[tuple[str, float]] = []
    if neighbours is not None and s.item_weight > 0 and chosen_items:
        item_terms = [(ITEM_PRIOR + i, round(s.item_weight * score, 4))
                      for i, score in neighbours(chosen_items, s.item_neighbours).items()]
    return Profile(
        user_id=user_id,
        likes=(*stated_likes, *established),
        dislikes=dislikes,
        avoid=dislikes,
        facts=facts,
        style=style,
        memories=tuple(fit_to_budget([*style, *facts, *summaries], memory_budget)) if memory_budget else (),
        prior=(*((a, round(w, 4)) for a, w in ranked), *item_terms),
        items=chosen_items,
        entries=len(valid),
        names=names,
        said={a: verb for a, (_, _s, verb) in stated.items()},
        chosen=chosen_names,
    )


def _newest_texts(entries: Sequence[MemoryEntry], kind: str) -> tuple[str, ...]:
    chosen = sorted((e for e in entries if e.kind == kind), key=lambda e: e.valid_from, reverse=True)
    return tuple(dict.fromkeys(e.text for e in chosen))
