"""Behaviours seen when the bot was tried as a new user would, pinned down: follow-up questions
are not choices, "why" before any list, acknowledgements, quick replies that stay open."""

from __future__ import annotations

from pathlib import Path

import pytest

from crs import Recommender, Settings
from crs.actions import AnswerQuestion
from crs.api import load_knowledge
from crs.language.nlu import NLUContext, OfflineNLU
from crs.reasoning.state import Feedback

SHOWN = NLUContext(recommended=("kind-of-blue", "time-out", "mingus-ah-um"))


@pytest.fixture(scope="module")
def nlu() -> OfflineNLU:
    graph, _ = load_knowledge(Settings())
    return OfflineNLU(graph)


@pytest.mark.parametrize(("text", "item"), [
    ("and the second?", "time-out"),
    ("what about the third one?", "mingus-ah-um"),
    ("the first one?", "kind-of-blue"),
    ("is the second one any good?", "time-out"),
    ("tell me about the third", "mingus-ah-um"),
])
def test_a_question_about_a_shown_item_is_never_a_choice(nlu: OfflineNLU, text: str, item: str) -> None:
    assert nlu.understand(text, SHOWN) == Feedback(intent="why", about_item=item)


@pytest.mark.parametrize(("text", "item"), [
    ("the second one please", "time-out"),
    ("I'll take the second", "time-out"),
    ("can I get the first one?", "kind-of-blue"),
    ("the third one", "mingus-ah-um"),
])
def test_a_choosing_phrase_chooses(nlu: OfflineNLU, text: str, item: str) -> None:
    assert nlu.understand(text, SHOWN).accept_item == item


@pytest.mark.parametrize("text", ["none of tese", "noting here for me", "nope, none of tose"])
def test_misspelt_function_words_are_put_right(nlu: OfflineNLU, text: str) -> None:
    assert set(nlu.understand(text, SHOWN).reject_items) == set(SHOWN.recommended)


def test_an_answer_after_filler_still_answers(nlu: OfflineNLU) -> None:
    asked = NLUContext(question="genre:jazz")
    assert nlu.understand("let me think... no", asked) == Feedback(reject_attributes=("genre:jazz",))
    assert nlu.understand("rock, yes", asked).accept_attributes == ("genre:rock",)  # yes is about rock here


@pytest.fixture
def rec(tmp_path: Path) -> Recommender:
    return Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False, memory=False))


def test_why_before_any_list_explains_the_question_or_says_nothing_was_recommended(rec: Recommender) -> None:
    first = rec.chat("ann", "s", "why?")
    assert first.action == "explain" and "haven't recommended anything yet" in first.text
    asked = rec.chat("ann", "s", "something from the 1990s")
    assert asked.action == "ask"
    why = rec.chat("ann", "s", "why?")
    assert why.action == "explain" and f"about the {asked.question.facet.replace('_', ' ')}" in why.text
    assert why.open_question == asked.question  # the question stays answerable
    assert rec.act("ann", "s", AnswerQuestion(yes=True)).action in ("ask", "recommend")


def test_understood_constraints_are_acknowledged_first(rec: Recommender) -> None:
    reply = rec.chat("bo", "s", "i want jaz but nothing from the 70s")
    assert reply.text.startswith("Jazz, not from the 1970s. ")
    assert not rec.chat("bo", "s", "yes").text.startswith("Jazz")  # a plain yes is not repeated back


def test_the_open_question_or_list_stays_open_after_clarify_explain_and_error(rec: Recommender) -> None:
    asked = rec.chat("cy", "s", "jazz")
    for text, action in (("what's the weather?", "clarify"), ("", "error"), ("why?", "explain")):
        reply = rec.chat("cy", "s", text)
        assert reply.action == action and reply.pending is not None
        assert reply.open_question == asked.question and reply.to_json()["pending"]["question"]["value"]
    shown = rec.chat("cy", "s", "just recommend something")
    explained = rec.chat("cy", "s", "why the first one?")
    assert [r.id for r in explained.open_recommendations] == [r.id for r in shown.recommendations]
    followed = rec.chat("cy", "s", "and the second?")
    assert followed.action == "explain" and followed.recommendations[0].id == shown.recommendations[1].id
    assert rec.state("cy", "s").accepted_item is None  # nothing was chosen


def test_a_message_not_understood_gets_the_open_question_again_or_how_to_pick(rec: Recommender) -> None:
    asked = rec.chat("di", "s", "some rock from the 70s")
    assert asked.action == "ask" and asked.question is not None
    unclear = rec.chat("di", "s", "what about tuesdays")
    assert unclear.action == "clarify"
    assert asked.question.value in unclear.text and "?" in unclear.text  # the question, asked again
    shown = rec.chat("di", "s", "just recommend something")
    assert len(shown.recommendations) > 1
    which = rec.chat("di", "s", "yes")  # yes to a list of several: which one?
    assert which.action == "clarify" and "Which one?" in which.text and "'the first one'" in which.text
    assert [r.id for r in which.open_recommendations] == [r.id for r in shown.recommendations]


def test_no_wish_at_the_start_gets_a_question_not_a_complaint(rec: Recommender) -> None:
    reply = rec.chat("ed", "s", "I'm not sure what I want")
    assert reply.action == "ask" and reply.question is not None


