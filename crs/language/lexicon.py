"""Private helpers of :mod:`crs.language.nlu`: normalisation, the phrase grammar and the attribute lexicon.

Everything here is built once per catalog and then only read, so one instance can serve
many conversations (and threads) at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from crs.kb.embeddings import Embedder
from crs.kb.models import Attribute
from crs.kb.text import PUNCT, name_parts, tokenize

__all__ = [
    "PHRASES",
    "PUNCT",
    "REAL_WORDS",
    "RESERVED",
    "STOPWORDS",
    "EmbeddingIndex",
    "Entry",
    "Lexicon",
    "Phrase",
    "catalog_forms",
    "content_words",
    "list_position",
    "match_phrase",
    "name_forms",
    "stem",
    "tokenize",
]

MAX_KEY_TOKENS = 8  # longer names are never typed out; skipping them keeps lookups short


def stem(token: str) -> str:
    """Strip a plural ending: ``ballads`` → ``ballad``, ``melodies`` → ``melody``, ``80s`` → ``80``."""
    if len(token) < 3 or not token.endswith("s"):
        return token
    if token[:-1].isdigit():
        return token[:-1]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("sses", "ches", "shes", "xes")):
        return token[:-2]
    if len(token) > 3 and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _words(*groups: str) -> frozenset[str]:
    return frozenset(w for g in groups for w in g.split())


#: Function words and chat filler: never an attribute on their own, never fuzzily matched.
STOPWORDS = _words(
    "a an the i im id ive ill me my mine myself you your youre we us our it its is are was were",
    "be been being am to of in on at for with from by about as into onto up down out over under",
    "then there here this that these those what whats which who how so too very really just",
    "please some something anything everything nothing someone any more most much many few lot",
    "lots bit little kind sort type would could should can will shall may might must have has had",
    "do does did get got give go going gonna wanna let lets make maybe also only even still yet",
    "now if else because while stuff thing things music song songs track tracks album albums",
    "record records one ones other another same such own all each either well um uh hmm ah er oh",
    "first second third fourth fifth sixth seventh eighth ninth tenth last middle former latter",
    "number option item two three four five six seven eight nine ten actually honestly good",
    "great nice cool fine okay ok yes yeah no not new old",
)
#: Real words are never typos: "back" is not a misspelt "black", nor "fun" a misspelt "funk".
#: (Exact matches are unaffected; this only stops common words from being "corrected".)
REAL_WORDS = _words(
    "fun pun son sun sol man men way day say see saw big bad hot top mix boy guy car cat dog run",
    "sit set cry die eat end far fly fix hip hit job key kid law lay leg lie low mad map net odd",
    "pay pen pet put raw red rid row sad sea sex shy sky tax tea tie tip toy try war wet win won",
    "art bar bed box bus cup cut dry ear egg eye fan fat fit gun hat ice ink jam joy lap lip log",
    "mud nut oil pan pig pin pot rat rod rub rug sip tap tin van web wow ago air arm ask bag bet",
    "bin bow buy cap cow dad due fee fog gap gas god hug kit lab lad mom mum nap pad pal pie ram",
    "ray sir tag ton tub vet via wax wee wit lol",
    "back tell know think work help play take look come call feel find keep hold turn move live",
    "hear read walk talk wait stay stop open show need seem mean care mind hope wish sing song",
    "sound sounds tune tunes beat beats band bands voice word words name time year week today",
    "night morning evening life world home house place part case point fact hand head face side",
    "line room door city town road trip game love hate dear mine sure true real full free easy",
    "hard fast slow long short high deep dark light bright clear clean fair rich poor warm cold",
    "cool fine nice best better worse less more most much many some last next late early young",
    "older newer different same other else again still just even ever never always often soon",
    "here there where when what which while with without about above after before under over",
    "into onto upon from than then them they their these those this that were been being have",
    "does done doing made make makes said says went gone goes going getting give given took",
    "taken seen knew known thought told asked tried used using want wants wanted liked likes",
    "loving loved hated dumb smart funny silly crazy weird strange happy angry tired bored busy",
    "ready okay alright thanks thank please sorry hello goodbye friend friends people person",
    "family girl girls boys guys kids woman women baby music stuff thing things something anything",
    "everything nothing someone anyone everyone maybe perhaps really very quite pretty enough",
    "also only both either neither each every such what whatever whenever however because",
    "black white green brown blue pink gold silver grey gray",
)

#: kind of a grammar phrase → its phrases. An answer's arg says how sure it is ("yes",
#: "weak_yes", "no", "more", "cond_no", "cond_neutral", "cond_skip", "cond_more"); "cond" ones
#: are answers only when no mention follows them (otherwise "no jazz" would be an answer, not a
#: negation). "more" is a "no" that also asks for the next list at once.
_GRAMMAR: Mapping[tuple[str, str], str] = {
    ("boundary", ""): "but|however|although|though|whereas|instead",
    ("conj", ""): "and|or|nor|plus|as well as",
    ("neg", ""): (
        "not|dont|do not|doesnt|does not|didnt|isnt|arent|wont|wouldnt|cant|cannot|never|"
        "without|except|excluding|exclude|avoid|hate|hates|dislike|dislikes|detest|loathe|"
        "anything but|everything but|anything except|anything other than|other than|instead of|"
        "rather than|than|less|no more|nothing|not a fan of|sick of|tired of|fed up with|"
        "done with|finished with|had enough of|enough of|over with|no longer into|"
        "cant stand|get rid of|remove|drop|i dont want|i dont like|i dont need|i dont love|"
        "i dont really like|i dont really want|i do not want|i do not like|dont care for|"
        "i dont care for|i dont enjoy|i dont fancy|"
        "none of that|no to"
    ),
    ("pos", ""): (
        "like|love|want|prefer|need|enjoy|into|fancy|dig|rather have|nothing but|only|more like|"
        "take|ill take|ill have|go with|ill go with|choose|pick|"
        "in the mood for|in a mood for|im in the mood for|"  # "mood" is no attribute ("moody")
        "looking for|im looking for|i am looking for"
    ),
    ("skip", ""): "dont care about|i dont care about|not bothered about|indifferent to|whatever about",
    ("answer", "yes"): (
        "yes|yeah|yea|yep|yup|ya|yah|sure|absolutely|definitely|certainly|of course|yes please|"
        "why not|sounds good|sounds great|i do|indeed|totally|for sure|go for it|exactly|aye|yess|"
        "i think so|i believe so|think so|sounds right|thats right|right|y|yeh|ye|yass|yas"
    ),
    ("answer", "weak_yes"): (
        "ok|okay|alright|all right|fine|good|great|cool|nice|perfect|i guess|i suppose|k|kk|okk|okey|oki|okie"
    ),
    ("answer", "no"): (
        "nope|nah|no way|no thanks|no thank you|i dont think so|i think not|negative|not for me|n|nay|"
        # "not this": the question's answer, or the shown list turned down
        "not today|not now|not right now|not this time|not tonight|not at the moment|not quite|"
        "something else|something different|try something else|try something different|"
        "lets try something else|lets try something different|lets do something different|"
        "something new|try something new|lets try something new|"
        "not feeling it|not feeling these|not feeling those|not feeling them|not really feeling it|"
        "not really feeling these|not really feeling those|not really feeling them|"
        "heard them all|heard them|heard those|heard these|ive heard them all|ive heard them|"
        "ive heard those|ive heard these|i know them|i know these|i know those|know them all|"
        "i know them all|already heard them|already know them"
    ),
    # the shown list turned down, and another one asked for at once ("no" to a pending question)
    ("answer", "more"): (
        "show me more|show more|more please|some more|any more|anymore|more options|more choices|"
        "more suggestions|more recommendations|others|others please|any others|other ones|"
        "other options|different ones|next|next ones|next please|what else|what else do you have|"
        "what else have you got|what else you got|anything else|got anything else|show me others|"
        "show me other ones|show me different ones|give me more|give me others|another one|another|"
        "a different one|different one|other one|next one"
    ),
    ("answer", "cond_more"): "more",  # alone; "more upbeat" is a wish, not an answer
    ("answer", "cond_no"): "no|not really|not at all|i dont|not much|i do not",
    ("answer", "cond_neutral"): (
        "i dont mind|dont mind|whatever|not sure|im not sure|maybe|perhaps|dunno|i dont know|"
        "dont know|idk|no idea|either|either one|either way|any|anything|anything is fine|both|"
        "up to you|all good|no matter"
    ),
    ("answer", "cond_skip"): (
        "doesnt matter|does not matter|dont care|i dont care|i do not care|no preference|"
        "not bothered|indifferent|skip|pass"
    ),
    ("intent", "recommend_now"): (
        "recommend|recommend something|just recommend|recommendation|recommendations|suggest|"
        "suggestion|suggestions|surprise me|show me|show me some|show me something|what do you have|"
        "what have you got|what you got|what do you got|give me something|give me some|"
        "give me one|just pick|pick something|pick one|pick for me|go ahead|any ideas|"
        "whatever you think|you choose|you decide|you pick|im feeling lucky|feeling lucky|"
        "show results|show them|let me see|lets see|just show|hit me|gimme|gimme recs|recs|give me recs|"
        "recs please|any recs|some recs|gimme something|gimme some"
    ),
    ("intent", "restart"): (
        "start over|restart|reset|new search|start again|begin again|from scratch|start fresh|"
        "clear all|clear everything|forget everything|new conversation|another search"
    ),
    ("intent", "why"): "why|how come|what makes|explain|whats the reason|reason",
    ("intent", "undo"): (
        "go back|undo|undo that|take that back|take it back|scratch that|go back a step|one step back|"
        "back to the last question|back to the previous question|previous question|last question|"
        "wait go back|i changed my mind about that|no wait|i meant|no i meant|sorry i meant|oops i meant"
    ),
    ("greet", ""): (
        "hi|hello|hey|hiya|howdy|yo|greetings|good morning|good afternoon|good evening|hey there|"
        "hi there|hello there|heya|sup|whats up"
    ),
    ("thanks", ""): (
        "thanks|thank you|thx|ty|cheers|thanks a lot|thank you so much|many thanks|"
        "much appreciated|appreciate it|thankyou|tnx"
    ),
    ("items_all", ""): (
        "none of these|none of them|none of those|none of the above|neither of them|neither one|"
        "nothing here|not these|not those|none of this"
    ),
    ("items_all", "cond"): "none|neither",
    ("this_item", "it"): "it",
    ("this_item", "one"): "that one|this one|the one",
}


@dataclass(frozen=True, slots=True)
class Phrase:
    kind: str
    arg: str
    length: int


def _table(spec: Mapping[tuple[str, str], str]) -> dict[tuple[str, ...], tuple[str, str]]:
    table: dict[tuple[str, ...], tuple[str, str]] = {}
    for (kind, arg), phrases in spec.items():
        for phrase in phrases.split("|"):
            table.setdefault(tuple(phrase.split()), (kind, arg))
    return table


PHRASES = _table(_GRAMMAR)
_PHRASE_MAX = max(len(k) for k in PHRASES)
#: Words the grammar owns: an attribute named "love" or "reset" is not matched by that word alone.
RESERVED = STOPWORDS | frozenset(k[0] for k in PHRASES if len(k) == 1)


def match_phrase(tokens: Sequence[str], i: int) -> Phrase | None:
    """The longest grammar phrase starting at ``tokens[i]``."""
    for n in range(min(_PHRASE_MAX, len(tokens) - i), 0, -1):
        hit = PHRASES.get(tuple(tokens[i : i + n]))
        if hit is not None:
            return Phrase(hit[0], hit[1], n)
    return None


_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7,
    "ninth": 8, "9th": 8, "tenth": 9, "10th": 9, "former": 0, "last": -1, "latter": -1, "final": -1,
}
_CARDINALS = {w: i for i, w in enumerate(["one", "two", "three", "four", "five", "six", "seven", "eight",
                                          "nine", "ten"])}
_NUMBER_WORDS = frozenset({"number", "option", "item", "nr", "num", "choice"})


def list_position(tokens: Sequence[str], i: int, shown: int, *, alone: bool) -> tuple[int, int] | None:
    """(position in a shown list, tokens used) for "second (one)", "#2", "number 3", "the last";
    a bare number counts only when it is the whole message (``alone``)."""
    token, used, position = tokens[i], 1, None
    if token.startswith("#"):
        position = int(token[1:]) - 1 if len(token) < 6 else None
    elif token in _NUMBER_WORDS and i + 1 < len(tokens):
        following, used = tokens[i + 1], 2
        number = following.isdecimal() and len(following) < 4
        position = int(following) - 1 if number else _CARDINALS.get(following)
    elif token in _ORDINALS:
        position = _ORDINALS[token]
    elif token == "middle" and shown % 2 == 1:
        position = shown // 2
    elif token.isdecimal() and len(token) < 4 and alone:
        position = int(token) - 1
    if position is None or not -shown <= position < shown:
        return None
    if i + used < len(tokens) and tokens[i + used] in ("one", "ones"):
        used += 1
    return position % shown, used


def _forms(name: str) -> list[tuple[str, ...]]:
    """Stemmed token forms of a name and of its parts ("Album — Artist"); a lone token that is
    a function word or shorter than three letters names nothing."""
    parts = [name, *name_parts(name)] if len(name_parts(name)) > 1 else [name]
    out = []
    for part in parts:
        key = tuple(stem(t) for t in tokenize(part) if t not in PUNCT)
        if key and not (len(key) == 1 and (key[0] in RESERVED or len(key[0]) < 3)):
            out.append(key)
    return out


def name_forms(named: Iterable[tuple[str, str]]) -> dict[tuple[str, ...], str | None]:
    """Stemmed token forms of item names and of their parts ("Album — Artist"), mapped to the
    item id; a form shared by two items maps to None (it names neither)."""
    forms: dict[tuple[str, ...], str | None] = {}
    for item, name in named:
        for key in _forms(name):
            forms[key] = item if forms.get(key, item) == item else None
    return forms


def catalog_forms(named: Iterable[tuple[str, str]]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Like :func:`name_forms`, but a form maps to every item it names: an artist's name
    (the part after the separator) names all of that artist's items."""
    forms: dict[tuple[str, ...], list[str]] = {}
    for item, name in named:
        for key in _forms(name):
            bucket = forms.setdefault(key, [])
            if item not in bucket:
                bucket.append(item)
    return {key: tuple(items) for key, items in forms.items()}


