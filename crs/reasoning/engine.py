"""The engine: apply one turn's feedback to the state, then decide the next action.

This is the single implementation of the policy; the LangGraph nodes, the public API and the
benchmark simulator all call it.
"""

from __future__ import annotations

import hashlib
import operator
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import fields
from typing import Any, NamedTuple

import numpy as np

from crs.kb.graph import KnowledgeGraph
from crs.reasoning.policy import (
    DecisionRule,
    PolicySettings,
    ThresholdRule,
    TurnView,
    entropy_at,
    most_uncertain,
    preference_weights,
    top_positions,
)
from crs.reasoning.scoring import FloatArray, IntArray, PopularityScorer, Scorer, ScoringContext
from crs.reasoning.state import Action, DialogueState, Feedback, Recommendation

__all__ = ["ITEM_PRIOR", "Engine"]

#: A prior key for one item ("item:<item id>"); crs.memory writes the same prefix (the layers stay apart).
ITEM_PRIOR = "item:"


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
    raise TypeError("crs.reasoning.engine._evolve rebuilds DialogueState positionally: every field must be a "
                    "positional __init__ parameter")
_state_values = operator.attrgetter(*_STATE_FIELDS)
_FIELD_POSITION = {name: i for i, name in enumerate(_STATE_FIELDS)}
_Key = tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]
#: Vocabularies up to this size use one share bin per attribute (see _CandidateSet.bins).
_DENSE_BINS = 512
#: Candidate sets this large get their attribute shares from one sparse matrix–vector product
#: over the whole graph (see _matvec_share), not from their own (item, attribute) entries.
_MATVEC_MIN_ITEMS = 100_000


def _matvec_share(graph: KnowledgeGraph, items: IntArray, weights: FloatArray) -> FloatArray:
    """The preference-weighted share of ``items`` having each attribute, for a large set.

    Gathering a set's entries costs a pass over them (8M for all of a 1M-item catalog) every
    time the set is new; the product reads the graph's fixed matrix instead, ~20x faster at
    that size. Sums are the same up to rounding (another order of additions).
    """
    if len(items) == graph.n_items:  # every item, in order: the weights are the vector
        vector = weights
    else:
        vector = np.zeros(graph.n_items)
        vector[items] = weights
    share: FloatArray = graph.attr_item_matrix @ vector
    share.flags.writeable = False  # memoised per candidate set (see _CandidateSet.share)
    return share


def _narrowed(entries: tuple[IntArray, IntArray], keep: np.ndarray, drop: int) -> tuple[IntArray, IntArray]:
    """(slot, attribute) entries of a parent set, for the slots ``keep`` marks: the slots
    renumbered to positions, the order kept, and attribute ``drop`` (if not -1) left out."""
    owner, cols = entries
    live = keep[owner]
    if drop >= 0:
        live &= cols != drop
    kept = np.flatnonzero(live)  # one pass over the mask serves both arrays
    position = keep.cumsum() - 1
    return position.take(owner.take(kept)), cols.take(kept)


class _Bins(NamedTuple):
    """The item–attribute entries of a candidate set, laid out for weighted counts.

    Entry i says that the candidate in slot ``owner[i]`` has the attribute of bin ``cols[i]``;
    entries are sorted by slot, then attribute. Slots are the candidates' positions, unless
    ``live`` marks which slots hold the candidates (in order): a set that dropped only a few
    candidates shares its parent's entries, and the dropped slots count with weight 0.
    """

    named: IntArray | None  # the attribute of each bin; None: bins are the attributes
    owner: IntArray
    cols: IntArray
    n_bins: int
    live: np.ndarray | None


def _binned(graph: KnowledgeGraph, owner: IntArray, attrs: IntArray) -> _Bins:
    """Bins for (position, attribute) entries.

    A large vocabulary gets one bin per attribute the entries name, so a weighted share needs
    a few hundred bins instead of 8,438 (LastFM*); a small one uses the attributes as bins.
    """
    n_attributes = graph.n_attributes
    if n_attributes <= _DENSE_BINS:
        return _Bins(None, owner, attrs, n_attributes, None)
    named = np.flatnonzero(np.bincount(attrs, minlength=n_attributes))
    lookup = np.empty(n_attributes, dtype=np.int64)
    lookup[named] = np.arange(len(named))
    return _Bins(named, owner, lookup.take(attrs), len(named), None)


