"""Offline natural-language understanding: one user message → a :class:`Feedback`.

No language model and no network. A message is tokenised (lowercase, accents and
apostrophes dropped, plurals stemmed) and read left to right; at each position the longest of
three readings wins (ties in this order):

* a reference to a shown item ("the second one", "#2", "number 3", "the last", its name),
* a grammar phrase (yes/no answers, negations, intents, "none of these", "that one"),
* an attribute name or synonym of the catalog, as word n-grams (so "pop" never matches
  inside "popular", nor "rock" inside "rocket").

Left-over words then get a typo-tolerant look-up (rapidfuzz), and, when nothing at all was
recognised, each clause is compared with attribute embeddings. A negation ("not", "no",
"without", "I hate", "anything but", ...) applies to the mentions after it up to the end of
its clause: a comma, full stop or "but" ends it, and so does "and"/"or" unless a mention
follows at once ("I hate rap and metal" rejects both; "not rock and some jazz" accepts jazz).

Conventions worth knowing:

* "I don't mind", "doesn't matter", "don't care", "maybe" as the answer to a pending question
  give ``Feedback(intent="inform")`` with no ids: the question attribute is put in neither
  list, so the policy may treat it as skipped. An answer counts only at the start of a message
  ("oh, yes"), not inside one ("do you have anything by ...").
* yes / no / "it" / "none of these" refer to ``context.question`` when one is pending,
  otherwise to the shown items ("yes" and "I'll take it" accept a single shown item; "no"
  and "none of these" reject every shown item). "Something else", "not today" and "I've heard
  them all" are a "no"; "show me more", "others", "next" are a "no" to the shown items that
  asks for the next list at once (to a pending question they skip it, like "I don't mind").
* The intent is the main act of the message and ids found in it are kept: ``restart`` keeps
  the attributes (the start of the new search), ``why`` keeps only ``about_item``, and
  accepting an item turns ``recommend_now`` into ``inform``.
* A word the grammar owns ("love", "new", "good", ...) does not name an attribute on its
  own; multi-word names containing it ("new wave") still match.
* Only the first ``max_chars`` characters of a message are read (:data:`MAX_CHARS` by default;
  the conversation passes ``Settings.max_message_chars``, and refuses longer messages).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from crs.kb.embeddings import Embedder
from crs.kb.graph import KnowledgeGraph
from crs.kb.models import Attribute
from crs.language.lexicon import (
    PHRASES,
    PUNCT,
    REAL_WORDS,
    RESERVED,
    STOPWORDS,
    EmbeddingIndex,
    Entry,
    Lexicon,
    catalog_forms,
    content_words,
    list_position,
    match_phrase,
    name_forms,
    stem,
    tokenize,
)
from crs.reasoning.state import Feedback, Intent

__all__ = ["MAX_CHARS", "NLUContext", "OfflineNLU", "Understander", "memory_intent"]

#: The default longest message read: nobody types a preference longer than that, and it bounds
#: the time one message can cost. ``Settings.max_message_chars`` changes it.
MAX_CHARS = 2000

_ARTICLES = frozenset({"the", "a", "an", "any", "more", "too", "so", "very"})
_OPENERS = frozenset({"oh", "well", "hmm", "um", "uh", "ah", "er", "so", "actually", "honestly", "then", "i"})
_MENTIONS = ("attr", "item", "this_item", "seed")
#: words after which a catalog name is an example of what is wanted ("something like X")
_SEED_CUES = frozenset({"like", "as", "to", "of", "love", "loved", "enjoy", "enjoyed", "into"})
#: words after which a catalog name is what is wanted itself ("anything by Miles Davis")
_WANT_CUES = frozenset({"by", "from"})
#: first words of a question about a shown item ("and the second?", "what about the first one?")
_FOLLOW_UP = frozenset({"and", "what", "whats", "how", "hows", "tell", "is", "does", "which", "who", "about"})
#: words that make an item reference a choice even in a question ("can I get the second?")
_CHOOSING = frozenset({"take", "have", "get", "grab", "buy", "order", "choose", "pick", "want"})
#: function words a misspelling is put right to (see OfflineNLU._grammar_typos)
_GRAMMAR_WORDS = RESERVED | frozenset(t for key in PHRASES for t in key)
_TYPO_TARGETS = tuple(sorted(w for w in _GRAMMAR_WORDS if len(w) >= 3 and w.isalpha()))
_SEP = "\x1f"  # joins the item ids of one seed mention in an event's argument
_MAX_NAME_TOKENS = 12  # the longest item name looked up, in tokens
_EMBEDDED = (None, "pos", "filler")  # tokens (by owning event kind) kept in an embedded clause
_Preferred = tuple[frozenset[int], frozenset[str]]  # attribute indices, facets
_Names = dict[tuple[str, ...], str | None]  # stemmed name forms of shown items → item id
#: words that say "more or less than what was shown" (older, newer): static embeddings put them
#: beside their opposites ("old" is 0.63 from *new age*), so alone they are never matched by meaning
_RELATIVE = frozenset({"old", "older", "oldest", "oldies", "new", "newer", "newest", "modern", "young", "younger"})
_SURE_SIMILARITY = 0.5  # below it, an embedding match needs twice the margin over the runner-up
_MAX_FUZZY = 32  # typo look-ups per message: bounds the cost of long, unrecognised text
_MAX_CLAUSES = 4  # clauses embedded per message, for the same reason


@dataclass(frozen=True, slots=True)
class NLUContext:
    """What the user is replying to."""

    question: str | None = None  # attribute id just asked ("genre:jazz"), or None
    options: tuple[str, ...] = ()  # other attribute ids offered with that question (same facet)
    recommended: tuple[str, ...] = ()  # item ids of the list just shown, in order
    accepted: tuple[str, ...] = ()  # attribute ids accepted so far


class Understander(Protocol):
    def understand(self, text: str, context: NLUContext) -> Feedback: ...


@dataclass(slots=True)
class _Event:
    kind: str  # a grammar kind of crs.language.lexicon, "attr", "item" or "filler"
    arg: str  # answer strength, intent name, attribute id or item id
    start: int
    end: int


class _Reading:
    """One message: its tokens, what it replies to, and the events found so far (each owning a
    span of tokens)."""

    def __init__(self, raw: list[str], shown: Sequence[str], names: _Names, preferred: _Preferred) -> None:
        self.raw, self.shown, self.names, self.preferred = raw, shown, names, preferred
        self.stems = [stem(t) for t in raw]
        self.owner: list[_Event | None] = [None] * len(raw)
        self.words = sum(t not in PUNCT for t in raw)

    def add(self, kind: str, arg: str, start: int, end: int) -> None:
        event = _Event(kind, arg, start, end)
        self.owner[start:end] = [event] * (end - start)

    def free(self, start: int, end: int) -> bool:
        return end <= len(self.raw) and all(o is None for o in self.owner[start:end])

    def events(self) -> list[_Event]:
        return [o for k, o in enumerate(self.owner) if o is not None and o.start == k]

    def mention_at(self, i: int, *, words: bool) -> bool:
        """Whether a mention (or, with ``words``, any content word) starts at ``i``, after articles."""
        while i < len(self.raw) and self.raw[i] in _ARTICLES and self.owner[i] is None:
            i += 1
        if i >= len(self.raw):
            return False
        event = self.owner[i]
        if event is not None:
            return event.kind in _MENTIONS
        return words and self.raw[i] not in RESERVED and self.raw[i] not in PUNCT


class OfflineNLU:
    """Rule-based, catalog-aware understanding (see the module docstring)."""

    def __init__(
        self,
        graph: KnowledgeGraph,
        embedder: Embedder | None = None,
        *,
        fuzzy_cutoff: int = 88,
        embedding_threshold: float = 0.36,
        embedding_margin: float = 0.10,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self._graph = graph
        self._max_chars = max_chars
        self._attributes = graph.attributes
        self._lexicon = Lexicon(graph.attributes, fuzzy_cutoff)
        self._sizes = np.diff(graph.attr_items.indptr).tolist()  # items per attribute, to break ties
        self._cutoff = float(fuzzy_cutoff)
        self._index = EmbeddingIndex(embedder, graph.attributes) if embedder is not None else None
        self._catalog: dict[tuple[str, ...], tuple[str, ...]] | None = None  # built when first needed
        self._threshold = embedding_threshold
        self._margin = embedding_margin

    def understand(self, text: str, context: NLUContext) -> Feedback:
        asked = memory_intent(text) if isinstance(text, str) else None
        if asked is not None:
            return Feedback(intent=asked)
        if isinstance(text, str):
            text = _EMOJI.sub(lambda m: f" {_EMOJI_WORDS[m.group(0)]} ", text)
        wanted = options_request(text, self._graph.facets) if isinstance(text, str) else None
        if wanted is not None:  # "what genres do you have?" ("" for "help": every facet)
            return Feedback(intent="options", about_facet=wanted or None)
        raw = tokenize(text[: self._max_chars]) if isinstance(text, str) else []
        if not context.recommended and len(context.options) > 1:
            picked = _option_by_position(raw, context.options)
            if picked is not None:  # "the second one" while a question offers options
                return Feedback(accept_attributes=(picked,))
        shown = context.recommended
        names = self._name_forms(shown)
        raw = self._grammar_typos(raw, names)
        reading = _Reading(raw, shown, names, self._preferences(context))
        if not reading.words:
            return Feedback(intent="unknown")
        self._scan(reading)
        self._fuzzy_names(reading)
        self._fuzzy_attributes(reading)
        answer = _resolve_answer(reading)
        if answer is None and self._embeddable(reading):
            self._embed(reading)
        return _assemble(reading, answer, context)

    def _grammar_typos(self, raw: list[str], names: _Names) -> list[str]:
        """Misspelt function words put right ("noting here" → "nothing here", "sre" → "sure"),
        so that "none of tese" is not read as music: a word of three letters or more that is no
        catalog word nor shown name and is one edit from exactly one grammar word, which does not name
        an attribute itself ("meal" is no typo of the grammar's "mean" where a tag is called "mean":
        it may be "metal")."""
        named = {t for key in names for t in key}
        out = list(raw)
        for k, token in enumerate(raw):
            if (len(token) < 3 or not token.isalpha() or token in _GRAMMAR_WORDS or token in REAL_WORDS
                    or token in named or stem(token) in self._lexicon.words):
                continue
            hits = process.extract(token, _TYPO_TARGETS, scorer=OSA.distance, score_cutoff=1, limit=2)
            if len(hits) == 1 and not self._lexicon.match([stem(hits[0][0])], 0):
                out[k] = hits[0][0]
        return out

    # -- finding mentions ----------------------------------------------------------------

    def _scan(self, reading: _Reading) -> None:
        """Exact readings, left to right; the longest wins (ties: item, grammar, attribute)."""
        raw, i = reading.raw, 0
        while i < len(raw):
            phrase = match_phrase(raw, i)
            n_phrase = phrase.length if phrase else 0
            ref = _match_ref(reading, i)
            lexical = self._lexicon.match(reading.stems, i)
            n_lex = lexical[0] if lexical else 0
            seed = self._match_seed(reading, i) if ref is None else None
            if raw[i] in PUNCT:
                reading.add("boundary", "", i, i + 1)
            elif ref is not None and ref[0] >= max(n_phrase, n_lex):
                reading.add("item", ref[1], i, i + ref[0])
            elif seed is not None and seed[0] > max(n_phrase, n_lex):
                reading.add("seed", _SEP.join((seed[1], *seed[2])), i, i + seed[0])
            elif phrase is not None and n_phrase >= n_lex:
                reading.add(phrase.kind, phrase.arg, i, i + n_phrase)
            elif lexical is not None:
                self._add_attribute(reading, lexical[1], i, i + n_lex)
            event = reading.owner[i]
            i = i + 1 if event is None else event.end

    def _add_attribute(self, reading: _Reading, entries: Sequence[Entry], start: int, end: int) -> None:
        attr = Lexicon.choose(entries, reading.raw[start:end], *reading.preferred, self._attributes, self._sizes)
        reading.add("attr", self._attributes[attr].id, start, end)

    def _preferences(self, context: NLUContext) -> _Preferred:
        """Attributes (and facets) the context makes likelier readings of an ambiguous word."""
        index = self._graph.attr_index
        asked = [index[a] for a in (context.question, *context.options) if a in index]
        accepted = [index[a] for a in context.accepted if a in index]
        return frozenset(asked + accepted), frozenset(self._attributes[a].facet for a in asked)

    def _match_seed(self, reading: _Reading, i: int) -> tuple[int, str, tuple[str, ...]] | None:
        """(tokens used, "want" or "like", item ids) for a catalog item's or artist's name
        starting at ``i``: wanted itself after "by" or "from", else an example of what is wanted.

        Two or more words name an example anywhere ("Miles Davis, please"); one word only after
        a cue ("like Nevermind"), since single words are too often just words. Either way the
        name needs a word that is not a function word ("Something Else" names nothing).
        Examples are not recommended themselves: the person knows them.
        """
        if reading.raw[i] in PUNCT:
            return None
        if self._catalog is None:
            self._catalog = catalog_forms(zip(self._graph.item_ids, self._graph.item_names, strict=True))
        k = i - 1
        while k >= 0 and reading.raw[k] in _ARTICLES:
            k -= 1
        cue = reading.raw[k] if k >= 0 else ""
        cued = cue in _SEED_CUES or cue in _WANT_CUES
        for n in range(min(len(reading.raw) - i, _MAX_NAME_TOKENS), 0 if cued else 1, -1):
            items = self._catalog.get(tuple(reading.stems[i : i + n]))
            if items and any(t not in STOPWORDS for t in reading.raw[i : i + n]):
                # A name that also fits a shown item is about the list ("the Miles Davis one"
                # with two of his shown names neither), never an example to move away from.
                return None if set(items) & set(reading.shown) else (
                    n, "want" if cue in _WANT_CUES else "like", items)
        return None

    def _name_forms(self, shown: Sequence[str]) -> _Names:
        index, names = self._graph.item_index, self._graph.item_names
        return name_forms((item, names[index[item]]) for item in shown if item in index)

    def _fuzzy_names(self, reading: _Reading) -> None:
        """Misspelt item names: the closest window of free words as long as each name."""
        windows: dict[int, tuple[list[int], list[str]]] = {}
        found: list[tuple[float, int, int, str]] = []
        for key, item in reading.names.items():
            target, n = " ".join(key), len(key)
            if item is None or len(target) < (7 if n == 1 else 5):  # "close" is no typo of "Closer"
                continue
            if n not in windows:
                starts = [i for i in range(len(reading.raw) - n + 1) if _free_words(reading, i, i + n)]
                windows[n] = (starts, [" ".join(reading.stems[i : i + n]) for i in starts])
            starts, texts = windows[n]
            hit = process.extractOne(target, texts, scorer=fuzz.ratio, score_cutoff=self._cutoff)
            if hit is not None:
                found.append((-hit[1], starts[hit[2]], n, item))
        for _, i, n, item in sorted(found):
            if reading.free(i, i + n):
                reading.add("item", item, i, i + n)

    def _fuzzy_attributes(self, reading: _Reading) -> None:
        """Misspelt attribute names among the words still free: two-word names first."""
        raw, budget = reading.raw, _MAX_FUZZY
        for i in range(len(raw)):
            for n in (2, 1):
                window = raw[i : i + n]
                if budget <= 0 or not reading.free(i, i + n) or len(window) < n:
                    continue
                if n == 1 and not _fuzzable(window[0]):
                    continue
                if n == 2 and not (all(t.isalpha() for t in window) and any(map(_fuzzable, window))):
                    continue
                budget -= 1
                entries = self._lexicon.fuzzy(" ".join(reading.stems[i : i + n]))
                if entries:
                    self._add_attribute(reading, entries, i, i + n)
                    break
        self._fuzzy_pairs(reading, budget)

    def _fuzzy_pairs(self, reading: _Reading, budget: int) -> None:
        """A two-word name with one word misspelt: "hevy metal" is heavy metal, not "metal" and a
        typo. Only when the other word is exactly the name's and the slip is one edit."""
        stems = reading.stems
        for i in range(len(stems) - 1):
            left, right = reading.owner[i], reading.owner[i + 1]
            known = [e for e in (left, right) if e is not None]
            if budget <= 0 or len(known) != 1 or known[0].kind != "attr" or known[0].end - known[0].start != 1:
                continue
            slip = i + 1 if left is not None else i
            if not _fuzzable(reading.raw[slip]) or not all(t.isalpha() for t in reading.raw[i : i + 2]):
                continue
            budget -= 1
            entries = self._lexicon.fuzzy(" ".join(stems[i : i + 2]))
            key = tuple(stem(t) for t in entries[0].raw) if entries else ()
            typo, exact = slip - i, 1 - (slip - i)  # positions in the pair
            if len(key) == 2 and key[exact] == stems[i + exact] and OSA.distance(key[typo], stems[slip]) <= 1:
                self._add_attribute(reading, entries, i, i + 2)

    def _embeddable(self, reading: _Reading) -> bool:
        events = reading.events()
        if self._index is None or any(e.kind in (*_MENTIONS, "items_all") for e in events):
            return False
        return all(e.arg == "recommend_now" for e in events if e.kind == "intent")

    def _embed(self, reading: _Reading) -> None:
        """Free-text clauses matched to their closest attribute, when clearly the closest."""
        assert self._index is not None
        clauses: list[tuple[int, str]] = []
        start = 0
        ends = [e.start for e in reading.events() if e.kind == "boundary"] + [len(reading.raw)]
        for end in ends:
            kept = [k for k in range(start, end) if _kind(reading.owner[k]) in _EMBEDDED]
            free = [k for k in kept if reading.owner[k] is None]
            free.sort(key=lambda k: reading.raw[k] in RESERVED)  # a content word holds the mention
            meaningful = any(reading.raw[k] not in RESERVED and reading.raw[k] not in _RELATIVE for k in kept)
            # One word alone is too little evidence: it had its (fuzzy) chance already.
            if len(kept) >= 2 and free and meaningful and len(clauses) < _MAX_CLAUSES:
                clauses.append((free[0], content_words(" ".join(reading.raw[k] for k in kept))))
            start = end + 1
        if not clauses or not self._attributes:
            return
        best = self._index.best([text for _, text in clauses])
        for (position, text), (attr, score, margin) in zip(clauses, best, strict=True):
            # a weak match must stand out more: "I want to cry" is sad (0.45, 0.27 ahead), but
            # "I'm bored" is no R&B (0.46, 0.15) and "angry music" no calm (0.42, 0.15)
            needed = self._margin if score >= _SURE_SIMILARITY else 2 * self._margin
            if score >= self._threshold and margin >= needed and not _shares_a_word_only(
                    text, self._attributes[attr]):
                reading.add("attr", self._attributes[attr].id, position, position + 1)


