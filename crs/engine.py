"""The engine: apply one turn's feedback to the state, then decide the next action.

This is the single implementation of the policy; the LangGraph nodes, the public API and the
benchmark simulator all call it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

import numpy as np

from crs.policy import (
    DecisionRule,
    PolicySettings,
    ThresholdRule,
    TurnView,
    best_question,
    preference_weights,
    top_positions,
)
from crs.scoring import FloatArray, IntArray, PopularityScorer, Scorer, ScoringContext
from crs.state import Action, DialogueState, Feedback, Recommendation
from kb.graph import KnowledgeGraph

__all__ = ["Engine"]


def _unique(seq: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(seq))


def _evolve(state: DialogueState, **changes: Any) -> DialogueState:
    """``state.evolve`` without ``dataclasses.replace``'s per-call introspection (hot path)."""
    values = {name: getattr(state, name) for name in _STATE_FIELDS}
    values.update(changes)
    return DialogueState(**values)


_STATE_FIELDS = tuple(f.name for f in fields(DialogueState))
_Key = tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]


class _CandidateSet:
    """A sorted array of candidate items with its item–attribute incidence, built lazily."""

    __slots__ = ("_incidence", "_present", "items")

    def __init__(self, items: IntArray, incidence: tuple[IntArray, IntArray] | None = None) -> None:
        self.items = items
        self._incidence = incidence
        self._present: IntArray | None = None

    def incidence(self, graph: KnowledgeGraph) -> tuple[IntArray, IntArray]:
        """(position in ``items``, attribute) for every attribute of every candidate."""
        if self._incidence is None:
            self._incidence = graph.item_attrs.gather(self.items)
        return self._incidence

    def present(self, graph: KnowledgeGraph) -> IntArray:
        """The attributes some candidate has: the only ones worth asking about."""
        if self._present is None:
            cols = self.incidence(graph)[1]
            self._present = np.flatnonzero(np.bincount(cols, minlength=graph.n_attributes))
        return self._present

    def subset(self, keep: np.ndarray) -> _CandidateSet:
        """The candidates where ``keep`` (aligned with ``items``) is true; incidence filtered."""
        if self._incidence is None:
            return _CandidateSet(self.items[keep])
        owner, cols = self._incidence
        position = np.cumsum(keep) - 1
        live = keep[owner]
        return _CandidateSet(self.items[keep], (position[owner[live]], cols[live]))

    def flags(self, graph: KnowledgeGraph, marked: IntArray) -> np.ndarray:
        """Which candidates are among ``marked`` (item indices)."""
        flags = np.zeros(graph.n_items, dtype=bool)
        flags[marked] = True
        return flags[self.items]


