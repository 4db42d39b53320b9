"""Prospective reflection: distil a session into topic-level memories and fold them into the store.

Each candidate is, in this order of preference:
1. already applied (its deterministic id is stored, or was merged before): skipped, so a rerun
   after a crash adds nothing twice;
2. a near-duplicate of a valid memory (same kind, attributes and topic, cosine above the
   threshold): merged, raising the old entry's support and confidence, no new entry;
3. a contradiction of valid memories (a stated dislike of a liked attribute, a fact on the same
   topic with the other polarity, a new style on the same topic): those are closed (``valid_to``
   set, ``superseded_by``) and the candidate is added;
4. otherwise added.
Only what the person states about themselves supersedes; choices accumulate. Answers to the
bot's own questions are about one search's target and are not memories at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from crs.memory.entry import EvidenceSource, MemoryEntry, MemoryKind, memory_id, utcnow
from crs.memory.session import SessionRecord
from crs.memory.statements import find_statements
from crs.memory.store import UserMemories

__all__ = [
    "Candidate",
    "ReflectionResult",
    "apply_candidates",
    "offline_candidates",
    "place_phrase",
    "statement_text",
    "summary_candidate",
]

log = logging.getLogger(__name__)

#: maps a phrase the user said ("metal") to attribute ids ("genre:metal"), if any
AttributeLookup = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A memory proposed by reflection, before it is added, merged or used to supersede."""

    kind: MemoryKind
    text: str
    attribute_ids: tuple[str, ...] = ()
    item_ids: tuple[str, ...] = ()
    topic: str | None = None
    explicit: bool = False
    turns: tuple[int, ...] = ()
    confidence: float = 0.6
    key: str = ""  # what the id hashes besides user, session, turns and kind
    source: EvidenceSource | None = None

    def entry(self, user_id: str, session_id: str, now: datetime) -> MemoryEntry:
        ident = memory_id(user_id, session_id, self.turns, self.kind, self.key or self.text)
        return MemoryEntry(
            id=ident, user_id=user_id, kind=self.kind, text=self.text,
            attribute_ids=tuple(sorted(self.attribute_ids)), item_ids=self.item_ids, topic=self.topic,
            explicit=self.explicit, session_id=session_id, turns=self.turns,
            created_at=now, valid_from=now, confidence=self.confidence, source=self.source,
        )


@dataclass
class ReflectionResult:
    added: list[str]
    merged: list[str]
    superseded: list[str]
    skipped: list[str]
    #: every memory of the user once the candidates are in (valid or not): a profile is built
    #: from it without reading the store again
    entries: list[MemoryEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"added": len(self.added), "merged": len(self.merged),
                "superseded": len(self.superseded), "skipped": len(self.skipped)}