def _shares_a_word_only(text: str, attribute: Attribute) -> bool:
    """The clause has a word of one of the attribute's names but none of its names whole: the
    embeddings are close because of that word ("a road trip" and *trip hop*), not the meaning.

    >>> _shares_a_word_only("album road trip", Attribute(facet="genre", value="trip hop"))
    True
    >>> _shares_a_word_only("something dreamy", Attribute(facet="genre", value="dream pop"))
    False
    """
    words = set(text.lower().split())
    names = [set(n.lower().split()) for n in (attribute.value, *attribute.synonyms)]
    return any(words & name for name in names) and not any(name <= words for name in names)


def _kind(event: _Event | None) -> str | None:
    return None if event is None else event.kind


def _free_words(reading: _Reading, start: int, end: int) -> bool:
    return reading.free(start, end) and not any(t in PUNCT for t in reading.raw[start:end])


def _fuzzable(token: str) -> bool:
    """Worth a typo look-up on its own: letters only, three or more, not a function word."""
    return token.isalpha() and len(token) >= 3 and token not in RESERVED


def _option_by_position(raw: Sequence[str], options: Sequence[str]) -> str | None:
    """The option a message picks by its place ("the second one", "#3", "2"), in the order the
    question shows them (the asked value first), when the message says nothing else."""
    words = [t for t in raw if t not in PUNCT]
    for i in range(len(raw)):
        found = list_position(raw, i, len(options), alone=len(words) == 1)
        if found is not None:
            rest = [t for k, t in enumerate(raw) if not i <= k < i + found[1] and t not in PUNCT]
            return options[found[0]] if all(t in _GRAMMAR_WORDS for t in rest) else None
    return None


