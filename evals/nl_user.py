"""A natural-language user simulator: the MCR simulator's decisions, said in words.

:class:`NLUser` wraps a :class:`crs.evals.simulator.SimulatedUser` (same target, same answers)
and turns each structured answer into a message: paraphrases, hedges, negations, typos and
references to shown items (by position or by name), all driven by a seeded random generator.
Its phrases come from :class:`PhraseBank` (``evals/data/phrases.yaml`` by default), written by
hand and kept apart from the NLU's lexicon, so an evaluation through it measures understanding.
An optional chat model can rephrase each message (:class:`ChatRephraser`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from crs.evals.simulator import Answer, SimulatedUser
from crs.language.reply import Reply
from crs.reasoning.state import Action

__all__ = ["DEFAULT_PHRASES", "ChatRephraser", "NLUser", "PhraseBank", "Rephraser", "typo"]

DEFAULT_PHRASES = Path(__file__).with_name("data") / "phrases.yaml"
_KINDS = ("opening", "agree", "agree_mention", "disagree", "disagree_mention", "values", "pick_position",
          "pick_name", "none", "hedge_before", "hedge_after")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


@dataclass(frozen=True)
class PhraseBank:
    """Templates per kind of message (see ``evals/data/phrases.yaml``)."""

    phrases: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PHRASES) -> PhraseBank:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a phrase bank is a mapping of kind → list of phrases")
        unknown = sorted(set(data) - set(_KINDS))
        missing = [k for k in _KINDS if not data.get(k)]
        if unknown or missing:
            raise ValueError(f"{path}: " + "; ".join(
                ([f"unknown kinds {unknown}"] if unknown else []) + ([f"missing kinds {missing}"] if missing else [])))
        return cls({k: tuple(str(p) for p in data[k]) for k in _KINDS})

    def pick(self, kind: str, rng: np.random.Generator) -> str:
        options = self.phrases[kind]
        return options[int(rng.integers(len(options)))]


def typo(word: str, rng: np.random.Generator) -> str:
    """One small slip: two letters swapped, one dropped, or one doubled.

    >>> typo("jazz", np.random.default_rng(0)) != "jazz"
    True
    """
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


class Rephraser(Protocol):
    def rephrase(self, text: str) -> str: ...


class ChatRephraser:
    """Any LangChain chat model rewording a simulated message (same meaning, other words)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def rephrase(self, text: str) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        prompt = ("Rewrite the user's chat message to a music recommender in your own casual words. Keep the "
                  "meaning, every music term and every name exactly. Answer with the message only.")
        try:
            out = str(self.model.invoke([SystemMessage(prompt), HumanMessage(text)]).content).strip()
        except Exception:  # a failed call keeps the template message: the episode goes on
            return text
        return out or text


class NLUser:
    """One episode's user, speaking. ``rates`` are per message: hedge, typo, value mention."""

    def __init__(self, user: SimulatedUser, bank: PhraseBank, rng: np.random.Generator, *,
                 hedge: float = 0.2, typos: float = 0.1, mention: float = 0.3, by_name: float = 0.3,
                 rephraser: Rephraser | None = None) -> None:
        self.user, self.bank, self.rng = user, bank, rng
        self.hedge, self.typos, self.mention, self.by_name = hedge, typos, mention, by_name
        self.rephraser = rephraser

    @property
    def target(self) -> str:
        return self.user.target

    def _value(self, attribute: str) -> str:
        g = self.user.graph
        return g.attributes[g.attribute(attribute)].value

    def opening(self) -> str:
        attribute = self.user.opening().accept_attributes[0]
        return self._finish(self.bank.pick("opening", self.rng).format(value=self._value(attribute)))

    def reply(self, action: Action, reply: Reply) -> tuple[str, Answer]:
        """What the person says to the bot's ``reply`` (which showed ``action``), and the structured
        answer it stands for."""
        answer = self.user.answer(action)
        fb = answer.feedback
        r = self.rng
        if action.kind == "ask" and action.attribute is not None:
            asked = action.attribute
            if self.user.enumerate_facets and len(fb.accept_attributes) > 0 and fb.accept_attributes != (asked,):
                values = ", ".join(self._value(a) for a in fb.accept_attributes)
                return self._finish(self.bank.pick("values", r).format(values=values)), answer
            yes = asked in fb.accept_attributes
            mention = r.random() < self.mention
            kind = ("agree" if yes else "disagree") + ("_mention" if mention else "")
            return self._finish(self.bank.pick(kind, r).format(value=self._value(asked))), answer
        if action.kind == "recommend":
            shown = [x.id for x in reply.recommendations] or [x.item_id for x in action.recommendations]
            if answer.accepted and self.target in shown:
                n = shown.index(self.target)
                names = {x.id: x.name for x in reply.recommendations}
                if r.random() < self.by_name and names.get(self.target):
                    text = self.bank.pick("pick_name", r).format(name=names[self.target])
                    return self._finish(text, typos=False), answer  # names are typed as shown
                text = self.bank.pick("pick_position", r).format(ordinal=_ordinal(n), n=n + 1)
                return self._finish(text), answer
            return self._finish(self.bank.pick("none", r)), answer
        return self._finish("hmm"), answer

    def _finish(self, text: str, *, typos: bool = True) -> str:
        r = self.rng
        if r.random() < self.hedge:
            if r.random() < 0.5:
                text = f"{self.bank.pick('hedge_before', r)} {text}"
            else:
                text = f"{text}{self.bank.pick('hedge_after', r)}"
        if typos and r.random() < self.typos:
            words = text.split(" ")
            long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
            if long:
                i = long[int(r.integers(len(long)))]
                words[i] = typo(words[i], r)
                text = " ".join(words)
        return self.rephraser.rephrase(text) if self.rephraser is not None else text


def _ordinal(n: int) -> str:
    return _ORDINALS[n] if n < len(_ORDINALS) else f"#{n + 1}"


def seeded_rngs(seed: int, n: int) -> Sequence[np.random.Generator]:
    """One generator per episode, so an episode's words do not depend on the ones before it."""
    return [np.random.default_rng([seed, 2, i]) for i in range(n)]
