"""The conversation's long-term memory: implements ``crs.graphs.steps.MemoryHooks`` (``prior``, ``observe``)
plus reflection, reranked retrieval, profiles and forget-me.

Failures are safe: when the store is locked, unreachable or corrupted, the hooks log a warning
and behave as "no memory" (the conversation goes on), observed turns stay buffered for a later
reflection, and nothing already stored is deleted. On-demand calls (``reflect``, ``forget``,
``profile``) raise :class:`memory.MemoryStoreError` with a clear message instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crs.kb.graph import KnowledgeGraph
from crs.kb.text import phrase
from crs.memory.background import Reflector
from crs.memory.chroma_store import ChromaMemoryStore
from crs.memory.clock import Clock, utcnow
from crs.memory.config import MemorySettings
from crs.memory.entry import MemoryEntry, MemoryKind
from crs.memory.llm import ReflectionError, llm_candidates
from crs.memory.neighbours import ItemNeighbours
from crs.memory.process_store import ProcessMemoryStore
from crs.memory.profile import Profile, base_rates, build_profile
from crs.memory.reflection import (
    Candidate,
    ReflectionResult,
    apply_candidates,
    offline_candidates,
    place_phrase,
    summary_candidate,
)
from crs.memory.reranker import RerankerBank, gumbel_top_m
from crs.memory.session import SessionRecord, part_id, update_record
from crs.memory.statements import find_statements
from crs.memory.store import MemoryHit, MemoryStore, MemoryStoreError, StoreCorrupted
from crs.memory.tokens import encoding, fit_to_budget

__all__ = ["MemorySettings", "ReflectiveMemory", "Retrieval"]

log = logging.getLogger(__name__)

_END_ACTIONS = {"accepted", "thanks"}
#: a carried record is reflected once it holds this many unreflected turns, whatever reflect_every says
_MAX_UNREFLECTED = 32


@dataclass
class Retrieval:
    """The outcome of one reranked retrieval, kept to credit the memories after the reply."""

    user_id: str
    query: str
    query_vector: NDArray[np.float32]
    hits: list[MemoryHit]  # the K retrieved by similarity
    chosen: list[int]  # indices into ``hits`` of the M kept, in rank order
    credited: bool = False

    @property
    def entries(self) -> list[MemoryEntry]:
        return [self.hits[i].entry for i in self.chosen]

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.entries]


@dataclass
class _UserState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    records: OrderedDict[str, SessionRecord] = field(default_factory=OrderedDict)  # sessions observed here
    postponed: OrderedDict[str, SessionRecord] = field(default_factory=OrderedDict)  # carried, reflection failed
    pending: list[Retrieval] = field(default_factory=list)
    profile: Profile | None = None
    chosen: list[str] | None = None  # items chosen before, as this session's recall read them (see chosen())
    holders: int = 0  # callers holding or waiting for ``lock``: never evicted meanwhile


class ReflectiveMemory:
    """Reflective long-term memory over a :class:`memory.MemoryStore` (RMM-style)."""

    def __init__(
        self,
        store: MemoryStore | None,
        *,
        graph: KnowledgeGraph | None = None,
        llm: Any | None = None,
        settings: MemorySettings | None = None,
        disabled_reason: str | None = None,
        clock: Clock = utcnow,
        background: bool = False,
        max_users: int = 1024,
    ) -> None:
        """``background``: reflections and reranker credit are written by a worker thread, off the
        reply path (every read of a user's memory first waits for that user's queued writes).
        ``max_users``: per-user working state kept in memory (idle users beyond it are dropped,
        least recently used first; what they lose is the unreflected tail of sessions left open)."""
        self.store = store
        #: "now" for writing memories and weighing their age (a script's ``wait`` moves it)
        self.clock = clock
        self.graph = graph
        self.llm = llm
        self.settings = settings or MemorySettings()
        self.disabled_reason = disabled_reason if store is None else None
        state_dir = store.state_dir if store is not None else None
        self.rerankers = RerankerBank(state_dir / "reranker" if state_dir else None, self.settings.reranker)
        self._profiles_dir = state_dir / "profiles" if state_dir else None
        self._rng = np.random.default_rng(self.settings.seed)
        self._users: OrderedDict[str, _UserState] = OrderedDict()  # least recently used first
        self.max_users = max_users
        self._guard = threading.Lock()
        self._local = threading.local()  # users whose lock this thread holds: no settling while holding it
        self.reflector = Reflector() if background else None
        if store is not None and self.settings.token_budget:
            # load the tokenizer now, off the reply path: else the first retrieval waits seconds for it
            # (with writes in their turns, on a thread of its own; encoding() loads it once)
            load = partial(encoding, self.settings.encoding)
            if self.reflector is not None:
                self.reflector.submit("", load)
            else:
                threading.Thread(target=load, name="crs-tokenizer-load", daemon=True).start()
        self._rates = base_rates(graph) if graph is not None else None
        self._lookup = _value_index(graph) if graph is not None else None
        self._attr_names = {a.id: a.value for a in graph.attributes} if graph is not None else {}
        self._item_names = dict(zip(graph.item_ids, graph.item_names, strict=True)) if graph is not None else {}
        # items people chose together, for the prior's item term (built only when it is on)
        self._neighbours = (ItemNeighbours(graph).scores
                            if graph is not None and self.settings.profile.item_weight > 0 else None)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        host: str | None = None,
        port: int = 8000,
        state_dir: str | Path | None = None,
        degrade: bool = True,
        process: bool = False,
        **kwargs: Any,
    ) -> ReflectiveMemory:
        """Open the embedded store at ``path`` (or a server at ``host:port``); with ``process``,
        the embedded store runs in a child process (:mod:`crs.memory.process_store`).

        Derived state (reranker, profiles) goes to ``state_dir``: by default beside an embedded
        store, and for a server ``$CRS_HOME/memory-derived``. With ``degrade`` a store that
        cannot be opened gives a memory that logs why and remembers nothing (the conversation
        still works); without it, the error is raised.
        """
        try:
            if host is not None:
                derived = Path(state_dir) if state_dir is not None else _default_path().with_name("memory-derived")
                store: MemoryStore = ChromaMemoryStore.http(host, port, state_dir=derived)
            else:
                extra = {"state_dir": Path(state_dir)} if state_dir is not None else {}
                opener = ProcessMemoryStore.persistent if process else ChromaMemoryStore.persistent
                store = opener(path or _default_path(), **extra)
        except MemoryStoreError as exc:
            if not degrade or isinstance(exc, StoreCorrupted):  # a damaged file needs the person
                raise
            log.warning("long-term memory disabled: %s", exc)
            return cls(None, disabled_reason=str(exc), **kwargs)
        return cls(store, **kwargs)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    @contextmanager
    def _held(self, user_id: str, *, settle: bool = True) -> Iterator[_UserState]:
        """The user's working state, under the user's lock; first (``settle``) waits for the
        user's background writes, so a read sees every earlier turn."""
        held: Counter[str] = self._local.__dict__.setdefault("held", Counter())
        if settle:
            self._settle(user_id)
        with self._guard:
            user = self._users.get(user_id)
            if user is None:
                user = self._users[user_id] = _UserState()
            else:
                self._users.move_to_end(user_id)
            user.holders += 1
        try:
            with user.lock:
                held[user_id] += 1
                try:
                    yield user
                finally:
                    held[user_id] -= 1
        finally:
            with self._guard:
                user.holders -= 1
                self._evict()

    def _settle(self, user_id: str) -> None:
        """Wait for the user's queued background writes, unless this thread holds the user's lock
        (the worker would need it: the caller already waited when it took the lock)."""
        if self.reflector is not None and not self._local.__dict__.setdefault("held", Counter())[user_id]:
            self.reflector.settle(user_id)

    def _evict(self) -> None:
        """Drop idle users beyond ``max_users`` (not held, nothing queued for them)."""
        excess = len(self._users) - self.max_users
        if excess <= 0:
            return
        doomed = []
        for uid, user in self._users.items():
            if user.holders == 0 and (self.reflector is None or not self.reflector.pending(uid)):
                doomed.append(uid)
                if len(doomed) == excess:
                    break
        for uid in doomed:
            del self._users[uid]

    def _later(self, user_id: str, task: Any) -> None:
        """Run a memory write now, or on the background worker."""
        if self.reflector is None:
            task()
        else:
            self.reflector.submit(user_id, task)

    def flush(self, user_id: str | None = None, timeout: float | None = None) -> bool:
        """Wait for queued background writes (of one user, or all); False if ``timeout`` passed first."""
        return True if self.reflector is None else self.reflector.settle(user_id, timeout)

    def _require_store(self) -> MemoryStore:
        if self.store is None:
            raise MemoryStoreError(f"long-term memory is disabled: {self.disabled_reason}")
        return self.store

    # ------------------------------------------------------------ hooks (crs)
    def recall(self, user_id: str, query: str | None = None) -> list[tuple[str, float]]:
        """A new session's prior, from the preference memories retrieved for its opening message
        through the RMM reranker (the session's profile, its welcome-back question and its
        replies then use the same memories). Stated dislikes always count: they keep things out
        of lists, which no ranking may drop. No memory (an empty prior) if the store fails."""
        try:
            with self._held(user_id) as user:
                user.profile = None
                entries = self._require_store().for_user(user_id).entries(valid_only=True)
                user.chosen = _chosen_items(entries)
                prefs = [e for e in entries if e.kind in ("like", "dislike")]
                rs = self.settings.reranker
                if len(prefs) > rs.prior_m:  # the reranker's pick (or, with it off, the most similar)
                    ret = self.retrieve(user_id, query or "What does this person like?", k=rs.top_k, m=rs.prior_m,
                                        kinds=("like", "dislike"))
                    kept = {e.id for e in ret.entries}
                    entries = [e for e in entries if e.kind not in ("like", "dislike") or e.id in kept
                               or (e.kind == "dislike" and e.evidence_source == "stated")]
                profile = build_profile(user_id, entries, rates=self._rates, settings=self.settings.profile,
                                        names=self._attr_names, item_names=self._item_names, now=self.clock(),
                                        memory_budget=self.settings.token_budget, neighbours=self._neighbours)
                if self.settings.token_budget and profile.entries:  # what a reply's prompt may cite
                    profile = replace(profile, memories=tuple(self.context(user_id, query or "What does this "
                                                                            "person like?")))
                user.profile = profile
                return list(profile.prior)
        except MemoryStoreError as exc:
            log.warning("memory unavailable for user %r, starting without it: %s", user_id, exc)
            return []

    def prior(self, user_id: str) -> list[tuple[str, float]]:
        """The soft prior for a new session; no memory (an empty prior) if the store fails."""
        try:
            # Read afresh at every session start: another worker may have reflected meanwhile.
            with self._held(user_id) as user:
                user.profile = None
            return list(self.load_profile(user_id).prior)
        except MemoryStoreError as exc:
            log.warning("memory unavailable for user %r, starting without it: %s", user_id, exc)
            return []

    def avoid(self, user_id: str) -> list[str]:
        """Attributes the user said they are done with, to keep out of lists (none if the store fails)."""
        try:
            return list(self.load_profile(user_id).avoid)
        except MemoryStoreError as exc:
            log.warning("memory unavailable for user %r, starting without it: %s", user_id, exc)
            return []

    def chosen(self, user_id: str) -> list[str]:
        """Items the user chose before, newest first: not offered again unless asked for.

        Right after :meth:`recall` (a session's start) this is what recall read, not a second read
        of the store: nothing was written for the user in between (a write clears it)."""
        try:
            with self._held(user_id) as user:
                if user.chosen is not None:
                    found, user.chosen = user.chosen, None
                    return found
                entries = self._require_store().for_user(user_id).entries(valid_only=True)
            return _chosen_items(entries)
        except MemoryStoreError as exc:
            log.warning("memory unavailable for user %r, starting without it: %s", user_id, exc)
            return []

    def observe(self, user_id: str, state: Mapping[str, Any]) -> None:
        """Fold one finished turn into the session; reflect at the session's end or every N turns.

        The session's record is kept in this process (see :meth:`observe_session` for a
        conversation that carries it). Never raises: memory must not break the conversation
        (store failures are logged in :meth:`_safe_reflect`; anything else with its traceback).
        """
        if self.store is None:
            return
        try:
            self._observe(user_id, state, None)
        except Exception:
            log.exception("long-term memory could not observe a turn of user %r", user_id)

    def observe_session(self, user_id: str, state: Mapping[str, Any],
                        record: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Like :meth:`observe`, for a conversation that carries its session's record: ``record``
        is what the previous turn returned (None at the first), and the result is what to carry on.

        Nothing of the session stays in this process: turns served by different workers make one
        session, and deleting the conversation (forget-me) deletes the record with it. Reflected
        turns leave the record, so it stays small however long the session runs.
        """
        if self.store is None:
            return None
        try:
            carried: dict[str, Any] = self._observe(user_id, state, record or {}).to_dict()
            return carried
        except Exception:
            log.exception("long-term memory could not observe a turn of user %r", user_id)
            return dict(record) if record else None

    def _observe(self, user_id: str, state: Mapping[str, Any], carried: Mapping[str, Any] | None) -> SessionRecord:
        session_id = str(state.get("session_id") or state.get("thread_id") or "default")
        with self._held(user_id, settle=False) as user:
            reply = state.get("reply") or {}
            kind = reply.get("action")
            if carried is None:
                record = self._record(user, user_id, session_id)
            else:
                record = self._carried(user, user_id, session_id, carried)
            turn = int((state.get("dialogue") or {}).get("turn", 0) or 0)
            # "start over", or a dialogue that begins again (a new thread observed under the
            # same session key): close this segment and start the next one.
            if record.events and (kind == "restart" or (record.dialogue is not None and turn < record.turns)):
                self._reflect_later(user_id, record, carried=carried is not None)
                segment = record.segment + 1
                record = SessionRecord(user_id=user_id, session_id=part_id(session_id, segment), segment=segment,
                                       reflected_turn=record.turns, token=record.token)
                if carried is None:
                    user.records[session_id] = record
            before_item = record.accepted_item
            before_rejected = len(record.final("rejected_items"))
            update_record(record, state)
            if record.accepted_item and record.accepted_item != before_item:
                self._credit_later(user_id, user, accepted=True, shown=record.recommended_ids)
            elif len(record.final("rejected_items")) > before_rejected:
                self._credit_later(user_id, user, accepted=False, shown=record.recommended_ids)
            every = self.settings.reflect_every
            # A statement about themselves is written in the turn it is said: a session that ends
            # with it (one message, a closed tab, an API session never closed) keeps it.
            said = bool(record.events) and record.events[-1].turn == record.turns and \
                any(find_statements(record.events[-1].message or ""))
            unreflected = sum(e.turn > record.reflected_turn for e in record.events)
            if said:  # in the turn itself: the person's next turn may be served by another process
                if self._safe_reflect(user_id, record) and carried is not None:
                    record = record.reflected()
            elif kind in _END_ACTIONS or (every and record.turns - record.reflected_turn >= every) \
                    or (carried is not None and unreflected >= _MAX_UNREFLECTED):
                record = self._reflect_later(user_id, record, carried=carried is not None)
            # the store has refused every reflection for a long while: the record stays bounded
            shed = record.shed(2 * _MAX_UNREFLECTED) if carried is not None else 0
            if shed:
                log.warning("session %r of user %r: %d unreflected turns dropped (memory store unavailable)",
                            record.session_id, user_id, shed)
            return record

    def _reflect_later(self, user_id: str, record: SessionRecord, *, carried: bool = False) -> SessionRecord:
        """Reflect the record now or in the background; returns the record to go on with.

        A kept record (``carried`` False) is reflected as the object it is (a restart replaces it).
        A carried one is reflected from a copy and comes back without its reflected turns: at
        once when the reflection runs now; in the background, before it ran (the turn's
        checkpoint cannot wait for it). Should that reflection fail, its turns are kept here,
        and put back into the record when this conversation's next turn comes to this process.
        """
        if not carried:
            def task() -> None:
                with self._held(user_id, settle=False):
                    self._safe_reflect(user_id, record)

            self._later(user_id, task)
            return record
        snapshot = replace(record, events=list(record.events))
        if self.reflector is None:
            return record.reflected() if self._safe_reflect(user_id, snapshot) else record

        def carried_task() -> None:
            with self._held(user_id, settle=False) as user:
                if not self._safe_reflect(user_id, snapshot) and snapshot.token:
                    user.postponed[snapshot.token] = snapshot
                    while len(user.postponed) > 4:
                        user.postponed.popitem(last=False)

        self.reflector.submit(user_id, carried_task)
        return record.reflected()

    def _credit_later(self, user_id: str, user: _UserState, *, accepted: bool, shown: Sequence[str]) -> None:
        retrievals, user.pending = user.pending, []
        if retrievals:
            self._later(user_id, lambda: self._credit(retrievals, accepted=accepted, shown=shown))

    # ---------------------------------------------------------------- sessions
    def _record(self, user: _UserState, user_id: str, session_id: str) -> SessionRecord:
        record = user.records.get(session_id)
        if record is None:
            record = SessionRecord(user_id=user_id, session_id=session_id)
            user.records[session_id] = record
            while len(user.records) > 16:  # a user's old, never-closed sessions: drop the oldest
                user.records.popitem(last=False)
        return record

    def _carried(self, user: _UserState, user_id: str, session_id: str, carried: Mapping[str, Any]) -> SessionRecord:
        """The record a conversation carries (a new one at its first turn)."""
        if not carried:
            return SessionRecord(user_id=user_id, session_id=session_id, token=secrets.token_hex(8))
        record = SessionRecord.from_dict(user_id, carried)
        late = user.postponed.pop(record.token, None) if record.token else None
        if late is not None and late.session_id == record.session_id:
            # this process could not reflect these turns before: they go back in, to be reflected next time
            record.events = [*late.events, *(e for e in record.events if e.turn > late.turns)]
            record.reflected_turn = min(record.reflected_turn, late.reflected_turn)
        return record

    def _safe_reflect(self, user_id: str, record: SessionRecord) -> bool:
        """Reflect; False (and a warning) if the store failed: the record keeps the turns for later."""
        try:
            self._reflect_record(record)
            record.reflected_turn = record.turns
            return True
        except MemoryStoreError as exc:
            # The record stays buffered: a later reflect() can still write it.
            log.warning("reflection of session %r for user %r postponed: %s", record.session_id, user_id, exc)
            return False

    def reflect(self, user_id: str, session_id: str, state: Mapping[str, Any] | None = None, *,
                record: Mapping[str, Any] | None = None) -> ReflectionResult:
        """Distil a session into memories now (on demand). ``state`` adds a last observed turn;
        ``record`` is the session's record when the conversation carries it (see
        :meth:`observe_session`)."""
        self._require_store()
        with self._held(user_id) as user:
            if record is not None:
                return self._reflect_record(self._carried(user, user_id, session_id, record))
            kept = self._record(user, user_id, session_id)
            if state is not None:
                update_record(kept, state)
            result = self._reflect_record(kept)
            kept.reflected_turn = kept.turns
            return result

    def reflect_record(self, record: SessionRecord) -> ReflectionResult:
        """Reflect a session record built elsewhere (an import, a replay, the evaluation)."""
        with self._held(record.user_id):
            return self._reflect_record(record)

    def _reflect_record(self, record: SessionRecord) -> ReflectionResult:
        store = self._require_store()
        candidates = self.candidates(record)
        handle = store.for_user(record.user_id)
        result = apply_candidates(handle, record.session_id, candidates,
                                  merge_threshold=self.settings.merge_threshold, now=self.clock())
        with self._held(record.user_id, settle=False) as user:
            user.chosen = None
            # the memories as just written: no second read of the store
            user.profile = self._build_profile(record.user_id, [e for e in result.entries if e.valid_to is None])
            self._write_profile(record.user_id)
        return result

    def candidates(self, record: SessionRecord) -> list[Candidate]:
        """Offline candidates, plus (when an LLM is configured) the LLM's validated ones."""
        g = self.graph
        names = self._attr_names if g is not None else None
        out = offline_candidates(
            record,
            item_attributes=self._item_attributes if g is not None else None,
            item_names=dict(zip(g.item_ids, g.item_names, strict=True)) if g is not None else None,
            attribute_names=names,
            lookup=self._lookup,
        )
        if self.llm is not None:
            try:
                out.extend(llm_candidates(self.llm, record,
                                          known_attributes=set(g.attr_ids) if g is not None else None))
            except ReflectionError as exc:
                log.warning("LLM reflection unusable, kept the offline memories only: %s", exc)
        summary = summary_candidate(record, attribute_names=names, item_names=self._item_names)
        if summary is not None:
            out.append(summary)
        return out

    def _item_attributes(self, item_id: str) -> list[str]:
        g = self.graph
        assert g is not None
        i = g.item_index.get(item_id)
        return [] if i is None else [g.attr_ids[a] for a in g.item_attrs.row(i).tolist()]

    # ---------------------------------------------------------------- profiles
    def profile(self, user_id: str) -> Profile:
        """The user's current profile (valid memories only), cached until the next reflection.

        It is read during a turn (the reply's words), so a failing store gives an empty
        profile and a warning, never an exception.
        """
        try:
            return self.load_profile(user_id)
        except MemoryStoreError as exc:
            log.warning("memory unavailable for user %r, replying without a profile: %s", user_id, exc)
            return Profile(user_id=user_id)

    def load_profile(self, user_id: str) -> Profile:
        """Like :meth:`profile`, but a failing store raises :class:`MemoryStoreError`."""
        store = self._require_store()
        with self._held(user_id) as user:
            if user.profile is None:
                user.profile = self._build_profile(user_id, store.for_user(user_id).entries(valid_only=True))
            return user.profile

    def _build_profile(self, user_id: str, entries: list[MemoryEntry]) -> Profile:
        return build_profile(user_id, entries, rates=self._rates, settings=self.settings.profile,
                             names=self._attr_names, item_names=self._item_names, now=self.clock(),
                             memory_budget=self.settings.token_budget, neighbours=self._neighbours)

    def _write_profile(self, user_id: str) -> None:
        """Persist the derived profile (for inspection and export); forget-me deletes it."""
        path = self._profile_path(user_id)
        if path is None:
            return
        p = self.load_profile(user_id)
        data = {"user_id": user_id, "prior": p.prior, "likes": p.likes, "dislikes": p.dislikes,
                "items": p.items, "facts": p.facts, "style": p.style, "memories": p.memories, "text": p.text()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def _profile_path(self, user_id: str) -> Path | None:
        if self._profiles_dir is None:
            return None
        return self._profiles_dir / (hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40] + ".json")

    # --------------------------------------------------------------- retrieval
    def retrieve(self, user_id: str, query: str, *, k: int | None = None, m: int | None = None,
                 kinds: Sequence[MemoryKind] | None = None) -> Retrieval:
        """Top-K by similarity, reranked (RMM), M kept by seeded sampling. Remembered for credit."""
        store = self._require_store()
        rs = self.settings.reranker
        k = k or rs.top_k
        m = m or rs.sample_m
        self._settle(user_id)
        qv, hits = store.for_user(user_id).search(query, k, valid_only=True, kinds=kinds)
        chosen: list[int] = []
        if hits:
            if self.settings.use_reranker:
                mems = np.stack([h.embedding for h in hits])
                model = self.rerankers.get(user_id, int(qv.shape[0]))
                scores = model.scores(qv, mems)
                chosen = gumbel_top_m(scores / rs.temperature, m, self._rng).tolist()
            else:
                chosen = list(range(min(m, len(hits))))
        retrieval = Retrieval(user_id, query, qv, hits, chosen)
        with self._held(user_id) as user:
            user.pending = [*user.pending[-7:], retrieval]
        return retrieval

    def context(self, user_id: str, query: str, *, budget: int | None = None) -> list[str]:
        """Memory texts for generation, most relevant first, within the token budget."""
        try:
            texts = self.retrieve(user_id, query).texts
        except MemoryStoreError as exc:
            log.warning("memory unavailable for user %r: %s", user_id, exc)
            return []
        b = self.settings.token_budget if budget is None else budget
        return fit_to_budget(texts, b, encoding_name=self.settings.encoding)

    def feedback(self, retrieval: Retrieval, used: Sequence[str], accepted: bool | None) -> None:
        """Credit a retrieval: which of its memories the reply used, and the outcome (REINFORCE)."""
        if retrieval.credited or not retrieval.chosen:
            return
        retrieval.credited = True
        store = self._require_store()
        try:  # the memories as they are now (one may have been superseded since)
            alive = {e.id: e for e in store.for_user(retrieval.user_id).get([h.entry.id for h in retrieval.hits])}
        except MemoryStoreError as exc:
            log.warning("could not credit memories of user %r: %s", retrieval.user_id, exc)
            return
        if not alive:  # forgotten since (here or in another worker): writing now would bring them back
            return
        used_set = {i for i in used if i in alive}
        rewards = [_reward(retrieval.hits[i].entry.id in used_set, accepted) for i in retrieval.chosen]
        if self.settings.use_reranker:
            mems = np.stack([h.embedding for h in retrieval.hits])
            model = self.rerankers.get(retrieval.user_id, int(retrieval.query_vector.shape[0]))
            model.update(retrieval.query_vector, mems, retrieval.chosen, rewards, self.settings.reranker)
            self.rerankers.save(retrieval.user_id)
        touched = [alive[e.id] for e in retrieval.entries if e.id in used_set]
        if touched:
            bumped = [e.model_copy(update={"use_count": e.use_count + 1,
                                           "success_count": e.success_count + (1 if accepted else 0)})
                      for e in touched]
            try:
                store.for_user(retrieval.user_id).upsert(bumped)
            except MemoryStoreError as exc:
                log.warning("could not record memory use for user %r: %s", retrieval.user_id, exc)

    def _credit(self, retrievals: Sequence[Retrieval], *, accepted: bool, shown: Sequence[str]) -> None:
        """Offline credit: a retrieved memory was used if it names a shown item or one of its attributes."""
        shown_attrs = {a for i in shown for a in (self._item_attributes(i) if self.graph is not None else ())}
        for retrieval in retrievals:
            used = [e.id for e in retrieval.entries
                    if set(e.item_ids) & set(shown) or set(e.attribute_ids) & shown_attrs]
            self.feedback(retrieval, used, accepted)

    # ---------------------------------------------------------------- what a person can see
    def memories(self, user_id: str) -> list[MemoryEntry]:
        """The user's memories that still hold, newest first (what "what do you remember?" shows)."""
        self._settle(user_id)
        entries = self._require_store().for_user(user_id).entries(valid_only=True)
        return sorted(entries, key=lambda e: e.created_at, reverse=True)

    def forget_memory(self, user_id: str, memory_id: str) -> bool:
        """Delete one of the user's memories; False when the user has no memory with that id."""
        store = self._require_store()
        with self._held(user_id) as user:
            memories = store.for_user(user_id)
            if not memories.get([memory_id]):
                return False
            memories.delete([memory_id])
            user.profile, user.chosen = None, None
            self._write_profile(user_id)
        return True

    def forget_said(self, user_id: str, text: str) -> list[MemoryEntry]:
        """"Forget that I like jazz": delete the user's memories of what the text states (a
        preference on the same catalog attributes, a fact or style on the same topic, else a
        memory whose words it repeats). Returns what was deleted (nothing when nothing matched)."""
        store = self._require_store()
        said = re.sub(r"^.*?\b(?:forget|delete|erase)\s+(?:that\s+)?", "", text, count=1, flags=re.I)
        statements = find_statements(said)
        attrs = {a for st in statements if st.kind in ("like", "dislike")
                 for a in (place_phrase(st.phrase, self._lookup) if self._lookup is not None else ())}
        topics = {st.topic for st in statements if st.kind in ("fact", "style")}
        words = {w for w in re.findall(r"[a-z0-9']+", said.lower()) if len(w) > 2} - _FORGET_STOP
        with self._held(user_id) as user:
            memories = store.for_user(user_id)
            valid = memories.entries(valid_only=True)
            gone = [e for e in valid if e.kind != "session_summary" and (
                (e.kind in ("like", "dislike") and not e.item_ids and set(e.attribute_ids) & attrs)
                or (e.topic is not None and e.topic in topics))]
            if not gone and words:
                gone = [e for e in valid if words <= set(re.findall(r"[a-z0-9']+", e.text.lower()))]
            if gone:
                memories.delete([e.id for e in gone])
                user.profile, user.chosen = None, None
                self._write_profile(user_id)
        return gone

    # ---------------------------------------------------------------- forget-me
    def forget(self, user_id: str) -> dict[str, Any]:
        """Delete the user's memories, derived profile and reranker state, and scrub the store's
        files so no byte of them is left (checkpoints are the conversation's:
        ``graphs.checkpoint.delete_user_threads``).

        What lives beside the store (reranker, profile, buffered turns) is deleted first, so a
        store that is down still loses them; then :class:`MemoryStoreError` says what is left.
        """
        if self.reflector is not None:
            # Queued writes of this user are dropped, a running one finishes first; the deletion and
            # the scrub then run in order with the user's writes, so none of theirs can come after.
            self.reflector.cancel(user_id)
            return self.reflector.call(user_id, lambda: self._forget(user_id))
        return self._forget(user_id)

    def _forget(self, user_id: str) -> dict[str, Any]:
        with self._guard:
            user = self._users.pop(user_id, None)
        lock = user.lock if user is not None else threading.RLock()
        with lock:
            reranker = self.rerankers.forget(user_id)
            path = self._profile_path(user_id)
            profile = bool(path is not None and path.exists())
            if path is not None and path.exists():
                path.unlink()
            try:
                store = self._require_store()
                deleted = store.forget_user(user_id)
                scrub = getattr(store, "scrub", None)
                left = list(scrub()) if scrub is not None else []
            except MemoryStoreError as exc:
                raise MemoryStoreError(f"the memories of user {user_id!r} could not be deleted "
                                       f"(their reranker and profile were): {exc}") from exc
        report: dict[str, Any] = {"memories": deleted, "reranker": int(reranker), "profile": int(profile)}
        if left:  # deleted through the server's API; its own files are the server's to scrub
            log.warning("forgot user %r; not scrubbed here: %s", user_id, "; ".join(left))
            report["not_scrubbed"] = left
        return report