def _match_ref(reading: _Reading, i: int) -> tuple[int, str] | None:
    """(tokens used, item id) for "the second one", "#2", "number 3" or a shown item's name."""
    shown = reading.shown
    if not shown or reading.raw[i] in PUNCT:
        return None
    found = list_position(reading.raw, i, len(shown), alone=reading.words == 1)
    for n in range(min(len(reading.raw) - i, _MAX_NAME_TOKENS), 0, -1):
        # a name's own punctuation does not count ("Panic! At the Disco", "M.I.A.")
        item = reading.names.get(tuple(t for t in reading.stems[i : i + n] if t not in PUNCT))
        if item is not None and (found is None or n > found[1]):  # "Seventh Day Slumber" is a name
            return n, item
    return (found[1], shown[found[0]]) if found is not None else None


def _resolve_answer(reading: _Reading) -> str | None:
    """The yes/no/neutral answer the message opens with, if any ("oh, yes" counts).

    Answer words that are not the answer become negations ("no jazz"), skips ("don't care
    about jazz") or filler ("maybe jazz").
    """
    answer: str | None = None
    leading, said = True, False  # said: something other than filler came before
    for k, token in enumerate(reading.raw):
        event = reading.owner[k]
        if event is None:
            leading = leading and token in _OPENERS  # "do you have anything" is no answer
            continue
        if event.start != k:
            continue
        if event.kind == "answer":
            if leading:
                answer = _answer_of(reading, event)
            if answer is None or not leading:
                event.kind = {"cond_no": "neg", "cond_skip": "skip"}.get(event.arg, "filler")
            leading = leading and event.kind == "filler"  # "ok, no" still opens with "no"
            continue
        if (event.kind == "neg" and leading and answer is None and token == "no"
                and not reading.mention_at(event.end, words=False)):
            answer = "no"  # "no to be honest": "no to" with nothing to negate is the answer
        if event.kind == "items_all" and event.arg == "cond" and reading.mention_at(event.end, words=True):
            event.kind = "neg"  # "neither rock nor metal"
        if event.kind == "boundary" and answer is None and not said and reading.raw[k] in PUNCT:
            leading = True  # "let me think... no": after mere filler, an answer may open the next clause
        elif event.kind not in ("boundary", "greet", "thanks"):
            leading, said = False, True
    return answer


