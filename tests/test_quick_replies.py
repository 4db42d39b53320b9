"""The demo's quick replies: which buttons a reply gets, and that each one is a valid action."""

from __future__ import annotations

from pathlib import Path

from crs import Recommender, Settings
from crs.language.reply import Question, RecommendedItem, Reply
from crs.ui.web import MAX_QUICK_REPLIES, quick_replies


def _labels(reply: Reply) -> list[str]:
    return [q.label for q in quick_replies(reply)]


def test_a_question_gets_yes_no_the_other_values_and_just_recommend() -> None:
    q = Question(attribute="decade:1960s", facet="decade", value="1960s",
                 options=["1960s", "1970s", "1950s"], option_ids=["decade:1960s", "decade:1970s", "decade:1950s"])
    replies = quick_replies(Reply(text="60s?", action="ask", question=q))
    assert [r.label for r in replies] == ["Yes", "No", "1970s", "1950s", "Just recommend"]
    assert replies[2].action == {"type": "attributes", "accept": ["decade:1970s"]}
    many = q.model_copy(update={"options": [f"v{i}" for i in range(9)],
                                "option_ids": [f"decade:v{i}" for i in range(9)]})
    labels = _labels(Reply(text="?", action="ask", question=many))
    assert len(labels) == MAX_QUICK_REPLIES and labels[-1] == "Just recommend"


def test_a_list_gets_one_button_per_item_show_me_more_and_none_of_these() -> None:
    recs = [RecommendedItem(id=f"i{k}", name=f"Item {k}", why="") for k in range(3)]
    replies = quick_replies(Reply(text="Try these.", action="recommend", recommendations=recs))
    assert [r.label for r in replies] == ["Item 0", "Item 1", "Item 2", "Show me more", "None of these"]
    assert replies[0].action == {"type": "accept_item", "item_id": "i0"}
    assert replies[-2].action == {"type": "reject_items", "item_ids": ["i0", "i1", "i2"], "show_more": True}
    assert replies[-1].action == {"type": "reject_items", "item_ids": ["i0", "i1", "i2"]}
    assert _labels(Reply(text="Enjoy!", action="accepted")) == ["Start over"]
    assert _labels(Reply(text="Say that again?", action="error")) == []


def test_every_quick_reply_is_an_action_the_recommender_takes(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False, memory=False))  # bundled
    first = rec.chat("ann", "s", "something from the 1960s")
    assert first.action == "ask" and len(quick_replies(first)) >= 4
    for n, choice in enumerate(quick_replies(first)):  # each button, from the same starting point
        rec.chat("ann", f"s{n}", "something from the 1960s")
        assert rec.act("ann", f"s{n}", choice.action).action in ("ask", "recommend", "clarify")
    listed = rec.act("ann", "s", {"type": "recommend_now"})
    more = next(c for c in quick_replies(listed) if c.label == "Show me more")
    rec.chat("ann", "t", "something from the 1960s")
    first_list = rec.act("ann", "t", {"type": "recommend_now"})
    next_list = rec.act("ann", "t", {**more.action, "item_ids": [r.id for r in first_list.recommendations]})
    assert next_list.action == "recommend"  # the next list at once, none of the ones turned down
    assert not {r.id for r in next_list.recommendations} & {r.id for r in first_list.recommendations}
    pick = quick_replies(listed)[0]
    assert rec.act("ann", "s", pick.action).action == "accepted"
    state = rec.state("ann", "s")
    assert state is not None and state.accepted_item == pick.action["item_id"]


def test_buttons_stay_after_a_clarification_or_an_explanation(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False, memory=False))
    asked = rec.chat("ann", "s", "something from the 1960s")
    puzzled = rec.chat("ann", "s", "hmm, blorp")  # not understood: the question is still open
    assert puzzled.action != "ask"
    assert _labels(puzzled) == _labels(asked)
    listed = rec.act("ann", "s", {"type": "recommend_now"})
    explained = rec.chat("ann", "s", "why the first one?")
    assert explained.action == "explain"
    assert _labels(explained) == _labels(listed)
    pick = quick_replies(explained)[1]
    assert rec.act("ann", "s", pick.action).action == "accepted"  # a kept button still works
