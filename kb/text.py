"""The one text normaliser: how messages, item names and attribute values are cut into words.

Every part that matches text against the catalog (the parser, the LLM grounding check, the
memory's phrase lookup) uses these functions, so a name is read the same way everywhere.

>>> tokenize("Don't play Björk's 80s stuff, OK?")
['dont', 'play', 'bjorks', '80s', 'stuff', ',', 'ok', '?']
>>> words("hip-hop & R&B")
['hip', 'hop', 'r', 'b']
>>> name_parts("Kind of Blue — Miles Davis")
['Kind of Blue', 'Miles Davis']
>>> title("Blue — Joni Mitchell")
'Blue'
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["PUNCT", "Span", "fold", "name_parts", "phrase", "title", "tokenize", "word_spans", "words"]

#: Zero-width and direction marks: invisible, so never part of a word.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
#: An apostrophe inside a word is dropped ("don't" → "dont", "Björk's" → "bjorks").
_APOSTROPHE = re.compile(r"(?<=\w)['\u2018\u2019`\u00b4](?=\w)")
_TOKEN = re.compile(r"#\s?\d+|[^\W_]+|[,.;:!?()]")
_WORD = re.compile(r"[^\W_]+(?:['\u2018\u2019`\u00b4][^\W_]+)*")
#: "Album — Artist": the separators between an item's title and its maker, strongest first.
_NAME_SEPARATORS = [re.compile(rf"\s+{dash}\s+") for dash in "—–-"]
PUNCT = frozenset(",.;:!?()")

#: A word of a text: where it starts and ends in the original, and its folded form.
Span = tuple[int, int, str]


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Casefolded, accents and invisible marks dropped, in-word apostrophes removed."""
    return _APOSTROPHE.sub("", _strip_accents(_INVISIBLE.sub("", text)).casefold())


def tokenize(text: str) -> list[str]:
    """Folded word tokens plus clause punctuation and list markers ("#2"): what the parser reads."""
    return [t.replace(" ", "") for t in _TOKEN.findall(fold(text))]


def words(text: str) -> list[str]:
    """Folded word tokens only."""
    return [t for t in tokenize(text) if t not in PUNCT and not t.startswith("#")]


def word_spans(text: str) -> list[Span]:
    """The words of ``text`` with their places in it (for cutting a text short, or reading its case).

    >>> [(text[a:b], w) for text in ["Olé, Blue Train!"] for a, b, w in word_spans(text)]
    [('Olé', 'ole'), ('Blue', 'blue'), ('Train', 'train')]
    """
    text = _INVISIBLE.sub(" ", text)  # same length, so the places stay true
    return [(m.start(), m.end(), "".join(words(m.group()))) for m in _WORD.finditer(text)]


def phrase(text: str) -> str:
    """A text as one comparable key: its folded words joined by single spaces."""
    return " ".join(words(text))


def name_parts(name: str) -> list[str]:
    """An item name's parts, title and maker, split at the last of its strongest separator;
    a name without a separator is one part.

    >>> name_parts("Live - Part 2 — The Band")
    ['Live - Part 2', 'The Band']
    """
    for separator in _NAME_SEPARATORS:
        found = list(separator.finditer(name))
        if found:
            cut = found[-1]
            parts = [name[: cut.start()].strip(), name[cut.end() :].strip()]
            return [p for p in parts if p] or [name]
    return [name]


def title(name: str) -> str:
    """The part of an item name before its maker ("Blue Train — John Coltrane" → "Blue Train")."""
    return name_parts(name)[0]
