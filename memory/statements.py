"""What a user says about themselves, found offline with simple patterns.

Three things are recognised in a user's message:
- preference statements ("I'm done with metal", "I love jazz"): a like or dislike of a phrase;
- style requests ("keep it short", "more detail please"): how replies should be;
- facts ("I'm vegetarian", "I have kids", "I'm not vegetarian any more").

Each gets a ``topic`` key so a later statement on the same topic (with the other polarity)
supersedes the earlier one whatever the wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Statement", "find_statements"]

StatementKind = Literal["like", "dislike", "fact", "style"]


@dataclass(frozen=True, slots=True)
class Statement:
    kind: StatementKind
    text: str  # a normalised third-person memory text
    topic: str  # "pref:metal", "style:length", "fact:am:vegetarian"
    positive: bool  # False for a negated fact ("not vegetarian any more")
    phrase: str = ""  # for preferences: what is liked or disliked, as said
    verb: str = ""  # for preferences: how it was said ("love", "like", "can't stand", "are done with")


# Sentences, and the clauses of one: after a comma that starts again with the speaker ("I love
# jazz, it's my favourite, I'm vegetarian"), an "and I" ("I'm vegetarian and I love jazz"), a "but"
# ("I love jazz, but not today"), or a request for this search ("I'm done with jazz, give me some
# rock": the rock is wanted now, not disliked).
_SENTENCES = re.compile(
    r"(?<=[.!?;])\s+|\n+"
    r"|,\s*(?=(?:and\s+|but\s+)?(?:i|i'm|im|it's|it\s+is|that's|my)\b)"
    r"|\s+and\s+(?=(?:i|i'm|im)\b)"
    r"|,?\s+(?:but|though|although|except)\s+"
    r"|,\s*(?=(?:(?:so|now|just|please|and|then)\s+)?(?:give|show|play|find|recommend|suggest|get|let's|lets|"
    r"how about|what about|maybe|perhaps|can you|could you|something|anything|any|some)\b)",
    re.I)
_ANYMORE = r"(?:\s+(?:any\s*more|anymore|now|these days|for now|for a while))*"
_THING = r"(?P<thing>[\w'&\-\s,/+.:]{2,40}?)"
_END = rf"{_ANYMORE}\s*(?:please)?[.!?,]*\s*$"

_DISLIKE = [
    rf"\bi(?:'m| am)\s+(?:so\s+|really\s+)?(?:done|over|finished|fed up)\s+with\s+{_THING}{_END}",
    rf"\bi(?:'m| am)\s+over\s+{_THING}{_END}",
    rf"\bno\s+more\s+{_THING}{_END}",
    rf"\bi(?:'m| am)\s+not\s+(?:really\s+)?(?:into|a fan of)\s+{_THING}{_END}",
    rf"\bi\s+(?:don't|do not|no longer)\s+(?:really\s+)?(?:like|love|enjoy|want|listen to)\s+{_THING}{_END}",
    rf"\bi(?:'ve| have)\s+gone\s+off\s+{_THING}{_END}",
    rf"\bi\s+(?:hate|can't stand|cannot stand|dislike)\s+{_THING}{_END}",
]
_LIKE = [
    rf"^\s*{_THING}\s+(?:is|are)\s+my\s+(?:all[- ]time\s+)?(?:favou?rites?|jam|thing){_END}",
    rf"\bi(?:'m| am)\s+(?:really\s+|so\s+)?(?:into|a (?:big |huge )?fan of)\s+{_THING}{_END}",
    rf"\bi\s+(?:really\s+)?(?:love|adore|enjoy|like)\s+{_THING}{_END}",
]
_STYLE = [
    (r"\b(?:keep (?:it|them|answers|replies) (?:short|brief)|be (?:brief|concise)|short(?:er)? (?:answers|replies)"
     r"|fewer words|less text|tl;?dr)\b", "style:length", True, "Prefers short, brief replies."),
    (r"\b(?:more detail|more details|explain more|longer (?:answers|replies)|tell me more about why)\b",
     "style:length", False, "Prefers detailed replies."),
    (r"\b(?:no emojis?|without emojis?|stop (?:using|with) emojis?)\b", "style:emoji", False,
     "Prefers replies without emoji."),
]
_FACT_AM = re.compile(
    rf"\bi(?:'m| am)\s+(?P<neg>not\s+|no longer\s+)?(?:an?\s+)?(?P<what>[\w\-\s]{{2,40}}?){_END}", re.I
)
_FACT_HAVE = re.compile(
    rf"\bi\s+(?P<neg>don't\s+|do not\s+|no longer\s+)?(?:have|'ve got|have got)\s+(?:an?\s+|\w+\s+)?"
    rf"(?P<what>[\w\-\s]{{2,40}}?){_END}",
    re.I,
)
_FACT_OTHER = re.compile(
    rf"\bi\s+(?P<verb>live in|work as|work in|work at|study|moved to)\s+(?:an?\s+)?(?P<what>[\w\-\s]{{2,40}}?){_END}",
    re.I,
)
# "I'm looking for ...", "I'm in the mood for ..." describe this session, not the person.
_NOT_FACTS = re.compile(
    r"^(?:looking|searching|after|in the mood|in a|feeling|sure|fine|good|ok|okay|here|back|just|"
    r"trying|wondering|thinking|not sure|open|happy|glad|done|over|into|going|hoping|curious)\b",
    re.I,
)
_STOP = {"a", "an", "the", "some", "any", "more", "of", "to"}
_PRONOUNS = {"it", "that", "this", "them", "those", "these", "one", "you", "him", "her"}
_THIRD_PERSON = {"live in": "Lives in", "moved to": "Lives in", "work as": "Works as", "work in": "Works in",
                 "work at": "Works at", "study": "Studies"}


def _key(phrase: str) -> str:
    words = [w for w in re.findall(r"[\w'&\-]+", phrase.lower()) if w not in _STOP]
    return " ".join(words)


def _match_any(patterns: list[str], sentence: str) -> str | None:
    for pattern in patterns:
        m = re.search(pattern, sentence, re.I)
        if m and _key(m.group("thing")) and _key(m.group("thing")) not in _PRONOUNS:
            return m.group("thing").strip()
    return None


def find_statements(message: str) -> list[Statement]:
    """Statements about the user in one message, in order; at most one per sentence.

    >>> [(s.kind, s.topic, s.positive) for s in find_statements("I'm done with metal. I have kids!")]
    [('dislike', 'pref:metal', False), ('fact', 'fact:have:kids', True)]
    >>> find_statements("Please keep it short")[0].topic
    'style:length'
    >>> [(s.topic, s.positive) for s in find_statements("I'm not vegetarian any more")]
    [('fact:am:vegetarian', False)]
    >>> [s.topic for s in find_statements("I'm done with jazz, give me some rock")]
    ['pref:jazz']
    >>> [s.topic for s in find_statements("I'm vegetarian and I love jazz, but I can't stand country")]
    ['fact:am:vegetarian', 'pref:jazz', 'pref:country']
    """
    out: list[Statement] = []
    for raw in _SENTENCES.split(message.strip()):
        sentence = raw.strip()
        if not sentence:
            continue
        found = _statement(sentence)
        if found is not None:
            out.append(found)
    return out


def _verb(sentence: str, positive: bool) -> str:
    """How the preference was said, in the second person ("you said you {verb} jazz")."""
    low = sentence.lower()
    if positive:
        return "love" if re.search(r"\b(?:love|adore|favou?rites?|huge fan|big fan)\b", low) else "like"
    if re.search(r"\b(?:hate|can't stand|cannot stand)\b", low):
        return "can't stand"
    if re.search(r"\b(?:done|over|finished|fed up|gone off|no more|no longer)\b", low):
        return "are done with"
    return "don't like"


def _statement(sentence: str) -> Statement | None:
    thing = _match_any(_DISLIKE, sentence)
    if thing is not None:
        return Statement("dislike", f"Not into {_key(thing)} any more.", f"pref:{_key(thing)}", False, thing,
                         _verb(sentence, False))
    for pattern, topic, positive, text in _STYLE:
        if re.search(pattern, sentence, re.I):
            return Statement("style", text, topic, positive)
    thing = _match_any(_LIKE, sentence)
    if thing is not None:
        verb = _verb(sentence, True)
        text = f"{'Loves' if verb == 'love' else 'Likes'} {_key(thing)}."
        return Statement("like", text, f"pref:{_key(thing)}", True, thing, verb)
    m = _FACT_AM.search(sentence)
    if m and not _NOT_FACTS.match(m.group("what")) and _key(m.group("what")):
        what = _key(m.group("what"))
        neg = bool(m.group("neg"))
        return Statement("fact", f"Is {'not ' if neg else ''}{what}.", f"fact:am:{what}", not neg)
    m = _FACT_HAVE.search(sentence)
    if m and _key(m.group("what")):
        what = _key(m.group("what"))
        neg = bool(m.group("neg"))
        return Statement("fact", f"{'Does not have' if neg else 'Has'} {what}.", f"fact:have:{what}", not neg)
    m = _FACT_OTHER.search(sentence)
    if m and _key(m.group("what")):
        verb = m.group("verb").lower()
        what = _key(m.group("what"))
        # one place to live, one job: a new one replaces the old whatever it is
        topic = f"fact:{verb}" if verb in ("live in", "moved to", "work as") else f"fact:{verb}:{what}"
        topic = "fact:live in" if verb == "moved to" else topic
        text = f"{_THIRD_PERSON[verb]} {what}."
        return Statement("fact", text, topic, True)
    return None
