"""Every claim a reply makes about the person ("you said ...", "you chose ...", "you like ...") is
checked against what that person actually said or chose, over several sessions, through the
public API with the real memory (Chroma) and checkpoints."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crs import Recommender, Settings
from crs.evals.claims import unbacked_claims
from crs.language.reply import Reply
from crs.memory.statements import find_statements


@dataclass
class Person:
    """What one person really said and chose, as the conversation went."""

    said: dict[str, str] = field(default_factory=dict)  # value → "like"/"dislike", newest wins
    chosen: list[str] = field(default_factory=list)  # item names, in order
    replies: list[Reply] = field(default_factory=list)


def _claims_hold(person: Person, reply: Reply, chosen_before: list[str]) -> list[str]:
    """The claims in one reply that are not backed by what the person said or chose before it."""
    return unbacked_claims([reply.text, *(r.why for r in reply.recommendations)], person.said, chosen_before)


class Conversation:
    def __init__(self, rec: Recommender, user: str) -> None:
        self.rec, self.user, self.person = rec, user, Person()
        self.wrong: list[str] = []
        self._chosen_before: list[str] = []

    def session(self, session: str, *messages: str, choose_first: bool = False) -> Reply:
        self._chosen_before = list(self.person.chosen)  # what was chosen before this session
        reply = None
        for text in messages:
            for st in find_statements(text):
                if st.kind in ("like", "dislike"):
                    for part in re.split(r",\s*|\s+and\s+", st.phrase):
                        self.person.said[part.strip().lower()] = st.kind
            reply = self._check(self.rec.chat(self.user, session, text))
        if choose_first:
            if reply is None or reply.action != "recommend":
                reply = self._check(self.rec.act(self.user, session, {"type": "recommend_now"}))
            first = reply.recommendations[0]
            self._check(self.rec.act(self.user, session, {"type": "accept_item", "item_id": first.id}))
            self.person.chosen.append(first.name)
        assert reply is not None
        return reply

    def _check(self, reply: Reply) -> Reply:
        self.person.replies.append(reply)
        self.wrong += _claims_hold(self.person, reply, self._chosen_before)
        return reply


@pytest.fixture
def rec(tmp_path: Path) -> Recommender:
    return Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))  # bundled albums


@pytest.mark.slow
def test_every_claim_about_the_person_is_backed_across_sessions(rec: Recommender) -> None:
    ann = Conversation(rec, "ann")
    ann.session("s1", "I love jazz, it's my favourite", "just recommend something", choose_first=True)
    first = ann.person.chosen[0]
    # what the memory panel shows: the search named by what was chosen, not by ids
    summaries = [m.text for m in rec.memories("ann") if m.kind == "session_summary"]
    assert summaries and all(f"chose {first}" in t and "session" not in t for t in summaries), summaries
    hello = ann.session("s2", "hi")
    assert hello.action == "ask" and "you said you love jazz" in hello.text  # the source, named
    listed = ann.session("s2", "yes", "just recommend something")
    assert first not in [r.name for r in listed.recommendations]  # not offered again unasked
    ann.session("s3", "I'm done with jazz now")  # a one-message session, never closed
    later = ann.session("s4", "hi", "just recommend something")
    assert later.recommendations and all("jazz" not in r.why for r in later.recommendations)
    assert "you said you love jazz" not in " ".join(r.text for r in ann.person.replies[-2:])

    bob = Conversation(rec, "bob")  # choices only: a like needs two sessions that share it
    bob.session("b1", "some jazz from the 1950s", choose_first=True)
    one = bob.session("b2", "hello")
    assert "you said" not in one.text and "you chose" not in one.text  # one choice is no like
    bob.session("b2", "some jazz", choose_first=True)
    bob.session("b3", "hello")
    whys = " ".join(r.why for r in bob.session("b3", "just recommend something").recommendations)
    assert "which you chose before" in whys  # established by two sessions, and named as such
    assert ann.wrong == [] and bob.wrong == []


def test_a_claim_checker_catches_invented_likes() -> None:
    """The checker itself: a claim nobody backed is reported."""
    person = Person(said={"jazz": "like"})
    ok = Reply(text="Welcome back! Before, you said you love jazz. Still in the mood for jazz?", action="ask")
    bad = Reply(text="Here: Kind of Blue (has the 1950s you like)", action="recommend")
    made_up = Reply(text="Welcome back! Before, you said you love metal.", action="greet")
    chose = Reply(text="x (jazz, like Blue Train, which you chose before)", action="recommend")
    assert _claims_hold(person, ok, []) == []
    assert _claims_hold(person, bad, []) and _claims_hold(person, made_up, [])
    assert _claims_hold(person, chose, []) and _claims_hold(person, chose, ["Blue Train"]) == []


def test_a_wish_for_this_search_in_the_same_breath_is_not_a_dislike(rec: Recommender) -> None:
    """'I'm done with jazz, give me some rock': jazz is disliked from now on, rock is wanted now."""
    listed = rec.chat("cy", "s1", "I'm done with jazz, give me some rock")
    assert listed.recommendations and all("rock" in r.why for r in listed.recommendations)
    kept = {(m.kind, m.text) for m in rec.memories("cy")}
    assert ("dislike", "Done with jazz.") in kept
    # nothing about rock was said of the person (the search's summary may say it looked for rock)
    assert not [t for k, t in kept if "rock" in t.lower() and k != "session_summary"], kept
    rec.chat("dee", "s1", "I'm vegetarian and I love jazz, but I can't stand country")
    assert {m.text for m in rec.memories("dee")} >= {"Is vegetarian.", "Loves jazz.", "Can't stand country."}