def _value(attr: str, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(attr) or attr.split(":", 1)[-1]


_PARTS = re.compile(r"\s*(?:,|\band\b|\bor\b|&|/)\s*", re.I)
_GENERIC = re.compile(r"\s+(?:music|songs?|albums?|records?|stuff|tunes|vibes?)$", re.I)
_DISLIKE_TEXT = {"can't stand": "Can't stand {v}.", "are done with": "Done with {v}.",
                 "don't like": "Doesn't like {v}."}


def place_phrase(phrase: str, lookup: AttributeLookup) -> list[str]:
    """The catalog attributes a stated phrase names: the whole phrase, else each part of a list
    ("jazz, blues and rock"), with generic words dropped ("jazz music" is jazz).

    >>> place_phrase("jazz music and rock", {"jazz": ["genre:jazz"], "rock": ["genre:rock"]}.get)
    ['genre:jazz', 'genre:rock']
    """
    def one(text: str) -> list[str]:
        text = text.strip()
        return list(lookup(text) or lookup(_GENERIC.sub("", text)) or ())

    whole = one(phrase)
    if whole:
        return whole
    found: list[str] = []
    for part in (p for p in _PARTS.split(phrase) if p.strip()):
        hit = one(part)
        if not hit:  # "rock from the 90s": the words and word pairs that name something
            words = part.split()
            grams = [" ".join(words[i:i + n]) for n in (2, 1) for i in range(len(words) - n + 1)]
            hit = [a for g in grams for a in lookup(g)]
        found.extend(hit)
    return list(dict.fromkeys(found))


def statement_text(kind: str, verb: str, value: str) -> str:
    """A stated preference's memory text, keeping how it was said ("Loves jazz.", "Done with metal.")."""
    if kind == "like":
        return f"{'Loves' if verb == 'love' else 'Likes'} {value}."
    return _DISLIKE_TEXT.get(verb, "Doesn't like {v}.").format(v=value)


def offline_candidates(
    record: SessionRecord,
    *,
    item_attributes: Callable[[str], Sequence[str]] | None = None,
    item_names: Mapping[str, str] | None = None,
    attribute_names: Mapping[str, str] | None = None,
    lookup: AttributeLookup | None = None,
) -> list[Candidate]:
    """Candidates from what the person said about themselves and what they chose.

    Three kinds of evidence, never confused:
    - a *statement* ("I love jazz", "I'm done with metal", "I'm vegetarian") is a lasting
      memory, one per catalog attribute it names;
    - a *choice* (an accepted item) is remembered as the item, with its attributes as weak
      evidence; an item named as an example ("something like Kind of Blue") likewise;
    - the yes and no answers to this search's questions, and the attributes asked for in it,
      are about this search's target: they give no like or dislike (only the session summary
      mentions them).
    """
    out: list[Candidate] = []
    events = {e.turn: e for e in record.events}
    for turn, message in record.messages():
        for st in find_statements(message):
            if st.kind in ("like", "dislike"):
                attrs = place_phrase(st.phrase, lookup) if lookup is not None else []
                event = events.get(turn)
                if not attrs and event is not None:  # a name the lookup misses: what the same message was read as
                    said = event.accepted if st.kind == "like" else event.rejected
                    attrs = [a for a in said if a in event.volunteered]
                if lookup is not None and not attrs:
                    continue  # a taste we cannot place in the catalog: kept out of the prior
                if lookup is None:  # no catalog: the phrase itself is the topic
                    out.append(Candidate(st.kind, st.text, topic=st.topic, explicit=True, turns=(turn,),
                                         confidence=0.9, key=st.topic, source="stated"))
                    continue
                for attr in attrs:
                    text = statement_text(st.kind, st.verb, _value(attr, attribute_names))
                    out.append(Candidate(st.kind, text, (attr,), topic=f"pref:{attr}", explicit=True, turns=(turn,),
                                         confidence=0.9, key=f"pref:{attr}:{st.kind}", source="stated"))
            else:
                out.append(Candidate(st.kind, st.text, topic=st.topic, explicit=True, turns=(turn,),
                                     confidence=0.9, key=f"{st.topic}:{st.positive}:{st.text}", source="stated"))
    item = record.accepted_item
    if item is not None:
        item_turns = tuple(e.turn for e in record.events if e.accepted_item == item)
        item_attrs = tuple(item_attributes(item)) if item_attributes else ()
        name = (item_names or {}).get(item, item)
        out.append(Candidate("like", f"Chose {name}.", item_attrs, (item,), topic=f"item:{item}", turns=item_turns,
                             confidence=0.9, key=f"item:{item}", source="chosen"))
    for seed in record.final("seeds"):  # "something like Kind of Blue": they know and like that album
        if seed == item:
            continue
        name = (item_names or {}).get(seed, seed)
        seed_turns = tuple(e.turn for e in record.events if seed in e.seeds)
        out.append(Candidate("like", f"Named {name} as an example.",
                             tuple(item_attributes(seed)) if item_attributes else (), (seed,), topic=f"item:{seed}",
                             turns=seed_turns, confidence=0.6, key=f"seed:{seed}", source="named"))
    return out


def summary_candidate(record: SessionRecord, *, item_names: Mapping[str, str] | None = None,
                      attribute_names: Mapping[str, str] | None = None) -> Candidate | None:
    """One session-summary memory (same id for the whole session: a later reflection replaces it)."""
    accepted = record.final("accepted")
    if not (accepted or record.accepted_item):
        return None
    parts = []  # what this search was for, not what the person likes: answers are context only
    if accepted:
        parts.append("looked for " + ", ".join(_value(a, attribute_names) for a in accepted))
    if record.accepted_item:
        parts.append("chose " + (item_names or {}).get(record.accepted_item, record.accepted_item))
    n_rej = len(record.final("rejected_items"))
    if n_rej:
        parts.append(f"passed on {n_rej} suggestions")
    # No session id in the words: a person reads them in the memory panel (which shows the date),
    # and an id like f2e96855… says nothing to them; the id is in the entry's session_id.
    text = "; ".join(parts)
    return Candidate("session_summary", text[0].upper() + text[1:] + ".",
                     tuple(accepted), (record.accepted_item,) if record.accepted_item else (),
                     topic=f"session:{record.session_id}", confidence=0.5, key="summary", source="summary")


def _same_target(a: MemoryEntry, c: Candidate) -> bool:
    return a.kind == c.kind and set(a.attribute_ids) == set(c.attribute_ids) and \
        set(a.item_ids) == set(c.item_ids) and (a.topic or None) == (c.topic or None)


def _contradicts(old: MemoryEntry, c: Candidate) -> bool:
    """Does the (volunteered or stated) candidate make ``old`` no longer true?"""
    if not c.explicit or old.valid_to is not None:
        return False
    if c.kind in ("like", "dislike") and old.kind in ("like", "dislike") and old.kind != c.kind:
        same_attrs = not old.item_ids and bool(c.attribute_ids) and set(old.attribute_ids) == set(c.attribute_ids)
        return same_attrs or (c.topic is not None and old.topic == c.topic)
    if c.kind in ("fact", "style") and old.kind == c.kind and c.topic and old.topic == c.topic:
        return old.text.strip().lower() != c.text.strip().lower()
    return False


def apply_candidates(
    handle: UserMemories,
    session_id: str,
    candidates: Sequence[Candidate],
    *,
    merge_threshold: float = 0.9,
    now: datetime | None = None,
) -> ReflectionResult:
    """Fold candidates into one user's memories: skip, merge, supersede or add (see module doc)."""
    now = now or utcnow()
    result = ReflectionResult([], [], [], [])
    existing = {e.id: e for e in handle.entries()}
    merged_into = {m: e.id for e in existing.values() for m in e.merged_ids}
    texts = sorted({c.text for c in candidates} | {e.text for e in existing.values() if e.valid_to is None})
    vectors = _LazyVectors(handle, texts)
    changed: dict[str, MemoryEntry] = {}
    new: dict[str, MemoryEntry] = {}
    for c in candidates:
        entry = c.entry(handle.user_id, session_id, now)
        # A candidate applied before (this turn's statement, reflected again at the session's
        # end) changes nothing: replaying "I love jazz" must not undo a later "done with jazz".
        if c.kind != "session_summary" and (entry.id in existing or entry.id in merged_into):
            result.skipped.append(entry.id)
            continue
        # Supersede before adding: the old entries are closed (and written) first, so a crash
        # before the new one is written is finished by the rerun.
        for old in list(existing.values()):
            if old.id != entry.id and _contradicts(old, c):
                closed = old.model_copy(update={"valid_to": now, "superseded_by": entry.id})
                existing[old.id] = closed
                (new if old.id in new else changed)[old.id] = closed
                result.superseded.append(old.id)
        if entry.id in existing or entry.id in merged_into:
            if c.kind == "session_summary" and entry.id in existing:
                kept = existing[entry.id]
                entry = entry.model_copy(update={"created_at": kept.created_at, "valid_from": kept.valid_from})
                existing[entry.id] = changed[entry.id] = entry  # a later summary replaces the earlier one
            result.skipped.append(entry.id)
            continue
        dup = _near_duplicate(existing.values(), c, vectors, merge_threshold)
        if dup is not None:
            bumped = dup.model_copy(update={
                "support": dup.support + 1,
                "confidence": round(1.0 - (1.0 - dup.confidence) * (1.0 - 0.5 * c.confidence), 4),
                "explicit": dup.explicit or c.explicit,
                "merged_ids": (*dup.merged_ids, entry.id)[-500:],
                "valid_from": now if c.explicit else dup.valid_from,  # restating refreshes recency
            })
            existing[dup.id] = bumped
            (new if dup.id in new else changed)[dup.id] = bumped
            merged_into[entry.id] = dup.id
            result.merged.append(dup.id)
            continue
        existing[entry.id] = new[entry.id] = entry
        result.added.append(entry.id)
    # Closed and merged entries are written before the new ones (see the supersede note above).
    handle.upsert(list(changed.values()))
    handle.upsert(list(new.values()))
    result.entries = list(existing.values())
    return result


class _LazyVectors:
    """The texts' vectors, embedded all at once when first asked for: most candidates name catalog
    ids and are compared by them, so most reflections need no embedding at all."""

    def __init__(self, handle: UserMemories, texts: Sequence[str]) -> None:
        self._handle, self._texts = handle, texts
        self._vectors: dict[str, np.ndarray] | None = None

    def get(self, text: str) -> np.ndarray | None:
        if self._vectors is None:
            texts = self._texts
            self._vectors = dict(zip(texts, self._handle.embed(texts), strict=True)) if texts else {}
        return self._vectors.get(text)


def _near_duplicate(
    entries: Iterable[MemoryEntry], c: Candidate, vectors: _LazyVectors, threshold: float
) -> MemoryEntry | None:
    best, best_sim = None, threshold
    for e in entries:
        if e.valid_to is not None or not _same_target(e, c) or e.kind == "session_summary":
            continue
        if c.attribute_ids or c.item_ids:
            sim = 1.0  # same kind on the same catalog ids: the same topic, whatever the wording
        else:
            qv, ev = vectors.get(c.text), vectors.get(e.text)
            sim = float(np.dot(qv, ev)) if qv is not None and ev is not None else 0.0
        if sim >= best_sim:
            best, best_sim = e, sim
    return best
