"""Path reasoning in the CPR sense: candidates, attribute choice, and ask-or-recommend.

The functions here are pure and work on numpy arrays of graph indices. The chatbot and the
benchmark both reach them through :class:`crs.reasoning.engine.Engine`, so there is one policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from crs.reasoning.scoring import FloatArray, IntArray

__all__ = [
    "DecisionRule",
    "FixedQuestion",
    "PolicySettings",
    "QuestionView",
    "ThresholdRule",
    "TurnView",
    "entropy_at",
    "most_uncertain",
    "preference_weights",
    "top_k",
    "top_mass",
    "top_positions",
]

NoRule = Literal["soft", "prune", "strict"]


class PolicySettings(BaseModel):
    """How the policy treats answers and when it stops asking. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(3, ge=1, le=100, description="items per recommendation")
    no_rule: NoRule = Field(
        "soft",
        description=(
            "a rejected attribute: 'soft' lowers the score of items that have it by "
            "rejection_weight, 'prune' removes them, 'strict' ignores it (SCPR/UNICORN)"
        ),
    )
    rejection_weight: float = Field(1.0, ge=0, description="soft penalty per rejected attribute (logits)")
    seed_weight: float = Field(
        2.0, ge=0, description="logits per attribute shared with the items named as examples "
        "('like Kind of Blue'), times the share of those items having it")
    want_weight: float = Field(
        20.0, ge=0, description="logits added to items asked for by name or artist ('anything by Miles Davis')")
    temperature: float = Field(1.0, gt=0, description="softmax temperature from scores to preference")
    confidence: float = Field(0.8, gt=0, le=1, description="recommend once the top-k hold this share")
    max_questions: int = Field(4, ge=0, description="recommend after this many questions in a row")
    min_entropy: float = Field(0.05, ge=0, description="recommend when no question is this informative")
    options: int = Field(5, ge=0, description="values of the asked facet offered alongside the question")
    prior_fade: float = Field(
        0.5, gt=0, le=1, description="how much the remembered prior counts towards recommending rather than "
        "asking: multiplied by this for every top_k items rejected in the session (lists are still ranked with "
        "all of it; 1: never fade)")
    prior_fade_after: float = Field(
        1.0, ge=0, description="rejected lists (of top_k items) before the prior starts to fade: one miss may be "
        "bad luck")


class QuestionView(Protocol):
    """The best question of a turn; :class:`crs.reasoning.engine.Engine` computes it on first read."""

    @property
    def best_attribute(self) -> int | None: ...
    @property
    def best_entropy(self) -> float: ...
    @property
    def attr_share(self) -> FloatArray | None: ...


@dataclass(frozen=True, slots=True)
class FixedQuestion:
    """A :class:`QuestionView` whose answers are already known."""

    best_attribute: int | None
    best_entropy: float
    attr_share: FloatArray | None


class TurnView:
    """The policy's picture of one turn: candidates, their scores, and the best question.

    Read-only. ``best_attribute``, ``best_entropy`` and ``attr_share`` come from
    ``question`` and may be computed only when first read: a rule that recommends on the
    cheap checks never pays for the question.
    """

    __slots__ = ("_question", "candidates", "scores", "weights")

    def __init__(
        self,
        candidates: IntArray,
        scores: FloatArray,
        weights: FloatArray,  # preference weights over candidates, summing to 1
        best_attribute: int | None = None,
        best_entropy: float = 0.0,
        attr_share: FloatArray | None = None,  # weighted share of candidates having each attribute
        *,
        question: QuestionView | None = None,
    ) -> None:
        self.candidates = candidates
        self.scores = scores
        self.weights = weights
        self._question = question if question is not None else FixedQuestion(best_attribute, best_entropy,
                                                                              attr_share)

    @property
    def best_attribute(self) -> int | None:
        return self._question.best_attribute

    @property
    def best_entropy(self) -> float:
        return self._question.best_entropy

    @property
    def attr_share(self) -> FloatArray | None:
        return self._question.attr_share

    def __repr__(self) -> str:  # does not compute a pending question
        return f"TurnView({len(self.candidates)} candidates)"


class DecisionRule(Protocol):
    def should_recommend(self, view: TurnView, questions_in_a_row: int, turn: int) -> bool: ...


