"""Claims a reply makes about the person, checked against what they said and chose.

A reply may say "you said you love jazz" only if the person stated it (and has not taken it
back), "like Kind of Blue, which you chose before" / "you chose Kind of Blue" only for items
they chose in an earlier session, and never a bare "you like X" / "you were into X".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["unbacked_claims"]

_SAID = re.compile(r"you said you (love|like|can't stand|are done with|don't like|'re done with) "
                   r"([\w' &\-]+?)(?=[;,.)?!]| and you|$)", re.I)
_CHOSE_BEFORE = re.compile(r"like (.+?), which you chose before")
_YOU_CHOSE = re.compile(r"you chose (?!before)(.+?)(?: \(\w+ \d+\))?(?=[.;?!]|$)")
_ONLY_JOINERS = re.compile(r"(?:\s|,|\band\b)*")
_BARE_LIKE = re.compile(r"(?<!said )\byou (?:like|love|liked|loved|were into|are into)\b", re.I)


def _norm(value: str) -> str:
    """"Not-Emo" and "not emo" are the same thing said, and so are "70's" and "70s"."""
    return re.sub(r"[\s_\-]+", " ", re.sub(r"['\u2019]", "", value.strip().lower()))


def unbacked_claims(texts: Iterable[str], said: Mapping[str, str], chosen: Iterable[str]) -> list[str]:
    """The claims in ``texts`` that nothing backs.

    ``said`` maps a value the person stated to its current polarity ("like" or "dislike");
    ``chosen`` holds the names of the items they chose before. Item names are not claims: leave
    them out of ``texts`` (a band called "You Love Her" says nothing about the person).

    >>> unbacked_claims(["matches rock; you said you love jazz"], {"jazz": "like"}, [])
    []
    >>> unbacked_claims(["you said you love 70s"], {"70's": "like"}, [])
    []
    >>> unbacked_claims(["has the 1950s you like", "you said you love metal"], {"jazz": "like"}, [])
    ["'has the 1950s you like': claims a like without its source", "'you said you love metal': never said love metal"]
    >>> unbacked_claims(["jazz, like Blue Train and Tea for Two, which you chose before"], {},
    ...                 ["Blue Train", "Tea for Two"])
    []
    >>> unbacked_claims(["jazz, like Blue Train and Giant Steps, which you chose before"], {}, ["Blue Train"])
    ["'jazz, like Blue Train and Giant Steps, which you chose before': never chose Blue Train and Giant Steps"]
    """
    names = set(chosen)
    stated = {_norm(v): p for v, p in said.items()}
    wrong = []
    for text in texts:
        for verb, value in _SAID.findall(text):
            polarity = "like" if verb.lower() in ("love", "like") else "dislike"
            if stated.get(_norm(value)) != polarity:
                wrong.append(f"{text!r}: never said {verb} {value}")
        for items in _CHOSE_BEFORE.findall(text) + _YOU_CHOSE.findall(text):
            rest = items
            for name in sorted(names, key=len, reverse=True):  # names may hold "and" or commas
                rest = rest.replace(name, "")
            if not _ONLY_JOINERS.fullmatch(rest):
                wrong.append(f"{text!r}: never chose {items}")
        if _BARE_LIKE.search(text):
            wrong.append(f"{text!r}: claims a like without its source")
    return wrong