def _answer_of(reading: _Reading, event: _Event) -> str | None:
    if event.arg in ("yes", "no", "more"):
        return event.arg
    if event.arg == "weak_yes":  # "ok", "great": an answer only when nothing else is said
        rest = range(event.end, len(reading.raw))
        others = [k for k in rest if _kind(reading.owner[k]) not in (None, "boundary", "thanks")]
        words = [reading.raw[k] for k in rest if reading.owner[k] is None]
        return "yes" if not others and all(w in STOPWORDS for w in words) else None
    if reading.mention_at(event.end, words=True):
        return None
    return {"cond_no": "no", "cond_more": "more"}.get(event.arg, "neutral")


def _assemble(reading: _Reading, answer: str | None, context: NLUContext) -> Feedback:
    """Walk the events with the current polarity and collect what they say."""
    attrs: dict[str, bool] = {}
    items: dict[str, bool] = {}
    seeds: list[str] = []
    wanted: list[str] = []
    intents: list[str] = []
    flags: set[str] = set()

    def refer(positive: bool, *, every: bool = False) -> None:
        """A yes/no/"it"/"none of these": about the question, else about the shown items."""
        if context.question is not None:
            for a in (context.question, *(context.options if every else ())):
                attrs[a] = positive
        elif positive and not every:
            if len(context.recommended) == 1:
                items[context.recommended[0]] = True
        else:
            for item in context.recommended:
                items.setdefault(item, False)

    if answer in ("yes", "no"):
        refer(answer == "yes")
    elif answer == "more" and context.question is None and context.recommended:
        refer(False)
        intents.append("recommend_now")  # "show me more": the next list, not another question
    elif answer == "more":
        answer = "neutral"  # "next (question)": this one is skipped, nothing is turned down
    polarity, mentioned, cued = "pos", False, False
    for event in reading.events():
        kind = event.kind
        if kind == "boundary" or (
            kind == "conj" and polarity != "pos" and not reading.mention_at(event.end, words=False)
        ):
            polarity, mentioned, cued = "pos", False, False
        elif kind in ("neg", "skip"):
            polarity, mentioned, cued = kind, False, True
        elif kind == "pos":
            cued = True
            if mentioned:  # "I don't like rock I like jazz"
                polarity, mentioned = "pos", False
        elif kind == "this_item" and event.arg == "it" and not cued:
            continue  # a bare "it" ("is it good?") only counts after "take", "like", "not"...
        elif kind in _MENTIONS:
            mentioned = True
            if polarity == "skip":  # "don't care about jazz": heard, but neither yes nor no
                flags.add("skip")
                continue
            if kind == "attr":
                attrs[event.arg] = polarity == "pos"
            elif kind == "seed":  # "nothing like X" says what is not wanted, but not which part
                mode, *named = event.arg.split(_SEP)
                bucket = wanted if mode == "want" else seeds
                if polarity == "pos":
                    bucket.extend(i for i in named if i not in bucket)
            elif kind == "item":
                items[event.arg] = polarity == "pos"
            elif context.question is not None or len(context.recommended) == 1:
                refer(polarity == "pos")
        elif kind == "items_all":
            refer(False, every=True)
        elif kind == "intent":
            intents.append(event.arg)
        elif kind in ("greet", "thanks"):
            flags.add(kind)
    unread = [t for k, t in enumerate(reading.raw) if reading.owner[k] is None and t.isalpha() and t not in RESERVED]
    if "greet" in flags and len(unread) >= 2:
        flags.discard("greet")  # "hey, something for cooking dinner": a request not understood, not a hello
    if answer is None and "instead" in reading.raw and any(attrs.values()) and all(attrs.values()) and not (
            context.question is not None and context.question in attrs):
        # "rock instead": the question asked, or the list shown, is turned down (unless the message
        # says itself what it replaces: "not rock, jazz instead")
        refer(False)
    return _feedback(attrs, items, intents, flags, answer, asked=context.question is not None,
                     shown=bool(context.recommended), seeds=seeds,
                     wanted=wanted, follow_up=_asks_about(reading, answer))