@dataclass(frozen=True, slots=True)
class Entry:
    attr: int
    rank: int  # 0 the value itself, 1 a synonym, 2 a multi-word form written as one word
    raw: tuple[str, ...]


def _deletions(text: str) -> set[str]:
    return {text} | {text[:k] + text[k + 1 :] for k in range(len(text))}


class Lexicon:
    """Attribute names and synonyms, indexed by their stemmed token n-grams."""

    def __init__(self, attributes: Sequence[Attribute], fuzzy_cutoff: float) -> None:
        self._entries: dict[tuple[str, ...], list[Entry]] = {}
        for index, attr in enumerate(attributes):
            for rank, form in enumerate((attr.value, *attr.synonyms)):
                raw = tuple(t for t in tokenize(form) if t not in PUNCT)[:MAX_KEY_TOKENS]
                self._add(raw, Entry(index, min(rank, 1), raw))
                joined = "".join(raw)
                if len(raw) > 1 and len(joined) >= 4:
                    self._add((joined,), Entry(index, 2, (joined,)))
        self._longest: dict[str, int] = {}
        # Typo index: every key under itself and each one-letter deletion of it. Two strings one
        # edit apart (insertion, deletion, substitution, swap) share an entry, so a typo is a
        # few dict look-ups instead of a scan of the whole lexicon.
        self._variants: dict[str, list[str]] = {}
        self._rank: dict[str, int] = {}  # on equal scores a real name beats a run-together one
        for key, entries in self._entries.items():
            self._longest[key[0]] = max(self._longest.get(key[0], 0), len(key))
            text = " ".join(key)
            if len(key) <= 2 and len(text) >= 4 and text.replace(" ", "").isalpha():  # queries are 1-2 words
                self._rank[text] = min(e.rank for e in entries)
                for variant in _deletions(text):
                    self._variants.setdefault(variant, []).append(text)
        self._cutoff = fuzzy_cutoff
        #: every word of every key (stemmed): words that belong to the catalog, never typos
        self.words = frozenset(t for key in self._entries for t in key)

    def _add(self, raw: tuple[str, ...], entry: Entry) -> None:
        key = tuple(stem(t) for t in raw)
        if not key or (len(key) == 1 and (key[0] in RESERVED or raw[0] in RESERVED)):
            return
        bucket = self._entries.setdefault(key, [])
        if all(e.attr != entry.attr for e in bucket):
            bucket.append(entry)

    def match(self, stems: Sequence[str], i: int) -> tuple[int, list[Entry]] | None:
        """The longest key starting at ``stems[i]``: (its length, its entries)."""
        longest = self._longest.get(stems[i], 0)
        for n in range(min(longest, len(stems) - i), 0, -1):
            entries = self._entries.get(tuple(stems[i : i + n]))
            if entries:
                return n, entries
        return None

    def fuzzy(self, query: str) -> list[Entry]:
        """Entries of the closest key one edit away from a stemmed query (one or two words)."""
        if len(query) < 3 or query in REAL_WORDS:
            return []
        found = {c for v in _deletions(query) for c in self._variants.get(v, ())}
        # Three letters only reach a four-letter key, by one insertion ("jaz" → "jazz", 85.7).
        cutoff = 85.0 if len(query) == 3 else self._cutoff
        choices = sorted((c for c in found if len(query) > 3 or len(c) == 4), key=lambda c: (self._rank[c], c))
        hit = process.extractOne(query, choices, scorer=fuzz.ratio, score_cutoff=cutoff)
        return [] if hit is None else self._entries[tuple(hit[0].split())]

    @staticmethod
    def choose(entries: Sequence[Entry], raw: Sequence[str], preferred: frozenset[int],
               facets: frozenset[str], attributes: Sequence[Attribute], sizes: Sequence[int] | None = None) -> int:
        """One attribute for an ambiguous key: context first, then the exact spelling, then values,
        then the attribute more items have ("80s" over "80's": the likelier meaning)."""
        return min(
            entries,
            key=lambda e: (
                e.attr not in preferred,
                attributes[e.attr].facet not in facets,
                tuple(e.raw) != tuple(raw),
                e.rank,
                -sizes[e.attr] if sizes is not None else 0,
                e.attr,
            ),
        ).attr


