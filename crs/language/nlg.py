"""Offline reply writing: persona templates for every dialogue act, grounded in the graph.

:class:`TemplateNLG` is the default :class:`Responder`. It needs no language model:

* **Persona.** Every sentence comes from the persona's templates (:mod:`crs.language.personas`); the
  voice's verbosity adds openers and closers, its emoji use adds emoji.
* **Varied.** Templates rotate with the turn number, and a reply that would repeat the bot's
  previous reply word for word (``ReplyPlan.previous``) takes the next variant instead (or,
  with a single variant, gets an opener): never the identical reply twice in a row.
* **The user's profile.** Style wishes change the voice ("keep it short" → terse, "no emoji");
  explanations say "because you like X and Y" when the item has attributes the user likes;
  a disliked attribute is never praised or suggested (a recommended item that has one gets
  a plain heads-up); a remembered fact is mentioned only when it shares a word with the
  recommended items' attributes or descriptions.
* **Grounded.** Only the asked attribute and its options, the chosen items and the
  attributes of their paths (plus the user's own likes) are ever named.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from crs.kb.graph import KnowledgeGraph
from crs.kb.models import Vocabulary
from crs.language.grammar import fill, join_nouns, noun, place, predicate
from crs.language.personas import Persona, UserProfile, Voice, merge_unique, resolve_persona
from crs.language.reply import Question, RecommendedItem, Reply
from crs.reasoning.state import ActionKind, Recommendation

__all__ = [
    "ProfileSource",
    "ReplyPlan",
    "Responder",
    "StreamingResponder",
    "TemplateNLG",
    "UserProfile",
    "join_and",
]


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """Everything the reply must convey, decided before any words are chosen."""

    kind: ActionKind
    turn: int
    candidates: int = 0
    attribute: str | None = None  # asked attribute
    options: tuple[str, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    accepted: tuple[str, ...] = ()  # attribute ids on the path
    item: str | None = None  # the item accepted or explained
    problem: str | None = None  # for "error": what was wrong with the input
    examples: tuple[str, ...] = field(default=())  # attribute ids to suggest when clarifying
    profile: UserProfile | None = None  # this user's long-term profile (never another user's)
    previous: str | None = None  # the bot's previous reply in this conversation, if any
    message: str | None = None  # this turn's user text (for an LLM voice; templates ignore it)
    history: tuple[tuple[str, str], ...] = ()  # recent (role, text) turns, oldest first
    confirm: bool = False  # the question checks a remembered like ("still in that mood?")
    seeds: tuple[str, ...] = ()  # item ids named as examples this session ("like Kind of Blue")
    understood: tuple[str, ...] = ()  # attribute ids this message asked for, acknowledged briefly
    understood_not: tuple[str, ...] = ()  # attribute ids this message ruled out
    shown: int = 0  # items of the last list still on screen, waiting for a pick
    undone: bool | None = None  # "go back": True when a step was undone, False when there was none
    facet: str | None = None  # "options": the facet whose values were asked for (None: what to say)


class Responder(Protocol):
    def respond(self, plan: ReplyPlan) -> Reply: ...


@runtime_checkable
class StreamingResponder(Protocol):
    """A responder that can show its reply while it is written.

    Each yielded :class:`Reply` is the whole reply so far (so a UI replaces the message it
    shows); the last one is final, and may differ from the earlier ones entirely (an LLM
    reply that failed its grounding check is replaced by the template reply).
    """

    def respond(self, plan: ReplyPlan) -> Reply: ...

    def stream_respond(self, plan: ReplyPlan) -> Iterator[Reply]: ...


@runtime_checkable
class ProfileSource(Protocol):
    """Where the user's profile comes from (long-term memory maps its profile into this)."""

    def profile(self, user_id: str) -> UserProfile | None: ...


def join_and(values: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    values = list(values)
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " and " + values[-1]


_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "this",
        "to",
        "was",
        "with",
        "you",
        "your",
        "like",
        "likes",
        "love",
        "loves",
        "really",
        "very",
        "am",
        "not",
        "no",
    ]
)
_MAX_VARIANTS = 6
_OPTIONS_SHOWN = 12  # values named when a facet's values are asked for; the rest are counted