def _asks_about(reading: _Reading, answer: str | None) -> bool:
    """A question about a shown item, not a choice: "and the second?", "what about the first one?".

    A choice needs a choosing word ("I'll take the second?", "can I get the first one?") or
    no question at all ("the second one please").
    """
    words = [t for t in reading.raw if t not in PUNCT]
    asking = "?" in reading.raw or (bool(words) and words[0] in _FOLLOW_UP)
    choosing = answer == "yes" or any(e.kind == "pos" for e in reading.events()) or any(
        t in _CHOOSING for t in words)
    return asking and not choosing


# a request at the start of a sentence ("okay, could you please forget ..."), not "I forget the name"
_ASK = (r"(?:^|[.!?,;]\s*)(?:(?:ok(?:ay)?|hey|so|now|and|please)\W+)*(?:(?:can|could|would|will)\s+you\s+)?"
        r"(?:please\s+)?")
_MEMORY_INTENTS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    ("forget_me", re.compile(
        _ASK + r"(?:forget|delete|erase|wipe)\s+"
        r"(?:me\b|(?:everything|all)\b(?:\s+(?:about|of|on)\s+me|\s+you\s+know)?"
        r"|(?:all\s+)?my\s+(?:data|memories|profile)\b)", re.I)),
    ("forget", re.compile(_ASK + r"(?:forget|delete|erase)\s+(?:that\s+|the\s+(?:bit|part)\s+(?:that|where)\s+)?"
                          r"(?:i\b|i'm\b|im\b)", re.I)),
    ("memories", re.compile(
        r"\bwhat\s+(?:do|did)\s+you\s+(?:remember|know|recall)\s+(?:about\s+me|of\s+me)\b"
        r"|^\W*what\s+(?:do|did)\s+you\s+(?:remember|recall)\W*$"
        r"|\bwhat\s+have\s+you\s+(?:remembered|stored|saved)\b|\b(?:show|list)\s+(?:me\s+)?(?:my|your)\s+memor"
        r"|\bwhat\s+do\s+you\s+have\s+(?:on|about)\s+me\b", re.I)),
)


