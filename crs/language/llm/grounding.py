"""The post-check of an LLM reply: it may name only what the policy chose.

A reply passes when every catalog name it contains (an item's full name, its title or its
artist; an attribute's value or synonym) belongs to an allowed item or attribute, when it
praises no disliked attribute, when it contains no run of two or more capitalised words
that is neither allowed nor in the draft (an album or artist from outside the catalog),
and when it repeats no stretch of the system prompt's rules. Names are matched on whole
words, longest first, so "Kind of Blue" is one name and not also the album "Blue".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crs.kb.graph import KnowledgeGraph
from crs.kb.text import name_parts, phrase, word_spans, words

__all__ = ["CONVERSATIONAL", "GroundingCheck", "Verdict"]

_CAPS = re.compile(r"\b[A-Z][\w'’]*(?:\s+(?:(?:of|the|de|la|in)\s+)?[A-Z][\w'’]*)+")
_NOT_NAMES = frozenset(
    [
        "i",
        "i'm",
        "i'll",
        "i've",
        "i'd",
        "oh",
        "ok",
        "okay",
        "hey",
        "hi",
        "hello",
        "yes",
        "no",
        "wow",
        "ooh",
        "yay",
        "woo",
        "a",
    ]
)
_MAX_FORM = 12
_SHINGLE = 6
_TOO_COMMON = frozenset({"the", "a", "an", "i", "it", "you", "me", "one", "two", "us", "them"})


#: Words of everyday talk that are also attribute values somewhere ("Happy listening!").
CONVERSATIONAL = frozenset(
    [
        "yes",
        "no",
        "fun",
        "happy",
        "love",
        "play",
        "night",
        "world",
        "stand",
        "settle",
        "control",
        "kick",
        "dare",
        "air",
        "ten",
        "variety",
        "recent",
        "actually",
        "pair",
        "showcase",
        "grace",
        "positive",
    ]
)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...] = ()


class GroundingCheck:
    """Built once per catalog; :meth:`check` is pure and thread-safe."""

    def __init__(self, graph: KnowledgeGraph) -> None:
        self.graph = graph
        self._forms: dict[tuple[str, ...], tuple[frozenset[str], frozenset[str]]] = {}
        items: dict[tuple[str, ...], set[str]] = {}
        attrs: dict[tuple[str, ...], set[str]] = {}
        for item_id, name in zip(graph.item_ids, graph.item_names, strict=True):
            for form in {name, *name_parts(name)}:
                key = tuple(words(form))
                if key and not (len(key) == 1 and (key[0] in _TOO_COMMON or len(key[0]) < 3)):
                    items.setdefault(key[:_MAX_FORM], set()).add(item_id)
        for attr in graph.attributes:
            for form in (attr.value, *attr.synonyms):
                key = tuple(words(form))
                if key and not (len(key) == 1 and key[0] in _TOO_COMMON):
                    attrs.setdefault(key[:_MAX_FORM], set()).add(attr.id)
        for key in {*items, *attrs}:
            self._forms[key] = (frozenset(items.get(key, ())), frozenset(attrs.get(key, ())))
        self._longest = max((len(k) for k in self._forms), default=1)

        self._prefixes = {key[:j] for key in self._forms for j in range(1, len(key))}

    def settled(self, text: str) -> str:
        """The part of a growing text that later words cannot turn into another name.

        A stream is checked and shown only up to here: a word still being typed, or trailing
        words that begin a longer catalog name ("Blue" of "Blue Train"), wait for what follows.
        """
        found = word_spans(text)
        cut = len(found) - 1 if found and text[-1:].isalnum() else len(found)
        for k in range(min(self._longest - 1, cut), 0, -1):
            if tuple(word for _, _, word in found[cut - k : cut]) in self._prefixes:
                cut -= k
                break
        return text if cut == len(found) else text[: found[cut][0]].rstrip()

    def mentions(self, text: str) -> list[tuple[str, frozenset[str], frozenset[str]]]:
        """(surface form, item ids, attribute ids) of every catalog name in ``text``, longest first."""
        spans = word_spans(text)
        raw = [text[start:end] for start, end, _ in spans]
        folded = [word for _, _, word in spans]
        found = []
        i = 0
        while i < len(folded):
            for n in range(min(self._longest, len(folded) - i), 0, -1):
                hit = self._forms.get(tuple(folded[i : i + n]))
                if hit is None:
                    continue
                item_ids, attr_ids = hit
                if n == 1:  # one word: an item's title only when capitalised; no everyday words
                    item_ids = item_ids if raw[i][:1].isupper() else frozenset()
                    attr_ids = attr_ids if folded[i] not in CONVERSATIONAL else frozenset()
                    if not (item_ids or attr_ids):
                        continue
                found.append((" ".join(folded[i : i + n]), item_ids, attr_ids))
                i += n
                break
            else:
                i += 1
        return found

    def check(
        self,
        text: str,
        *,
        items: Iterable[str],
        attributes: Iterable[str],
        dislikes: Iterable[str] = (),
        draft: str = "",
        secrets: Sequence[str] = (),
        also_known: Sequence[str] = (),
    ) -> Verdict:
        allowed_items, allowed_attrs, disliked = set(items), set(attributes), set(dislikes)
        problems: list[str] = []
        if not text.strip():
            return Verdict(False, ("the reply is empty",))
        for form, item_ids, attr_ids in self.mentions(text):
            if attr_ids & disliked:
                problems.append(f"mentions the disliked {form!r}")
            elif not (item_ids & allowed_items or attr_ids & allowed_attrs):
                problems.append(f"names {form!r}, which the policy did not choose")
        known = [phrase(k) for k in (draft, *also_known)]
        known += [
            phrase(self.graph.item_names[self.graph.item_index[i]])
            for i in allowed_items
            if i in self.graph.item_index
        ]
        for match in _CAPS.finditer(text):
            parts = match.group(0).split()
            while parts and parts[0].casefold().rstrip(",") in _NOT_NAMES:
                parts = parts[1:]
            key = phrase(" ".join(parts))
            if len(parts) >= 2 and not any(key in k for k in known):
                problems.append(f"names {' '.join(parts)!r}, which is none of the chosen items")
        problems += _leaks(text, secrets, draft)
        return Verdict(not problems, tuple(problems))


def _shingles(words: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def _leaks(text: str, secrets: Sequence[str], draft: str) -> list[str]:
    """A run of six words of the hidden instructions (that the draft does not contain)."""
    said = _shingles(words(text)) - _shingles(words(draft))
    for secret in secrets:
        if said & _shingles(words(secret)):
            return ["repeats the system prompt"]
    return []