class Engine:
    """Path reasoning over one item–attribute graph with a scorer and a decision rule."""

    def __init__(
        self,
        graph: KnowledgeGraph,
        scorer: Scorer | None = None,
        settings: PolicySettings | None = None,
        rule: DecisionRule | None = None,
    ) -> None:
        self.graph = graph
        self.scorer = scorer if scorer is not None else PopularityScorer(graph)
        self.settings = settings if settings is not None else PolicySettings()
        self.rule = rule if rule is not None else ThresholdRule.from_settings(self.settings)
        self._cache_size = 512
        self._cand_cache: OrderedDict[_Key, _CandidateSet] = OrderedDict()
        self._id_cache: dict[tuple[str, ...], tuple[int, ...]] = {}

    # ----------------------------------------------------------------- feedback
    def start(self, user_id: str | None = None, prior: Iterable[tuple[str, float]] = ()) -> DialogueState:
        """A fresh conversation; ``prior`` is a soft preference from long-term memory."""
        known = [(a, float(w)) for a, w in prior if a in self.graph.attr_index]
        return DialogueState(user_id=user_id, prior=tuple(known))

    def validate(self, feedback: Feedback) -> None:
        """Raise :class:`kb.UnknownIdError` for any id the catalog does not have."""
        for attr in (*feedback.accept_attributes, *feedback.reject_attributes):
            self.graph.attribute(attr)
        for item in (*feedback.reject_items, *filter(None, (feedback.accept_item, feedback.about_item))):
            self.graph.item(item)

    def apply(self, state: DialogueState, feedback: Feedback) -> DialogueState:
        """The state after the user's feedback. Ids are validated first; nothing changes on error."""
        self.validate(feedback)
        accept, reject = feedback.accept_attributes, feedback.reject_attributes
        # A later answer wins: "not rock" after "rock" takes rock off the path.
        accepted = _unique(a for a in (*state.accepted, *accept) if a not in reject)
        rejected = _unique(r for r in (*state.rejected, *reject) if r not in accept)
        rejected_items = state.rejected_items
        if feedback.reject_items:
            rejected_items = _unique((*rejected_items, *feedback.reject_items))
        answered = state.question is not None and not feedback.is_empty
        return _evolve(
            state,
            accepted=accepted,
            rejected=rejected,
            asked=_unique((*state.asked, *accept, *reject)),
            rejected_items=rejected_items,
            accepted_item=feedback.accept_item or state.accepted_item,
            question=None if answered else state.question,
            options=() if answered else state.options,
            turn=state.turn + 1,
        )

    # ------------------------------------------------------------------ reading
    def _attr_tuple(self, ids: tuple[str, ...]) -> tuple[int, ...]:
        """Attribute ids → graph indices, memoised (the same tuples recur turn after turn)."""
        hit = self._id_cache.get(ids)
        if hit is None:
            if len(self._id_cache) > 8192:
                self._id_cache.clear()
            index = self.graph.attr_index
            hit = self._id_cache[ids] = tuple(index[a] for a in ids)
        return hit

    def _remember(self, key: _Key, found: _CandidateSet) -> _CandidateSet:
        self._cand_cache[key] = found
        if len(self._cand_cache) > self._cache_size:
            self._cand_cache.popitem(last=False)
        return found

    def _candidates(
        self, accepted: tuple[int, ...], pruned: tuple[int, ...], rejected_items: tuple[str, ...]
    ) -> _CandidateSet:
        """Items having every accepted attribute, none of ``pruned``, and not rejected.

        Cached per answer set and built from the set one answer shorter, so a dialogue that
        adds one answer a turn pays one sorted intersection, not a pass over the catalog.
        """
        key = (accepted, pruned, rejected_items)
        hit = self._cand_cache.get(key)
        if hit is not None:
            self._cand_cache.move_to_end(key)
            return hit
        g = self.graph
        if rejected_items:
            base = self._candidates(accepted, pruned, ())
            gone = np.fromiter((g.item_index[i] for i in rejected_items), np.int64, len(rejected_items))
            return self._remember(key, base.subset(~base.flags(g, gone)))
        if pruned:
            base = self._candidates(accepted, pruned[:-1], ())
            return self._remember(key, base.subset(~base.flags(g, g.attr_items.row(pruned[-1]))))
        if len(accepted) > 1:
            base = self._candidates(accepted[:-1], (), ())
            return self._remember(key, base.subset(base.flags(g, g.attr_items.row(accepted[-1]))))
        items = g.attr_items.row(accepted[0]).copy() if accepted else np.arange(g.n_items, dtype=np.int64)
        return self._remember(key, _CandidateSet(items))

    def view(self, state: DialogueState) -> TurnView:
        """Candidates, their scores and preference weights, and the best question to ask."""
        g = self.graph
        acc = self._attr_tuple(state.accepted)
        rej = self._attr_tuple(state.rejected)
        no_rule = self.settings.no_rule
        found = self._candidates(acc, rej if no_rule == "prune" else (), state.rejected_items)
        candidates = found.items
        accepted = np.array(acc, dtype=np.int64)
        rejected = np.array(rej, dtype=np.int64)
        scores = self.scorer.score(ScoringContext(state.user_id, accepted, rejected), candidates)
        if (no_rule == "soft" and rej) or state.prior:
            adjust = np.zeros(g.n_items)
            if no_rule == "soft":
                for r in rej:
                    adjust[g.attr_items.row(r)] -= self.settings.rejection_weight
            for attr, weight in state.prior:
                adjust[g.attr_items.row(g.attr_index[attr])] += weight
            scores = scores + adjust[candidates]
        weights = preference_weights(scores, self.settings.temperature)
        best, best_entropy, attr_share = None, 0.0, None
        if len(candidates) > 0:
            owner, cols = found.incidence(g)
            share: FloatArray = np.bincount(cols, weights=weights[owner], minlength=g.n_attributes).astype(
                np.float64, copy=False)
            exclude = self._attr_tuple(state.asked) + acc
            b, best_entropy = best_question(share, found.present(g), np.array(exclude, dtype=np.int64))
            best = b if best_entropy > 0 else None
            best_entropy = max(best_entropy, 0.0)
            attr_share = share
        return TurnView(candidates, scores, weights, best, best_entropy, attr_share)

    def recommendations(self, state: DialogueState, view: TurnView) -> tuple[Recommendation, ...]:
        g = self.graph
        accepted = [g.attr_index[a] for a in state.accepted]
        positions = top_positions(view.candidates, view.scores, self.settings.top_k)
        return tuple(
            Recommendation(
                item_id=g.item_ids[i], name=g.item_names[i],
                path=tuple(g.path_to(i, accepted)), score=s,
            )
            for i, s in zip(
                view.candidates[positions].tolist(), view.scores[positions].tolist(), strict=True
            )
        )

    def decide(self, state: DialogueState, *, force_recommend: bool = False) -> Action:
        """Ask the most informative question, or recommend the top-k, by the decision rule."""
        view = self.view(state)
        if len(view.candidates) == 0:
            return Action(kind="clarify", candidates=0)
        if force_recommend or self.rule.should_recommend(view, state.questions_in_a_row, state.turn):
            return Action(kind="recommend", recommendations=self.recommendations(state, view),
                          candidates=len(view.candidates))
        assert view.best_attribute is not None and view.attr_share is not None
        return Action(
            kind="ask",
            attribute=self.graph.attr_ids[view.best_attribute],
            options=self._options(view.best_attribute, view.attr_share, state),
            candidates=len(view.candidates),
        )

    def _options(self, attr: int, share: np.ndarray, state: DialogueState) -> tuple[str, ...]:
        """Other values of the asked facet that candidates have, most preferred first."""
        n = self.settings.options
        if n == 0:
            return ()
        g = self.graph
        same = g.facets[g.attributes[attr].facet]
        if len(same) > 5000:  # a huge flat tag vocabulary: options would be noise
            return ()
        asked = {g.attr_index[a] for a in state.asked}
        same = same[(share[same] > 0) & (same != attr)]
        same = np.array([a for a in same.tolist() if a not in asked], dtype=np.int64)
        if len(same) == 0:
            return ()
        chosen = same[np.argsort(-share[same], kind="stable")][: n - 1]
        return tuple(g.attr_ids[a] for a in [attr, *chosen.tolist()])

    # ---------------------------------------------------------------- recording
    def record(self, state: DialogueState, action: Action) -> DialogueState:
        """The state after showing ``action`` to the user (the pending question or list)."""
        if action.kind == "ask":
            return _evolve(state, question=action.attribute, options=action.options,
                           questions_in_a_row=state.questions_in_a_row + 1)
        if action.kind == "recommend":
            return _evolve(state, question=None, options=(), questions_in_a_row=0,
                           recommended=tuple(r.item_id for r in action.recommendations))
        return state

    def explain(self, state: DialogueState, item_id: str) -> Recommendation:
        g = self.graph
        i = g.item(item_id)
        path = g.path_to(i, [g.attr_index[a] for a in state.accepted])
        return Recommendation(item_id=item_id, name=g.item_names[i], path=tuple(path), score=0.0)

    def candidate_count(self, state: DialogueState) -> int:
        return len(self.view(state).candidates)