#: emoji that say something the grammar knows: a thumbs up is a yes, a wave a hello
_EMOJI_WORDS = {"👍": "yes", "👍🏻": "yes", "👍🏼": "yes", "👍🏽": "yes", "👍🏾": "yes", "👍🏿": "yes", "👎": "no",
                "👋": "hi", "🙏": "thanks", "❤️": "love", "😍": "love"}
_EMOJI = re.compile("|".join(sorted(map(re.escape, _EMOJI_WORDS), key=len, reverse=True)))
_ASKED_VALUES = (
    re.compile(r"\b(?:what|which)\s+(?:(?:kinds?|sorts?|types?)\s+of\s+)?(?P<what>[a-z][a-z _]{1,30}?)\s+"
               r"(?:do\s+you\s+(?:have|know|cover|offer|do)|are\s+there|(?:can|could)\s+i\s+(?:choose|pick|ask for)"
               r"|are\s+(?:available|possible|on offer))\b", re.I),
    re.compile(r"^\W*(?:(?:please|can you|could you)\s+)*(?:list|name)\s+(?:the\s+|all\s+(?:the\s+)?|your\s+)?"
               r"(?P<what>[a-z][a-z _]{1,30}?)(?:\s+you\s+(?:have|know))?\W*$", re.I),
)
_HELP = re.compile(r"^\W*(?:help|help me|what\s+can\s+(?:i|you)\s+(?:say|do|ask(?:\s+for)?)|how\s+does\s+(?:this|it)"
                   r"\s+work|what\s+are\s+(?:my|the)\s+(?:options|choices)|what\s+do\s+you\s+do)\W*$", re.I)