def test_show_me_more_shows_other_items(rec: Recommender) -> None:
    rec.chat("fa", "s", "some rock")
    first = rec.chat("fa", "s", "just recommend something")
    more = rec.chat("fa", "s", "show me more")
    assert more.action == "recommend"
    assert not {r.id for r in first.recommendations} & {r.id for r in more.recommendations}


def test_go_back_undoes_the_last_answer_and_asks_again(rec: Recommender) -> None:
    asked = rec.chat("gi", "s", "some rock from the 70s")
    before = rec.state("gi", "s")
    rec.chat("gi", "s", "yes")
    assert asked.question.attribute in rec.state("gi", "s").accepted
    back = rec.chat("gi", "s", "go back")
    assert back.action == "ask" and back.question == asked.question
    assert back.text.startswith(("Okay, back one step.", "Sure, let's go back."))
    now = rec.state("gi", "s")
    assert (now.accepted, now.rejected, now.question) == (before.accepted, before.rejected, before.question)
    assert now.turn > before.turn  # the count goes on: memory must not take this for a new conversation
    assert rec.chat("gi", "s", "no").action in ("ask", "recommend")
    assert asked.question.attribute in rec.state("gi", "s").rejected


def test_go_back_brings_a_list_turned_down_back_and_stops_at_the_start(rec: Recommender) -> None:
    rec.chat("hu", "s", "some jazz")
    shown = rec.chat("hu", "s", "just recommend something")
    rec.chat("hu", "s", "none of these")
    # the list is gone: "the first one" picks nothing from it now (it picks the open question's option)
    assert rec.chat("hu", "s", "the first one").action != "accepted"
    assert rec.state("hu", "s").accepted_item is None
    assert rec.chat("hu", "s", "go back").action == "ask"  # to the question after "none of these"
    back = rec.chat("hu", "s", "go back")
    assert back.action == "recommend" and [r.id for r in back.recommendations] == [r.id for r in shown.recommendations]
    assert rec.chat("hu", "s", "the first one").action == "accepted"
    fresh = rec.chat("iv", "s", "undo")
    assert fresh.text.startswith("There's nothing before this to go back to.")
    assert rec.state("iv", "s").accepted == ()


@pytest.mark.parametrize(("text", "expected"), [
    ("I'm bored", ()),  # no R&B (0.46 close, only 0.15 ahead of the next)
    ("angry music", ()),  # not calm, its opposite
    ("recommend me an album for a road trip", ()),  # close to trip hop by the word "trip" alone
    ("older than that", ()),  # not ambient ("old" sits beside its synonym "new age")
    ("something by a woman", ("vocals:female vocals",)),
    ("something darker", ("mood:dark",)),
    ("I want to cry", ("mood:melancholic",)),
    ("chill vibes", ("mood:calm",)),
    ("something dreamy", ("genre:dream pop",)),
])
def test_free_text_maps_to_an_attribute_only_when_clearly_meant(text: str, expected: tuple[str, ...]) -> None:
    from crs.kb.embeddings import default_embedder

    graph, _ = load_knowledge(Settings())
    assert OfflineNLU(graph, default_embedder()).understand(text, NLUContext()).accept_attributes == expected


def test_a_correction_goes_back_and_says_what_was_meant(rec: Recommender) -> None:
    rec.chat("jo", "s", "rock")
    rec.chat("jo", "s", "no wait, I meant jazz")
    assert rec.state("jo", "s").accepted == ("genre:jazz",)  # jazz instead of rock, not as well
    asked = rec.chat("ka", "s", "some jazz")
    rec.chat("ka", "s", "yes")
    fixed = rec.chat("ka", "s", "oops, I meant no")
    state = rec.state("ka", "s")
    assert asked.question.attribute in state.rejected and asked.question.attribute not in state.accepted
    assert fixed.action in ("ask", "recommend")
    rec.chat("lu", "s", "some jazz")
    shown = rec.chat("lu", "s", "just recommend something")
    chosen = rec.chat("lu", "s", "I meant the second one")  # about what is on screen: a choice, no going back
    assert chosen.action == "accepted" and rec.state("lu", "s").accepted_item == shown.recommendations[1].id


def test_asking_what_there_is_lists_it_and_keeps_the_question_open(rec: Recommender) -> None:
    asked = rec.chat("mo", "s", "some rock")
    listed = rec.chat("mo", "s", "what moods can I choose?")
    assert listed.action == "options" and "melancholic" in listed.text and "energetic" in listed.text
    assert listed.open_question == asked.question  # still answerable
    genres = rec.chat("mo", "s", "What genres do you have?")
    assert genres.text.startswith("For genre, I know pop, rock, jazz") and "more" in genres.text
    helped = rec.chat("mo", "s", "help")
    assert "go back" in helped.text and "just recommend something" in helped.text
    assert rec.chat("mo", "s", "calm").action in ("ask", "recommend")
    assert "mood:calm" in rec.state("mo", "s").accepted


def test_a_request_not_understood_is_not_taken_for_a_hello(rec: Recommender) -> None:
    reply = rec.chat("na", "s", "hey, looking for something to listen to while cooking dinner")
    assert reply.action == "clarify" and "yes or no" not in reply.text  # no question is open
    assert rec.chat("ob", "s", "hi there").action == "greet"
