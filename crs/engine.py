"""The engine: apply one turn's feedback to the state, then decide the next action.

This is the single implementation of the policy; the LangGraph nodes, the public API and the
benchmark simulator all call it.
"""

from __future__ import annotations

import operator
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
    entropy_at,
    most_uncertain,
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
    """``state.evolve`` without ``dataclasses.replace``'s per-call introspection (hot path):
    every field value is read in one C call and the state rebuilt positionally."""
    values = list(_state_values(state))
    for name, value in changes.items():
        values[_FIELD_POSITION[name]] = value
    return DialogueState(*values)


_STATE_FIELDS = tuple(f.name for f in fields(DialogueState))
if not all(f.init and not f.kw_only for f in fields(DialogueState)):
    raise TypeError("crs.engine._evolve rebuilds DialogueState positionally: every field must be a "
                    "positional __init__ parameter")
_state_values = operator.attrgetter(*_STATE_FIELDS)
_FIELD_POSITION = {name: i for i, name in enumerate(_STATE_FIELDS)}
_Key = tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]
#: Vocabularies up to this size use one share bin per attribute (see _CandidateSet.bins).
_DENSE_BINS = 512


class _CandidateSet:
    """A sorted array of candidate items with its item–attribute incidence, built lazily.

    A subset remembers its parent and mask until its incidence is first needed, then
    filters the parent's incidence if that exists (cheaper than gathering from the graph);
    sets that are only passed through never pay for it.
    """

    __slots__ = ("_bins", "_incidence", "_origin", "_present", "items")

    def __init__(self, items: IntArray, origin: tuple[_CandidateSet, np.ndarray] | None = None) -> None:
        self.items = items
        self._origin = origin  # (parent set, mask over the parent's items)
        self._incidence: tuple[IntArray, IntArray] | None = None
        self._present: IntArray | None = None
        self._bins: tuple[IntArray | None, IntArray, IntArray] | None = None

    def incidence(self, graph: KnowledgeGraph) -> tuple[IntArray, IntArray]:
        """(position in ``items``, attribute) for every attribute of every candidate.

        Sorted by position, then attribute, however it is built.
        """
        if self._incidence is None:
            origin = self._origin
            if origin is not None and (origin[0]._incidence is not None or origin[0]._origin is not None):
                # Filter the parent's incidence (built the same way if need be): a few passes
                # over arrays, cheaper than gathering the rows of the graph again.
                parent, keep = origin
                owner, cols = parent.incidence(graph)
                position = np.cumsum(keep) - 1
                live = keep[owner]
                self._incidence = (position[owner[live]], cols[live])
            else:
                self._incidence = graph.item_attrs.gather(self.items)
            self._origin = None  # let the parent go
        return self._incidence

    def present(self, graph: KnowledgeGraph) -> IntArray:
        """The attributes some candidate has: the only ones worth asking about."""
        if self._present is None:
            cols = self.incidence(graph)[1]
            self._present = np.flatnonzero(np.bincount(cols, minlength=graph.n_attributes))
        return self._present

    def bins(self, graph: KnowledgeGraph) -> tuple[IntArray | None, IntArray, IntArray]:
        """The incidence as ``(bin attributes, owner, bin)``: the attribute of each bin (None when
        bins are attributes), and for every incidence entry its candidate position and bin.

        A large vocabulary gets one bin per attribute some candidate has (``present``), so a
        weighted share needs a few hundred bins instead of 8,438 (LastFM*). A small one uses
        the attributes as bins, which saves building ``present``. Either way each bin sums the
        same entries in the same order.
        """
        if self._bins is None:
            owner, cols = self.incidence(graph)
            if graph.n_attributes <= _DENSE_BINS:
                self._bins = (None, owner, cols)
            else:
                present = self.present(graph)
                lookup = np.empty(graph.n_attributes, dtype=np.int64)
                lookup[present] = np.arange(len(present))
                self._bins = (present, owner, lookup[cols])
        return self._bins

    def subset(self, keep: np.ndarray) -> _CandidateSet:
        """The candidates where ``keep`` (aligned with ``items``) is true."""
        return _CandidateSet(self.items[keep], (self, keep))

    def flags(self, graph: KnowledgeGraph, marked: IntArray) -> np.ndarray:
        """Which candidates are among ``marked`` (item indices)."""
        flags = np.zeros(graph.n_items, dtype=bool)
        flags[marked] = True
        return flags[self.items]