#: other words for a facet's values, when the catalog has that facet
_FACET_WORDS = {"decade": ("era", "year", "period", "time"), "genre": ("style", "kind of music", "type of music"),
                "country": ("place", "nationality"), "mood": ("feeling", "vibe")}


def options_request(text: str, facets: Any) -> str | None:
    """The facet whose values a message asks for ("what genres do you have?" → "genre"), "" for a
    request for help ("what can I say?"), None for anything else.

    >>> facets = {"genre": (), "decade": (), "artist_type": ()}
    >>> options_request("What genres do you have?", facets), options_request("which eras are there", facets)
    ('genre', 'decade')
    >>> options_request("list the artist types", facets), options_request("help", facets)
    ('artist_type', '')
    >>> options_request("show me some jazz", facets) is None, options_request("what do you have?", facets) is None
    (True, True)
    """
    if _HELP.match(text):
        return ""
    for pattern in _ASKED_VALUES:
        m = pattern.search(text)
        if m is None:
            continue
        said = " ".join(m.group("what").lower().replace("_", " ").split())
        forms = {said, said[:-1] if said.endswith("s") else said, said[:-2] if said.endswith("es") else said,
                 said[:-3] + "y" if said.endswith("ies") else said}
        for facet in facets:
            names = {facet.replace("_", " "), *_FACET_WORDS.get(facet, ())}
            if forms & names:
                return str(facet)
    return None