_FORGET_STOP = frozenset({"that", "the", "you", "and", "about", "please", "like", "love", "i'm", "have", "any",
                          "more", "anymore", "with", "not"})


def _chosen_items(entries: Sequence[MemoryEntry]) -> list[str]:
    """Items chosen before, newest first, once each."""
    chosen = sorted(((e.valid_from, i) for e in entries if e.evidence_source == "chosen" for i in e.item_ids),
                    reverse=True)
    return list(dict.fromkeys(i for _, i in chosen))


def _reward(used: bool, accepted: bool | None) -> float:
    """RMM's +1 for a cited memory, −1 otherwise; an outcome sharpens it when known."""
    if not used:
        return -1.0
    if accepted is None:
        return 1.0
    return 1.0 if accepted else -0.25


def _value_index(graph: KnowledgeGraph) -> Any:
    """Phrase → attribute ids whose value is that phrase ("metal" → ["genre:metal"])."""
    index: dict[str, list[str]] = {}
    for attr in graph.attributes:
        for name in (attr.value, *attr.synonyms):
            index.setdefault(phrase(name), []).append(attr.id)

    def lookup(text: str) -> list[str]:
        return index.get(phrase(text), [])

    return lookup


def _default_path() -> Path:
    import os

    home = os.environ.get("CRS_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "crs"
    return base / "memory"