def _plain(text: str) -> str:
    return " ".join(w for w in tokenize(text) if w not in PUNCT)


def content_words(text: str) -> str:
    """The words of a text that carry its meaning (all of them if all are function words)."""
    words = [w for w in tokenize(text) if w not in PUNCT]
    return " ".join([w for w in words if w not in RESERVED] or words)


class EmbeddingIndex:
    """One vector per name and synonym of every attribute; an attribute scores its best form.

    Queries are embedded without their function words (:func:`content_words`), or "songs for
    a rainy day" would be close to "love songs" for saying "songs". Names keep theirs: the tag
    "music to-well you know" must not shrink to "know" and then match "tell me more".
    """

    def __init__(self, embedder: Embedder, attributes: Sequence[Attribute]) -> None:
        texts: list[str] = []
        starts: list[int] = []
        for attr in attributes:
            forms = list(dict.fromkeys(f for f in map(_plain, (attr.value, *attr.synonyms)) if f))
            if len(forms) > 2:
                forms.append(" ".join(forms))  # the whole description, for multi-word queries
            starts.append(len(texts))
            texts.extend(forms or [attr.value])  # every attribute needs at least one row
        self._embedder = embedder
        self._matrix: NDArray[np.float32] = np.asarray(embedder.embed(texts), dtype=np.float32)
        self._starts = np.asarray(starts, dtype=np.int64)

    def best(self, texts: Sequence[str]) -> list[tuple[int, float, float]]:
        """Per text: (best attribute, its cosine, its margin over the runner-up)."""
        if not texts or not len(self._starts):
            return []
        queries = np.nan_to_num(np.asarray(self._embedder.embed(list(texts)), dtype=np.float32))
        out: list[tuple[int, float, float]] = []
        for query in queries:
            # einsum, not BLAS: single-threaded, so steady under load and bit-for-bit repeatable.
            scores = np.einsum("ij,j->i", self._matrix, query)
            per_attr = np.maximum.reduceat(scores, self._starts)
            top = int(np.argmax(per_attr))
            best = float(per_attr[top])
            per_attr[top] = -np.inf
            runner = float(per_attr.max()) if len(per_attr) > 1 else -1.0
            out.append((top, best, best - runner))
        return out