def _words(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall(text.casefold()):
        if w in _STOP or len(w) < 3:
            continue
        out.add(w[:-1] if len(w) > 4 and w.endswith("s") else w)
    return out


class TemplateNLG:
    """Persona template replies grounded in the graph (see the module docstring)."""

    def __init__(
        self,
        graph: KnowledgeGraph,
        vocabulary: Vocabulary | None = None,
        persona: Persona | str | None = None,
    ) -> None:
        self.graph = graph
        self.vocabulary = vocabulary
        self.persona = resolve_persona(persona)

    # ---------------------------------------------------------------- helpers
    def value(self, attr_id: str) -> str:
        return self.graph.attributes[self.graph.attr_index[attr_id]].value

    def noun(self, attr_id: str) -> str:
        """The value as said after "you like": "solo artists", "music from the 1970s"."""
        attr = self.graph.attributes[self.graph.attr_index[attr_id]]
        return noun(attr.facet, attr.value)

    def predicate(self, attr_id: str) -> str:
        """The value as said of an item: "by a band", "from the 1970s", "jazz"."""
        attr = self.graph.attributes[self.graph.attr_index[attr_id]]
        return predicate(attr.facet, attr.value)

    def _ask_value(self, attr_id: str) -> str:
        """The value as it fills a question: a country gets its "the" ("from the United States")."""
        attr = self.graph.attributes[self.graph.attr_index[attr_id]]
        return place(attr.value) if noun(attr.facet, attr.value) == f"music from {place(attr.value)}" else attr.value

    def acknowledgement(self, plan: ReplyPlan, voice: Voice, k: int) -> str:
        """What this message was understood to ask for, in a few words: "Jazz, not from the 1970s."."""
        said = [self.predicate(a) for a in self._known(plan.understood)]
        ruled_out = [self.predicate(a) for a in self._known(plan.understood_not)]
        if not said and not ruled_out:
            return ""
        parts = [*said, *(["not " + " or ".join(ruled_out)] if ruled_out else [])]
        return _capitalise(self._fmt("understood", k, voice, understood=", ".join(parts)))

    def _known(self, attr_ids: Sequence[str]) -> list[str]:
        return [a for a in attr_ids if a in self.graph.attr_index]

    def _pick(self, act: str, index: int, voice: Voice | None = None) -> str:
        persona = voice.persona if voice else self.persona
        templates = getattr(persona.templates, act) or getattr(resolve_persona(None).templates, act)
        return str(templates[index % len(templates)])

    def _fmt(self, act: str, index: int, voice: Voice, **values: object) -> str:
        words = voice.persona.wording
        return fill(self._pick(act, index, voice), item=words.get("item", "album"), items=words.get("items", "albums"),
                    **values)

    def question_text(self, attr_id: str, turn: int) -> str:
        """The catalog's question for the attribute's facet, else a default one."""
        attr = self.graph.attributes[self.graph.attr_index[attr_id]]
        spec = self.vocabulary.facets.get(attr.facet) if self.vocabulary else None
        if spec is not None and spec.question:
            return fill(spec.question, value=self._ask_value(attr_id), facet=attr.facet)
        return self._fmt("ask_default", turn, Voice.of(self.persona), value=attr.value, facet=attr.facet)

    def dislikes(self, plan: ReplyPlan) -> set[str]:
        """Disliked attributes, except those the user accepted in this very conversation."""
        if plan.profile is None:
            return set()
        return set(plan.profile.dislikes) - set(plan.accepted)

    def likes(self, plan: ReplyPlan) -> list[str]:
        """What the person likes: the qualities of the examples they named (the commonest
        first), then their remembered likes."""
        from_seeds = [a for a, _ in Counter(a for item in plan.seeds for a in self._item_attrs(item)).most_common()]
        if plan.profile is None:
            return from_seeds
        dislikes = set(plan.profile.dislikes)
        return [a for a in merge_unique(from_seeds, self._known(plan.profile.likes)) if a not in dislikes]

    def why(
        self, rec: Recommendation, plan: ReplyPlan | None = None, index: int = 0, voice: Voice | None = None
    ) -> str:
        """Why this item: the attributes of its path, and the user's likes it has.

        A like is only claimed with its source when the profile knows it (long-term memory's
        does): "you said you love jazz", "jazz, like Kind of Blue, which you chose before"; the
        qualities of an album named this session are "jazz, like Kind of Blue", never "you like".
        """
        voice = voice or Voice.of(self.persona)
        plan = plan or ReplyPlan(kind="recommend", turn=index)
        dislikes = self.dislikes(plan)
        path = [a for a in rec.path[:-1] if a in self.graph.attr_index and a not in dislikes]
        own = self._item_attrs(rec.item_id)
        fresh = [a for a in own if a not in path and a not in dislikes]
        clauses: list[str] = []
        seeded = [a for a, _ in Counter(a for i in plan.seeds for a in self._item_attrs(i)).most_common() if a in fresh]
        if seeded:
            names = [self.graph.item_names[self.graph.item(i)] for i in plan.seeds if i != rec.item_id][:2]
            if names:
                clauses.append(f"has {join_and([self.value(a) for a in seeded[:2]])}, like {join_and(names)}")
        remembered = [a for a in self._known(plan.profile.likes) if a in fresh and a not in seeded[:2]] \
            if plan.profile is not None else []
        sources = self._sources(plan)
        likes: list[str] = []
        if sources is None:  # a profile given as such: its likes are the person's likes
            likes = remembered[:2]
        else:
            said, chosen = sources
            stated = [a for a in remembered[:2] if a in said]
            if stated and not path and not clauses:
                clauses.append(f"has {join_and([self.value(a) for a in stated])}")
            clauses += [f"you said you {said[a]} {self.value(a)}" for a in stated]
            groups: dict[tuple[str, ...], list[str]] = {}
            for a in remembered[:2]:
                if a not in said and a in chosen:
                    groups.setdefault(chosen[a], []).append(self.value(a))
            clauses += [f"has {join_and(values)}, like {join_and(list(items))}, which you chose before"
                        for items, values in groups.items()]
        attrs = ", ".join(self.value(a) for a in path)
        liked = join_nouns([self.noun(a) for a in likes])
        if path and likes:
            text = self._fmt("why_both", index, voice, attrs=attrs, likes=liked)
        elif path:
            text = self._fmt("why_path", index, voice, attrs=attrs)
        elif likes:
            text = self._fmt("why_like", index, voice, likes=liked)
        elif clauses:
            text = ""
        elif self.graph.popularity.any():
            text = self._fmt("why_none", index, voice)
        else:  # no interactions: nothing is popular, so say what the item is instead
            text = ", ".join(self.value(a) for a in fresh[:2]) or "a pick to start with"
        text = "; ".join(t for t in (text, *clauses) if t)
        bad = [a for a in own if a in dislikes]
        if bad:
            text += "; " + self._fmt("caveat", index, voice, attrs=join_nouns([self.noun(a) for a in bad]))
        return text

    @staticmethod
    def _sources(plan: ReplyPlan) -> tuple[dict[str, str], dict[str, tuple[str, ...]]] | None:
        """Where remembered likes come from (statement → how it was said; choices → the items),
        when the profile tells; None for a profile that only lists likes."""
        said = getattr(plan.profile, "said", None)
        chosen = getattr(plan.profile, "chosen", None)
        if plan.profile is None or (said is None and chosen is None):
            return None
        return dict(said or {}), {a: tuple(v) for a, v in (chosen or {}).items()}

    def said(self, plan: ReplyPlan, attrs: Sequence[str]) -> str | None:
        """Where these remembered likes come from, in words ("you said you love jazz"), or None."""
        sources = self._sources(plan)
        if sources is None:
            return None
        said, chosen = sources
        clauses = [f"you said you {said[a]} {self.value(a)}" for a in attrs if a in said]
        items = list(dict.fromkeys(n for a in attrs if a in chosen and a not in said for n in chosen[a]))[:2]
        if items:
            clauses.append(f"you chose {join_and(items)}")
        return join_and(clauses) if clauses else None

    def _item_attrs(self, item_id: str) -> list[str]:
        index = self.graph.item_index.get(item_id)
        if index is None:
            return []
        return [self.graph.attr_ids[a] for a in self.graph.item_attrs.row(index).tolist()]

    def _has_reason(self, rec: Recommendation, plan: ReplyPlan) -> bool:
        dislikes = self.dislikes(plan)
        own = set(self._item_attrs(rec.item_id))
        return any(a not in dislikes for a in rec.path[:-1]) or any(a in own for a in self.likes(plan))

    def examples(self, plan: ReplyPlan) -> str:
        dislikes = self.dislikes(plan)
        ids = merge_unique(self.likes(plan)[:1], self._known(plan.examples))
        values = [f"'{self.value(a)}'" for a in ids if a not in dislikes][:3]
        return ", ".join(values) if values else "a genre or a mood"

    def relevant_fact(self, plan: ReplyPlan, items: Sequence[str]) -> str | None:
        """The first remembered fact that shares a word with the items' attributes or descriptions."""
        if plan.profile is None or not plan.profile.facts:
            return None
        context: set[str] = set()
        for item in items:
            for a in self._item_attrs(item):
                attr = self.graph.attributes[self.graph.attr_index[a]]
                context |= _words(" ".join((attr.value, *attr.synonyms)))
            index = self.graph.item_index.get(item)
            if index is not None and index < len(self.graph.descriptions):
                context |= _words(self.graph.descriptions[index])
        return next((f for f in plan.profile.facts if _words(f) & context), None)

    # ---------------------------------------------------------------- render
    def respond(self, plan: ReplyPlan) -> Reply:
        voice = Voice.of(self.persona, plan.profile)
        question, recs = self._structure(plan, voice)
        text = ""
        for shift in range(_MAX_VARIANTS):
            text = self._text(plan, voice, plan.turn + shift, question, recs)
            if text != plan.previous:
                break
        else:  # every variant reads the same as last time: say something first
            opener = self._fmt("openers", plan.turn, voice)
            text = f"{opener} {text}"
        if plan.kind in ("ask", "recommend", "clarify"):  # a misreading shows at once
            ack = self.acknowledgement(plan, voice, plan.turn)
            text = f"{ack} {text}" if ack else text
        if plan.undone is not None:
            text = f"{self._fmt('undone' if plan.undone else 'undo_nothing', plan.turn, voice)} {text}"
        return Reply(
            text=text,
            action=plan.kind,
            question=question,
            recommendations=recs,
            candidates=plan.candidates,
            turn=plan.turn,
        )

    def stream_respond(self, plan: ReplyPlan) -> Iterator[Reply]:
        """Template replies are instant: one final reply."""
        yield self.respond(plan)

    def _structure(self, plan: ReplyPlan, voice: Voice) -> tuple[Question | None, list[RecommendedItem]]:
        if plan.kind == "ask" and plan.attribute is not None:
            attr = self.graph.attributes[self.graph.attr_index[plan.attribute]]
            ids = list(plan.options) or [attr.id]
            options = [self.value(a) for a in ids]
            return Question(attribute=attr.id, facet=attr.facet, value=attr.value, options=options,
                            option_ids=ids), []
        if plan.kind == "recommend" or (plan.kind == "explain" and plan.item is not None):
            recs = plan.recommendations if plan.kind == "recommend" else plan.recommendations[:1]
            return None, [
                RecommendedItem(id=r.item_id, name=r.name, why=self.why(r, plan, plan.turn, voice), path=list(r.path))
                for r in recs
            ]
        return None, []

    def _text(
        self, plan: ReplyPlan, voice: Voice, k: int, question: Question | None, recs: list[RecommendedItem]
    ) -> str:
        kind, graph = plan.kind, self.graph
        dislikes = self.dislikes(plan)
        if kind == "ask" and question is not None and plan.confirm:
            value = self.noun(question.attribute)
            said = self.said(plan, [question.attribute])
            if said is not None:
                return self._decorate(self._fmt("confirm_said", k, voice, said=said, value=value,
                                                facet=question.facet), kind, voice, k)
            return self._decorate(self._fmt("confirm", k, voice, value=value, facet=question.facet), kind, voice, k)
        if kind == "ask" and question is not None:
            asked, label = self._question_text(question.attribute, k, voice)
            if ": {question}" in self._pick("ask", k, voice):
                asked = asked[:1].lower() + asked[1:]  # "Tell me, hon: are you in the mood ...?"
            text = self._fmt("ask", k, voice, question=asked, value=question.value, facet=label)
            others = [self.value(a) for a in self._known(plan.options[1:]) if a not in dislikes]
            if others:
                text += " " + self._fmt("options", k, voice, options=", ".join(others))
            return self._decorate(text, kind, voice, k)
        if kind == "recommend":
            header = self._fmt("recommend", k, voice, n=len(recs))
            lines = [self._fmt("rec_line", k, voice, n=n, name=r.name, why=r.why) for n, r in enumerate(recs, start=1)]
            fact = self.relevant_fact(plan, [r.id for r in recs])
            if fact:
                lines.append(self._fmt("fact_note", k, voice, fact=fact))
            return self._decorate("\n".join([header, *lines]), kind, voice, k)
        if kind == "explain" and plan.item is not None:
            name = graph.item_names[graph.item(plan.item)]
            rec = plan.recommendations[0] if plan.recommendations else None
            if rec is not None and recs and self._has_reason(rec, plan):
                text = self._fmt("explain", k, voice, name=name, why=recs[0].why)
            else:
                text = self._fmt("explain_unknown", k, voice, name=name)
            fact = self.relevant_fact(plan, [plan.item])
            if fact:
                text += " " + self._fmt("fact_note", k, voice, fact=fact)
            return self._decorate(text, kind, voice, k)
        if kind == "explain" and plan.attribute is not None and plan.attribute in graph.attr_index:
            attr = graph.attributes[graph.attr_index[plan.attribute]]
            text = self._fmt("explain_question", k, voice, value=attr.value, facet=attr.facet.replace("_", " "),
                             n=plan.candidates)
            return self._decorate(text, "clarify", voice, k)
        if kind == "explain":
            return self._decorate(self._fmt("explain_nothing", k, voice, examples=self.examples(plan)),
                                  "clarify", voice, k)
        if kind == "accepted" and plan.item is not None:
            text = self._fmt("accepted", k, voice, name=graph.item_names[graph.item(plan.item)])
        elif kind == "restart":
            act = "restart" if plan.undone is None else "undo_start"  # "go back" to the beginning
            text = self._fmt(act, k, voice, examples=self.examples(plan))
        elif kind == "greet":
            likes = self.likes(plan)[:2]
            said = self.said(plan, likes) if likes else None
            if said is not None:
                text = self._fmt("greet_said", k, voice, said=said, examples=self.examples(plan))
            elif likes and self._sources(plan) is None:
                text = self._fmt(
                    "greet_back", k, voice, likes=join_nouns([self.noun(a) for a in likes]),
                    examples=self.examples(plan)
                )
            else:
                text = self._fmt("greet", k, voice, examples=self.examples(plan))
        elif kind == "error":
            return self._fmt("error", k, voice, problem=plan.problem or "That did not work.")
        elif kind == "clarify" and plan.candidates == 0 and plan.accepted:
            accepted = ", ".join(self.value(a) for a in self._known(plan.accepted))
            text = self._fmt("nothing_left", k, voice, accepted=accepted)
        elif kind == "thanks":
            text = self._fmt("thanks", k, voice)
        elif kind == "options":
            text = self._options(plan, voice, k)
        elif kind == "clarify" and plan.attribute is not None and plan.attribute in graph.attr_index:
            # what was not understood answered an open question: ask it again
            attr = graph.attributes[graph.attr_index[plan.attribute]]
            asked, label = self._question_text(plan.attribute, k, voice)
            text = self._fmt("clarify_question", k, voice, question=asked, value=attr.value, facet=label)
        elif kind == "clarify" and plan.shown:
            text = self._fmt("clarify_list", k, voice, n=plan.shown)
        else:
            text = self._fmt("clarify", k, voice, examples=self.examples(plan))
        return self._decorate(text, kind, voice, k)

    def _options(self, plan: ReplyPlan, voice: Voice, k: int) -> str:
        """The values of the facet asked about, commonest first; or, for "help", what to say."""
        g = self.graph
        sizes = np.diff(g.attr_items.indptr)
        if plan.facet is None or plan.facet not in g.facets:
            facets = [f.replace("_", " ") for f in g.facets]
            return self._fmt("help", k, voice, facets=join_and(facets), examples=self.examples(plan))
        ids = sorted(g.facets[plan.facet], key=lambda a: (-int(sizes[a]), g.attributes[a].value))
        values = [g.attributes[a].value for a in ids[:_OPTIONS_SHOWN]]
        more = len(ids) - len(values)
        listed = ", ".join(values) + (f" and {more} more" if more else "")
        return self._fmt("facet_values", k, voice, facet=plan.facet.replace("_", " "), values=listed)

    def _question_text(self, attribute: str, k: int, voice: Voice) -> tuple[str, str]:
        """The question about one attribute (the catalog's wording for its facet, else the voice's),
        and the facet's label."""
        attr = self.graph.attributes[self.graph.attr_index[attribute]]
        spec = self.vocabulary.facets.get(attr.facet) if self.vocabulary else None
        label = spec.label if spec is not None and spec.label else attr.facet
        if spec is not None and spec.question:
            return fill(spec.question, value=self._ask_value(attribute), facet=attr.facet), label
        return self._fmt("ask_default", k, voice, value=attr.value, facet=label), label

    def _decorate(self, text: str, kind: str, voice: Voice, k: int) -> str:
        """Openers and closers for a chatty voice; emoji as the voice uses them."""
        if voice.verbosity == "chatty":
            if kind in ("recommend", "explain"):
                text = f"{self._fmt('openers', k, voice)} {text}"
            if kind in ("recommend", "accepted", "explain"):
                text = (
                    f"{text}\n{self._fmt('closers', k, voice)}"
                    if kind == "recommend"
                    else f"{text} {self._fmt('closers', k, voice)}"
                )
        elif voice.verbosity == "terse" and voice.persona.verbosity != "terse":
            text = _shorten(text)
        emojis = voice.persona.emojis
        if voice.emoji == "none" or not emojis:
            return _capitalise(text)
        mark = emojis[k % len(emojis)]
        if voice.emoji == "lots":
            other = emojis[(k + 1) % len(emojis)]
            head, *rest = text.split("\n")
            return _capitalise("\n".join([f"{mark} {head} {other}", *rest]))
        if kind in ("greet", "recommend", "accepted", "thanks", "restart", "explain"):
            head, *rest = text.split("\n")
            return _capitalise("\n".join([f"{head} {mark}", *rest]))
        return _capitalise(text)


_SENTENCE = re.compile(r"(?<!e\.g\.)(?<=[.!?])\s+")


def _shorten(text: str) -> str:
    """A short reply for a user who asked for short ones.

    Per line: interjections ("Hi!", "Ooh, okay!") go, then the first question is kept, or
    else the first sentence.
    """
    lines = []
    for line in text.split("\n"):
        parts = [p for p in _SENTENCE.split(line) if p]
        parts = [p for p in parts if len(p.split()) > 3] or parts
        lines.append(next((p for p in parts if p.endswith("?")), parts[0] if parts else line))
    return "\n".join(lines)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text
