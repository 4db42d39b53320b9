"""Small English grammar for template replies: a/an before a value, and attribute values as
phrases that read right after "you like" or "it is".

Catalog values are bare labels ("upbeat", "solo artist", "1970s", "United States"); put into a
sentence they need an article, a plural or a preposition. The rules here are deliberately
small and predictable; a value they do not know keeps its label.

>>> article("upbeat"), article("band"), article("r&b"), article("80s"), article("1970s"), article("unique")
('an', 'a', 'an', 'an', 'a', 'a')
>>> fill("In a {value} mood?", value="upbeat")
'In an upbeat mood?'
>>> fill("Should it be by a {value}?", value="band")
'Should it be by a band?'
>>> noun("artist_type", "solo artist"), noun("decade", "1970s"), noun("country", "United States")
('solo artists', 'music from the 1970s', 'music from the United States')
>>> join_nouns(["calm music", "jazz", "instrumental music"])
'jazz, calm and instrumental music'
>>> predicate("decade", "1970s"), predicate("mood", "upbeat"), predicate("artist_type", "band")
('from the 1970s', 'upbeat', 'by a band')
"""

from __future__ import annotations

import re

__all__ = ["article", "fill", "join_nouns", "noun", "place", "predicate"]

_VOWEL_SOUND_EXCEPTIONS = ("uni", "use", "usu", "uti", "eu", "one", "once", "ewe", "ubiq", "ur")
_SILENT_H = ("hour", "honest", "honor", "honour", "heir")
_VOWEL_LETTER_NAMES = set("aefhilmnorsx")  # letters whose name starts with a vowel sound: "an R&B album"
#: country names said with "the"
_THE_PLACES = ("united ", "netherlands", "philippines", "czech republic", "dominican republic",
               "bahamas", "gambia", "ivory coast", "uk", "usa", "us")


def _acronym(word: str) -> bool:
    letters = word.replace("&", "").replace(".", "")
    return ("&" in word or "." in word[:3] or (word.isupper() and len(word) > 1)
            or (len(letters) <= 3 and letters.isalpha() and not any(c in "aeiouy" for c in letters.lower())))


def article(phrase: str) -> str:
    """``a`` or ``an`` for the phrase that follows, by its sound, not its letter."""
    word = phrase.strip().lstrip("'\"(").split(" ")[0]
    if not word:
        return "a"
    low = word.lower()
    if low[0].isdigit():
        digits = re.match(r"\d+", low)
        n = digits.group(0) if digits else low
        return "an" if n.startswith("8") or (n[:2] in ("11", "18") and len(n) in (2, 4)) else "a"
    if _acronym(word):
        return "an" if low[0] in _VOWEL_LETTER_NAMES else "a"
    if low.startswith(_SILENT_H):
        return "an"
    if low[0] in "aeiou":
        return "a" if low.startswith(_VOWEL_SOUND_EXCEPTIONS) else "an"
    return "a"


_ARTICLE_SLOT = re.compile(r"\b(a|an|A|An)( \{(\w+)\})")


def fill(template: str, **values: object) -> str:
    """``template.format(**values)``, with "a"/"an" before a placeholder agreeing with its value."""

    def agree(m: re.Match[str]) -> str:
        value = values.get(m.group(3))
        if not isinstance(value, str):
            return m.group(0)
        word = article(value)
        return (word.capitalize() if m.group(1)[0].isupper() else word) + m.group(2)

    return _ARTICLE_SLOT.sub(agree, template).format(**values)


def place(value: str) -> str:
    """A country as said after "from": "the United States", "Brazil"."""
    return f"the {value}" if value.lower().startswith(_THE_PLACES) and not value.lower().startswith("the ") else value


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    return word + "s"


def _kind(facet: str) -> str:
    f = facet.lower()
    for kind, words in (("time", ("decade", "era", "year", "period")), ("place", ("country", "origin", "region")),
                        ("who", ("artist_type", "artist type", "act", "lineup")), ("mood", ("mood",)),
                        ("vocals", ("vocal",))):
        if any(w in f for w in words):
            return kind
    return "other"


def noun(facet: str, value: str) -> str:
    """The value as the object of "you like …" / "you don't like …"."""
    kind = _kind(facet)
    if kind == "time":
        return f"music from the {value}"
    if kind == "place":
        return f"music from {place(value)}"
    if kind == "who":
        return _plural(value)
    if kind == "mood":
        return f"{value} music"
    if kind == "vocals":
        return value if value.endswith("vocals") else f"{value} music"
    return value


def predicate(facet: str, value: str) -> str:
    """The value as said of one item after "it is", or alone in an acknowledgement."""
    kind = _kind(facet)
    if kind == "time":
        return f"from the {value}"
    if kind == "place":
        return f"from {place(value)}"
    if kind == "who":
        return f"by {article(value)} {value}"
    if kind == "vocals" and value.endswith("vocals"):
        return f"with {value}"
    return value


def join_nouns(values: list[str]) -> str:
    """``a, b and c``, saying a shared " music" once: "calm and instrumental music"."""
    plain = [v for v in values if not v.endswith(" music") or v.startswith("music ")]
    music = [v.removesuffix(" music") for v in values if v not in plain]
    parts = [*plain, *music]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""
    return text + " music" if music else text