class _CandidateSet:
    """A sorted array of candidate items, with the item–attribute entries a question needs.

    The entries (see :class:`_Bins`) cover every attribute of every candidate, except accepted
    attributes the set was narrowed by (``shared`` here and, when filtered from it, in the
    parent). Every candidate has those, so their share of the preference is within rounding
    of 1 and never askable: leaving them out changes no question and shortens every count.

    A subset remembers its parent and mask until its entries are first needed, then builds
    them from the parent's (cheaper than gathering rows of the graph again); sets that are
    only passed through never pay for them.
    """

    __slots__ = ("_bins", "_incidence", "_origin", "_shared", "_shares", "items")

    def __init__(self, items: IntArray, origin: tuple[_CandidateSet, np.ndarray] | None = None,
                 shared: int = -1) -> None:
        self.items = items
        self._origin = origin  # (parent set, mask over the parent's items)
        self._shared = shared  # an attribute every candidate has, or -1
        self._bins: _Bins | None = None
        self._incidence: tuple[IntArray, IntArray] | None = None
        self._shares: OrderedDict[bytes, FloatArray] | None = None

    def share(self, graph: KnowledgeGraph, weights: FloatArray) -> FloatArray:
        """:func:`_matvec_share` of a large set, memoised by the weights' digest: a scorer that
        ranks every user alike (popularity) gives every new conversation the same weights."""
        key = hashlib.blake2b(weights.tobytes(), digest_size=16).digest()
        memo = self._shares if self._shares is not None else OrderedDict()
        self._shares = memo
        found = memo.get(key)
        if found is None:
            found = memo[key] = _matvec_share(graph, self.items, weights)
            if len(memo) > 4:
                memo.popitem(last=False)
        return found

    def bins(self, graph: KnowledgeGraph) -> _Bins:
        """The entries, laid out for weighted counts (see :class:`_Bins`); built on first use."""
        origin = self._origin  # read first: another thread sets _bins before it clears _origin
        if self._bins is None:
            if origin is not None and (origin[0]._bins is not None or origin[0]._origin is not None):
                parent, keep = origin
                base = parent.bins(graph)  # the parent builds its own the same way if need be
                if base.live is not None:  # keep marks the parent's candidates: spread it on its slots
                    spread = np.zeros(len(base.live), dtype=bool)
                    spread[base.live] = keep
                    keep = spread
                if self._shared < 0 and 10 * len(self.items) >= 9 * len(keep):
                    # Few candidates gone (a failed list): share the parent's entries. Their
                    # slots weigh 0, and adding 0.0 leaves every sum exactly as it was.
                    self._bins = base._replace(live=keep)
                else:
                    attrs = base.cols if base.named is None else base.named.take(base.cols)
                    shared = self._shared
                    self._bins = _binned(graph, *_narrowed((base.owner, attrs), keep, shared))
            else:
                owner, cols = self._incidence or graph.item_attrs.gather(self.items)
                if self._shared >= 0:
                    other = cols != self._shared
                    owner, cols = owner[other], cols[other]
                self._bins = _binned(graph, owner, cols)
            self._origin = None  # let the parent go
        return self._bins

    def incidence(self, graph: KnowledgeGraph) -> tuple[IntArray, IntArray]:
        """(position in ``items``, attribute) for every attribute of every candidate (only the
        share of every attribute reads it, for the options offered with a question)."""
        if self._incidence is None:
            self._incidence = graph.item_attrs.gather(self.items)
        return self._incidence

    def subset(self, keep: np.ndarray, shared: int = -1) -> _CandidateSet:
        """The candidates where ``keep`` (aligned with ``items``) is true; ``shared``: an
        attribute all of them have."""
        return _CandidateSet(self.items[keep], (self, keep), shared)

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

    __slots__ = ("_accepted", "_asked", "_entropy", "_found", "_graph", "_share", "_solution", "_weights")

    def __init__(self, graph: KnowledgeGraph, found: _CandidateSet, weights: FloatArray,
                 asked: tuple[str, ...], accepted: tuple[int, ...]) -> None:
        self._graph, self._found, self._weights = graph, found, weights
        self._asked, self._accepted = asked, accepted  # never asked (again)
        # (attribute of each share bin or None when bins are attributes, share per bin,
        # bin of the best question or None), once solved
        self._solution: tuple[IntArray | None, FloatArray, int | None] | None = None
        self._entropy: float | None = None
        self._share: FloatArray | None = None

    def _solve(self) -> tuple[IntArray | None, FloatArray, int | None]:
        g = self._graph
        if len(self._found.items) >= _MATVEC_MIN_ITEMS:  # shares of every attribute at once
            share = self.attr_share
            exclude = [g.attr_index[a] for a in self._asked]
            exclude.extend(self._accepted)  # shared by every candidate: never askable
            best = most_uncertain(share, exclude or None)
            solved: tuple[IntArray | None, FloatArray, int | None] = (None, share, best)
            self._solution = solved
            return solved
        bins, owner, cols, n_bins, live = self._found.bins(g)
        weights = self._weights
        if live is not None:  # weights by slot, 0 for the slots of candidates gone
            weights = np.zeros(len(live))
            weights[live] = self._weights
        # Preference-weighted share of the candidates having each attribute. Attributes no
        # candidate has score 0 and shared ones are left out: neither is ever askable, so
        # neither can change the choice.
        p: FloatArray = np.bincount(cols, weights=weights.take(owner), minlength=n_bins).astype(
            np.float64, copy=False)
        skip: np.ndarray | list[int] | None = None
        if self._asked or self._accepted:
            index = g.attr_index
            exclude = [index[a] for a in self._asked]
            exclude.extend(self._accepted)
            if bins is None:
                skip = exclude
            else:
                flags = np.zeros(g.n_attributes, dtype=bool)
                flags[exclude] = True
                skip = flags[bins]
        solution = (bins, p, most_uncertain(p, skip) if n_bins else None)
        self._solution = solution
        return solution

    @property
    def best_attribute(self) -> int | None:
        bins, _, b = self._solution or self._solve()
        if b is None:
            return None
        return b if bins is None else int(bins[b])

    @property
    def best_entropy(self) -> float:
        if self._entropy is None:
            _, p, b = self._solution or self._solve()
            self._entropy = 0.0 if b is None else max(entropy_at(p, b), 0.0)
        return self._entropy

    @property
    def attr_share(self) -> FloatArray:
        """The share over every attribute (zero for those no candidate has)."""
        share = self._share
        if share is None and len(self._found.items) >= _MATVEC_MIN_ITEMS:
            share = self._share = self._found.share(self._graph, self._weights)
        if share is None:
            # The entries leave shared attributes out: count every attribute of the candidates.
            owner, cols = self._found.incidence(self._graph)
            share = np.bincount(cols, weights=self._weights.take(owner),
                                minlength=self._graph.n_attributes).astype(np.float64, copy=False)
            self._share = share
        return share


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
        self._cache_lock = threading.Lock()  # conversations share the engine: a hit's move_to_end races eviction
        self._id_cache: dict[tuple[str, ...], tuple[tuple[int, ...], IntArray]] = {}
        self._seed_cache: dict[tuple[str, ...], FloatArray] = {}

    # ----------------------------------------------------------------- feedback
    def start(
        self, user_id: str | None = None, prior: Iterable[tuple[str, float]] = (), avoid: Iterable[str] = ()
    ) -> DialogueState:
        """A fresh conversation; ``prior`` is a soft preference from long-term memory, ``avoid``
        the attributes the person said they are done with (kept out of lists, not of questions).
        A prior key is an attribute id, or ``item:<item id>`` for a weight on one item (the
        neighbours of past choices). Ids the catalog does not have are dropped: memory may
        outlive a catalog build."""
        index, items = self.graph.attr_index, self.graph.item_index
        known = [(a, float(w)) for a, w in prior
                 if a in index or (a.startswith(ITEM_PRIOR) and a[len(ITEM_PRIOR):] in items)]
        return DialogueState(user_id=user_id, prior=tuple(known), avoid=tuple(a for a in avoid if a in index))

    def validate(self, feedback: Feedback) -> None:
        """Raise :class:`kb.UnknownIdError` for any id the catalog does not have."""
        g = self.graph
        attrs, items = g.attr_index, g.item_index
        # Membership tests first (every turn passes them); the graph's lookup raises the error.
        for attr in (*feedback.accept_attributes, *feedback.reject_attributes):
            if attr not in attrs:
                g.attribute(attr)
        for item in (*feedback.reject_items, *feedback.like_items, *feedback.want_items,
                     *filter(None, (feedback.accept_item, feedback.about_item))):
            if item not in items:
                g.item(item)

    def apply(self, state: DialogueState, feedback: Feedback) -> DialogueState:
        """The state after the user's feedback. Ids are validated first; nothing changes on error."""
        self.validate(feedback)
        return _evolve(state, **self._answer_changes(state, feedback, state.question, state.options))

    def _answer_changes(
        self, state: DialogueState, feedback: Feedback, question: str | None, options: tuple[str, ...]
    ) -> dict[str, Any]:
        """The fields ``feedback`` changes, ``question`` and ``options`` being those pending."""
        accept, reject = feedback.accept_attributes, feedback.reject_attributes
        # A later answer wins: "not rock" after "rock" takes rock off the path. (The filters
        # only run when the other list is non-empty: most answers are a single yes or no.)
        accepted = _unique((*state.accepted, *accept))
        if reject:
            accepted = tuple(a for a in accepted if a not in reject)
        rejected = _unique((*state.rejected, *reject))
        if accept:
            rejected = tuple(r for r in rejected if r not in accept)
        rejected_items = state.rejected_items
        if feedback.reject_items:
            rejected_items = _unique((*rejected_items, *feedback.reject_items))
        answered = question is not None and not feedback.is_empty
        return {
            "accepted": accepted,
            "rejected": rejected,
            "asked": _unique((*state.asked, *accept, *reject)),
            "rejected_items": rejected_items,
            "seeds": _unique((*state.seeds, *feedback.like_items)) if feedback.like_items else state.seeds,
            "wanted": _unique((*state.wanted, *feedback.want_items)) if feedback.want_items else state.wanted,
            "accepted_item": feedback.accept_item or state.accepted_item,
            "question": None if answered else question,
            "options": () if answered else options,
            "turn": state.turn + 1,
        }

    # ------------------------------------------------------------------ reading
    def _attr_indices(self, ids: tuple[str, ...]) -> tuple[tuple[int, ...], IntArray]:
        """Attribute ids → graph indices as a tuple and as a read-only array, memoised (the
        same tuples recur turn after turn)."""
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
        with self._cache_lock:
            self._cand_cache[key] = found
            while len(self._cand_cache) > self._cache_size:
                self._cand_cache.popitem(last=False)
        return found

    def _candidates(
        self, accepted: tuple[int, ...], pruned: tuple[int, ...], rejected_items: tuple[str, ...]
    ) -> _CandidateSet:
        """Items having every accepted attribute, none of ``pruned``, and not rejected.

        Cached per answer set and built from the set one answer shorter, so a dialogue that
        adds one answer a turn pays one sorted intersection, not a pass over the catalog.
        Any build order gives the same sorted items.
        """
        key = (accepted, pruned, rejected_items)
        cache = self._cand_cache
        with self._cache_lock:
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
        if hit is not None:
            return hit
        g = self.graph
        if rejected_items:
            # After a failed list, the previous turn's set is cached one answer back: narrow
            # that one rather than rebuilding from the set without rejected items.
            if accepted and (base := cache.get((accepted[:-1], pruned, rejected_items))) is not None:
                having = base.flags(g, g.attr_items.row(accepted[-1]))
                return self._remember(key, base.subset(having, shared=accepted[-1]))
            if pruned and (base := cache.get((accepted, pruned[:-1], rejected_items))) is not None:
                return self._remember(key, base.subset(~base.flags(g, g.attr_items.row(pruned[-1]))))
            # Items are rejected a list at a time: start from a cached prefix, trying one list
            # of top_k back first, else the longest one.
            cut = len(rejected_items) - self.settings.top_k
            if cut <= 0 or (accepted, pruned, rejected_items[:cut]) not in cache:
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
            having = base.flags(g, g.attr_items.row(accepted[-1]))
            return self._remember(key, base.subset(having, shared=accepted[-1]))
        if accepted:
            return self._remember(key, _CandidateSet(g.attr_items.row(accepted[0]).copy(), shared=accepted[0]))
        return self._remember(key, _CandidateSet(np.arange(g.n_items, dtype=np.int64)))

    def view(self, state: DialogueState) -> TurnView:
        """Candidates, their scores and preference weights, and the best question to ask
        (worked out when first read)."""
        g = self.graph
        acc, accepted = self._attr_indices(state.accepted)
        rej, rejected = self._attr_indices(state.rejected)
        no_rule = self.settings.no_rule
        # Seeds lead the excluded items, so the candidate cache extends one prefix per list.
        excluded = (*state.seeds, *state.rejected_items) if state.seeds else state.rejected_items
        found = self._candidates(acc, rej if no_rule == "prune" else (), excluded)
        candidates = found.items
        scores = self.scorer.score(ScoringContext(state.user_id, accepted, rejected), candidates)
        if state.seeds:
            scores = scores + self._seed_scores(state.seeds)[candidates]
        if state.wanted:
            wanted = np.isin(candidates, [g.item_index[i] for i in state.wanted])
            scores = scores + self.settings.want_weight * wanted
        if no_rule == "soft" and rej:
            adjust = np.zeros(g.n_items)
            for r in rej:
                adjust[g.attr_items.row(r)] -= self.settings.rejection_weight
            scores = scores + adjust[candidates]
        sure = scores  # what the decision rule and the question see
        if state.prior:
            adjust = np.zeros(g.n_items)
            for key, weight in state.prior:
                attr = g.attr_index.get(key)
                if attr is not None:
                    adjust[g.attr_items.row(attr)] += weight
                else:
                    adjust[g.item_index[key[len(ITEM_PRIOR):]]] += weight
            prior = adjust[candidates]
            # Memory is a guess about this search: each rejected list (after the first: one miss
            # may be bad luck) shows it missed, so it counts less towards recommending again
            # rather than asking; lists are still ranked with all of it.
            missed = len(state.rejected_items) / self.settings.top_k - self.settings.prior_fade_after
            fade = self.settings.prior_fade ** max(0.0, missed)
            remembered = scores + prior
            sure = remembered if fade >= 1.0 else scores + fade * prior
            scores = remembered
        weights = preference_weights(sure, self.settings.temperature)
        if len(candidates) == 0:
            return TurnView(candidates, scores, weights, None, 0.0, None)
        question = _Question(g, found, weights, state.asked, acc)
        return TurnView(candidates, scores, weights, question=question)

    def _seed_scores(self, seeds: tuple[str, ...]) -> FloatArray:
        """What the named examples add to every item: ``seed_weight`` × the share of the seeds
        having each attribute, summed over the item's attributes (memoised: fixed per dialogue)."""
        cached = self._seed_cache.get(seeds)
        if cached is not None:
            return cached
        g = self.graph
        rows = np.array([g.item_index[i] for i in seeds], dtype=np.int64)
        share = g.item_attrs.weighted_column_sums(rows, np.full(len(rows), 1.0 / len(rows)))
        every_attribute = np.arange(g.n_attributes, dtype=np.int64)
        added: FloatArray = self.settings.seed_weight * g.attr_items.weighted_column_sums(every_attribute, share)
        added.flags.writeable = False
        if len(self._seed_cache) > 256:
            self._seed_cache.clear()
        self._seed_cache[seeds] = added
        return added

    def recommendations(
        self, state: DialogueState, view: TurnView, *, exclude: np.ndarray | None = None
    ) -> tuple[Recommendation, ...]:
        """The top-k candidates, best first; ``exclude`` (a mask over all items) leaves some out."""
        g = self.graph
        ids, names = g.item_ids, g.item_names
        # Every candidate has every accepted attribute (that is what makes it a candidate), so
        # its path is the accepted attributes in order, then the item: what path_to returns.
        accepted = state.accepted
        candidates, all_scores = view.candidates, view.scores
        if exclude is not None:
            keep = ~exclude[candidates]
            candidates, all_scores = candidates[keep], all_scores[keep]
        positions = top_positions(candidates, all_scores, self.settings.top_k)
        items, scores = candidates[positions].tolist(), all_scores[positions].tolist()
        return tuple([
            Recommendation(item_id=ids[i], name=names[i], path=(*accepted, ids[i]), score=s)
            for i, s in zip(items, scores, strict=True)
        ])

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
        g = self.graph
        same = g.facets[g.attributes[attr].facet]
        if len(same) > 5000:  # a huge flat tag vocabulary: options would be noise
            return ()
        share = view.attr_share
        assert share is not None
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
        changes = self._shown_changes(state, action)
        return state if changes is None else _evolve(state, **changes)

    def _shown_changes(self, state: DialogueState, action: Action) -> dict[str, Any] | None:
        if action.kind == "ask":
            return {"question": action.attribute, "options": action.options,
                    "questions_in_a_row": state.questions_in_a_row + 1}
        if action.kind == "recommend":
            return {"question": None, "options": (), "questions_in_a_row": 0,
                    "recommended": tuple([r.item_id for r in action.recommendations])}
        return None

    def explain(self, state: DialogueState, item_id: str) -> Recommendation:
        g = self.graph
        i = g.item(item_id)
        path = g.path_to(i, [g.attr_index[a] for a in state.accepted])
        return Recommendation(item_id=item_id, name=g.item_names[i], path=tuple(path), score=0.0)

    def candidate_count(self, state: DialogueState) -> int:
        return len(self.view(state).candidates)