def memory_intent(text: str) -> Intent | None:
    """A request about what the bot remembers, read before anything else in the message.

    >>> memory_intent("What do you remember about me?"), memory_intent("forget that I like jazz")
    ('memories', 'forget')
    >>> memory_intent("please forget everything about me"), memory_intent("I forget the name")
    ('forget_me', None)
    """
    for intent, pattern in _MEMORY_INTENTS:
        if pattern.search(text):
            return intent
    return None


def _feedback(attrs: dict[str, bool], items: dict[str, bool], intents: list[str], flags: set[str],
              answer: str | None, *, asked: bool, shown: bool = False, seeds: Sequence[str] = (),
              wanted: Sequence[str] = (),
              follow_up: bool = False) -> Feedback:
    accept = tuple(a for a, ok in attrs.items() if ok)
    reject = tuple(a for a, ok in attrs.items() if not ok)
    accept_item = next((i for i, ok in items.items() if ok), None)
    reject_items = tuple(i for i, ok in items.items() if not ok and i != accept_item)
    if "restart" in intents:
        return Feedback(accept_attributes=accept, reject_attributes=reject, intent="restart")
    if "why" in intents:
        return Feedback(intent="why", about_item=next(iter(items), None))
    if "undo" in intents and not items:  # "go back"; "no wait, I meant jazz" goes back and says what instead
        return Feedback(accept_attributes=accept, reject_attributes=reject, intent="undo")
    if follow_up and accept_item is not None:  # a question about a shown item is never a choice
        return Feedback(intent="why", about_item=accept_item)
    intent: Intent
    if "recommend_now" in intents and accept_item is None:
        intent = "recommend_now"
    elif accept or reject or accept_item or reject_items or seeds or wanted or "skip" in flags or (
            answer == "neutral" and (asked or not shown)):  # "no idea" at the start: the bot leads
        intent = "inform"
    elif "thanks" in flags:
        intent = "thanks"
    elif "greet" in flags:
        intent = "greet"
    else:
        intent = "unknown"
    return Feedback(accept, reject, accept_item, reject_items, intent, like_items=tuple(seeds),
                    want_items=tuple(wanted))