class _Question:
    """The best question of one turn, worked out on first read.

    The decision rule reads it only when its cheap checks (candidate count, turn budget,
    questions in a row, top-k mass) all say "ask", so recommending turns skip it.
    """

    __slots__ = ("_bins", "_entropy", "_exclude", "_found", "_graph", "_p", "_position", "_share",
                 "_solved", "_weights")

    def __init__(self, graph: KnowledgeGraph, found: _CandidateSet, weights: FloatArray,
                 exclude: tuple[int, ...]) -> None:
        self._graph, self._found, self._weights, self._exclude = graph, found, weights, exclude
        self._solved = False
        self._bins: IntArray | None = None  # attribute of each share bin; None: bins are attributes
        self._p: FloatArray | None = None  # preference-weighted share of each bin
        self._position: int | None = None  # bin of the best attribute, if any
        self._entropy: float | None = None
        self._share: FloatArray | None = None

    def _solve(self) -> None:
        g = self._graph
        bins, owner, cols = self._found.bins(g)
        n_bins = g.n_attributes if bins is None else len(bins)
        # Preference-weighted share of the candidates having each attribute. Attributes no
        # candidate has score 0 and are never askable, so extra bins cannot change the choice.
        p = np.bincount(cols, weights=self._weights[owner], minlength=n_bins)
        skip: np.ndarray | list[int] | None = None
        if self._exclude:  # attributes already asked or accepted
            if bins is None:
                skip = list(self._exclude)
            else:
                flags = np.zeros(g.n_attributes, dtype=bool)
                flags[list(self._exclude)] = True
                skip = flags[bins]
        self._bins, self._p = bins, p
        self._position = most_uncertain(p, skip) if n_bins else None
        self._solved = True

    @property
    def best_attribute(self) -> int | None:
        if not self._solved:
            self._solve()
        b = self._position
        if b is None:
            return None
        return b if self._bins is None else int(self._bins[b])

    @property
    def best_entropy(self) -> float:
        if self._entropy is None:
            if not self._solved:
                self._solve()
            b = self._position
            self._entropy = 0.0 if b is None or self._p is None else max(entropy_at(self._p, b), 0.0)
        return self._entropy

    @property
    def attr_share(self) -> FloatArray:
        """The share over every attribute (zero for those no candidate has)."""
        if self._share is None:
            if not self._solved:
                self._solve()
            assert self._p is not None
            if self._bins is None:
                self._share = self._p
            else:
                share = np.zeros(self._graph.n_attributes)
                share[self._bins] = self._p
                self._share = share
        return self._share


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
        self._id_cache: dict[tuple[str, ...], tuple[tuple[int, ...], IntArray]] = {}

    # ----------------------------------------------------------------- feedback
    def start(self, user_id: str | None = None, prior: Iterable[tuple[str, float]] = ()) -> DialogueState:
        """A fresh conversation; ``prior`` is a soft preference from long-term memory."""
        known = [(a, float(w)) for a, w in prior if a in self.graph.attr_index]
        return DialogueState(user_id=user_id, prior=tuple(known))

    def validate(self, feedback: Feedback) -> None:
        """Raise :class:`kb.UnknownIdError` for any id the catalog does not have."""
        g = self.graph
        attrs, items = g.attr_index, g.item_index
        # Membership tests first (every turn passes them); the graph's lookup raises the error.
        for attr in (*feedback.accept_attributes, *feedback.reject_attributes):
            if attr not in attrs:
                g.attribute(attr)
        for item in (*feedback.reject_items, *filter(None, (feedback.accept_item, feedback.about_item))):
            if item not in items:
                g.item(item)

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
        return self._attr_indices(ids)[0]

    def _attr_indices(self, ids: tuple[str, ...]) -> tuple[tuple[int, ...], IntArray]:
        """Attribute ids → graph indices as a tuple and as a read-only array, memoised."""
        hit = self._id_cache.get(ids)
        if hit is None:
            if len(self._id_cache) > 8192:
                self._id_cache.clear()
            index = self.graph.attr_index
            as_tuple = tuple(index[a] for a in ids)
            as_array = np.array(as_tuple, dtype=np.int64)
            as_array.flags.writeable = False  # shared by every turn that reads these ids
            hit = self._id_cache[ids] = (as_tuple, as_array)
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
        Any build order gives the same sorted items (and incidence).
        """
        key = (accepted, pruned, rejected_items)
        cache = self._cand_cache
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        g = self.graph
        if rejected_items:
            # After a failed list, the previous turn's set is cached one answer back: narrow
            # that one rather than rebuilding from the set without rejected items.
            if accepted and (base := cache.get((accepted[:-1], pruned, rejected_items))) is not None:
                return self._remember(key, base.subset(base.flags(g, g.attr_items.row(accepted[-1]))))
            if pruned and (base := cache.get((accepted, pruned[:-1], rejected_items))) is not None:
                return self._remember(key, base.subset(~base.flags(g, g.attr_items.row(pruned[-1]))))
            # Items are rejected a list at a time: start from the longest cached prefix.
            cut = len(rejected_items) - 1
            while cut > 0 and (accepted, pruned, rejected_items[:cut]) not in cache:
                cut -= 1
            base = self._candidates(accepted, pruned, rejected_items[:cut])
            new = rejected_items[cut:]
            gone = np.fromiter((g.item_index[i] for i in new), np.int64, len(new))
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
        """Candidates, their scores and preference weights, and the best question to ask
        (worked out when first read)."""
        g = self.graph
        acc, accepted = self._attr_indices(state.accepted)
        rej, rejected = self._attr_indices(state.rejected)
        no_rule = self.settings.no_rule
        found = self._candidates(acc, rej if no_rule == "prune" else (), state.rejected_items)
        candidates = found.items
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
        if len(candidates) == 0:
            return TurnView(candidates, scores, weights, None, 0.0, None)
        exclude = self._attr_tuple(state.asked) + acc
        return TurnView(candidates, scores, weights, question=_Question(g, found, weights, exclude))

    def recommendations(self, state: DialogueState, view: TurnView) -> tuple[Recommendation, ...]:
        g = self.graph
        ids, names = g.item_ids, g.item_names
        # Every candidate has every accepted attribute (that is what makes it a candidate), so
        # its path is the accepted attributes in order, then the item: what path_to returns.
        accepted = state.accepted
        positions = top_positions(view.candidates, view.scores, self.settings.top_k)
        return tuple(
            Recommendation(item_id=ids[i], name=names[i], path=(*accepted, ids[i]), score=s)
            for i, s in zip(
                view.candidates[positions].tolist(), view.scores[positions].tolist(), strict=True
            )
        )

    def decide(self, state: DialogueState, *, force_recommend: bool = False) -> Action:
        """Ask the most informative question, or recommend the top-k, by the decision rule."""
        view = self.view(state)
        count = len(view.candidates)
        if count == 0:
            return Action(kind="clarify", candidates=0)
        if force_recommend or self.rule.should_recommend(view, state.questions_in_a_row, state.turn):
            return Action(kind="recommend", recommendations=self.recommendations(state, view),
                          candidates=count)
        best = view.best_attribute
        assert best is not None, "the rule chose to ask with nothing worth asking"
        return Action(
            kind="ask",
            attribute=self.graph.attr_ids[best],
            options=self._options(best, view, state),
            candidates=count,
        )

    def _options(self, attr: int, view: TurnView, state: DialogueState) -> tuple[str, ...]:
        """Other values of the asked facet that candidates have, most preferred first."""
        n = self.settings.options
        if n == 0:
            return ()
        share = view.attr_share
        assert share is not None
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