@dataclass(frozen=True)
class ThresholdRule:
    """Recommend when few candidates are left, when the top-k are confident enough, when
    nothing is worth asking, or after ``max_questions`` questions in a row.

    ``max_turns`` (off by default) adds a turn budget: on the last turn of the budget the
    rule always recommends, since an answer could no longer be used.
    """

    top_k: int
    confidence: float
    max_questions: int
    min_entropy: float
    max_turns: int | None = None

    @classmethod
    def from_settings(cls, settings: PolicySettings, max_turns: int | None = None) -> ThresholdRule:
        return cls(settings.top_k, settings.confidence, settings.max_questions, settings.min_entropy,
                   max_turns)

    def should_recommend(self, view: TurnView, questions_in_a_row: int, turn: int) -> bool:
        # Any one condition recommends. The cheap ones come first so that the best question
        # (the costly part of a turn) is only computed when they all say "ask".
        if len(view.candidates) <= self.top_k:
            return True
        if self.max_turns is not None and turn >= self.max_turns:
            return True
        if questions_in_a_row >= self.max_questions:
            return True
        if self._confident(view.weights):
            return True
        if view.best_attribute is None:
            return True
        # best_entropy is never negative, so a min_entropy of 0 cannot trigger: skip the read.
        return self.min_entropy > 0 and view.best_entropy < self.min_entropy

    def _confident(self, weights: FloatArray) -> bool:
        """``top_mass(weights, top_k) >= confidence``, without the partition when it must fail.

        The top-k mass is a float sum of k weights, each at most the largest, so it is at most
        k · largest · (1 + k·2⁻⁵³); the factor 1 + 1e-9 covers that rounding with room to spare.
        """
        if self.top_k * float(np.maximum.reduce(weights)) * (1 + 1e-9) < self.confidence:
            return False
        return top_mass(weights, self.top_k) >= self.confidence


def preference_weights(scores: FloatArray, temperature: float) -> FloatArray:
    """Softmax of the scores: how much of the user's preference each candidate holds."""
    if len(scores) == 0:
        return scores
    # exp((s - max) / T) / Σ in one buffer: the same operations as the plain expression, so
    # the same bits. The ufunc reductions are what .max() and .sum() call, minus a wrapper.
    z: FloatArray = scores - np.maximum.reduce(scores)
    if temperature != 1.0:  # x / 1.0 == x exactly: skip the pass
        z /= temperature
    np.exp(z, out=z)
    z /= np.add.reduce(z)
    return z


def top_mass(weights: FloatArray, k: int) -> float:
    """The preference share of the k heaviest candidates."""
    n = len(weights)
    if n <= k:
        return 1.0
    # np.partition(weights, n - k) is exactly a copy partitioned in place; the sum runs over
    # the same k values in the same order.
    top = weights.copy()
    top.partition(n - k)
    return float(np.add.reduce(top[n - k :]))


def binary_entropy(p: FloatArray) -> FloatArray:
    """Entropy in bits of a yes/no answer that is "yes" with probability ``p`` (0 at 0 and 1)."""
    q = np.clip(p, 1e-12, 1 - 1e-12)
    h = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    h[(p <= 1e-12) | (p >= 1 - 1e-9)] = 0.0
    return h


def most_uncertain(p: FloatArray, skip: np.ndarray | list[int] | None = None) -> int | None:
    """The position of the yes/no share nearest 1/2 (the first on ties), or None if none is askable.

    A share is askable when it is strictly between 1e-12 and 1 - 1e-9 and ``skip`` (a mask
    or positions) does not name it. The binary entropy is largest where p is nearest 1/2,
    so ranking by that distance needs no logarithm.

    >>> most_uncertain(np.array([1.0, 0.5, 0.1, 0.0]), np.array([1]))
    2
    """
    distance = np.abs(p - 0.5)
    if skip is not None:
        distance[skip] = 1.0
    b = int(distance.argmin())
    pb = float(p[b])
    if distance[b] < 0.5 and 1e-12 < pb < 1 - 1e-9:
        # The winner is askable. Masking the unaskable shares (below) only raises distances
        # that were already ≥ distance[b], so it could not change the winner: skip it.
        return b
    distance[(p <= 1e-12) | (p >= 1 - 1e-9)] = 1.0
    b = int(distance.argmin())
    return b if distance[b] < 0.5 else None


def entropy_at(p: FloatArray, b: int) -> float:
    """The binary entropy of share ``p[b]``, computed exactly as :func:`binary_entropy` does."""
    return float(binary_entropy(p[b : b + 1])[0])


def top_positions(candidates: IntArray, scores: FloatArray, k: int) -> IntArray:
    """Positions of the k best candidates, best first (ties broken by graph order)."""
    negated = -scores
    if len(candidates) > k:
        keep = negated.argpartition(k - 1)[:k]
        return keep[np.lexsort((candidates[keep], negated[keep]))]
    return np.lexsort((candidates, negated))


def top_k(candidates: IntArray, scores: FloatArray, k: int) -> IntArray:
    """The k best candidates, best first (ties broken by graph order for determinism)."""
    return candidates[top_positions(candidates, scores, k)]
