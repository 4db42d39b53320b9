"""A person can see and erase what is remembered, by asking in the conversation and through the API."""

from __future__ import annotations

from pathlib import Path

from crs import Recommender, Settings


def test_what_do_you_remember_forget_that_and_forget_me_with_confirmation(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    rec.chat("ann", "s1", "I love jazz, I'm vegetarian")
    rec.chat("ann", "s1", "I can't stand metal")
    rec.chat("bob", "b1", "I love rock")

    seen = rec.chat("ann", "s1", "What do you remember about me?")
    assert seen.action == "memories"
    assert "You said you love jazz." in seen.text and "You said you're vegetarian." in seen.text
    assert "You said you can't stand metal." in seen.text and "rock" not in seen.text  # never bob's

    gone = rec.chat("ann", "s1", "forget that I'm vegetarian")
    assert gone.action == "forget" and "vegetarian" in gone.text
    assert not any("vegetarian" in m.text for m in rec.memories("ann"))
    assert "vegetarian" not in rec.chat("ann", "s1", "what do you remember about me?").text
    assert rec.chat("ann", "s1", "forget that I like polka").text.startswith("I don't have anything like that")
    rec.chat("ann", "s1", "forget that I love jazz")
    assert dict(rec.memory.prior("ann")).get("genre:jazz", 0.0) <= 0  # asking to forget is not a statement

    asked = rec.chat("ann", "s2", "forget everything about me")
    assert asked.action == "confirm_forget" and rec.memories("ann")  # nothing deleted before a yes
    kept = rec.chat("ann", "s2", "no")
    assert kept.action == "forget" and rec.memories("ann")
    rec.chat("ann", "s2", "please forget everything about me")
    done = rec.chat("ann", "s2", "yes")
    assert done.action == "forgotten"
    assert rec.memories("ann") == [] and rec.state("ann", "s1") is None and rec.state("ann", "s2") is None
    assert rec.memories("bob")  # only hers
    fresh = rec.chat("ann", "s3", "what do you remember about me?")
    assert fresh.text == "I don't remember anything about you yet."


def test_the_python_api_lists_deletes_one_and_forgets_all(tmp_path: Path) -> None:
    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    rec.chat("ann", "s1", "I love jazz. I'm done with metal")
    memories = [m for m in rec.memories("ann") if m.kind != "session_summary"]
    assert {m.text for m in memories} == {"Loves jazz.", "Done with metal."}
    assert all(m.source == "stated" for m in memories)
    metal = next(m for m in memories if "metal" in m.text)
    assert rec.forget_memory("ann", metal.id) and rec.memory.avoid("ann") == []
    left = len(rec.memories("ann"))
    report = rec.forget("ann")
    assert report["memories"] == left and report["threads"] == 1 and "not_deleted" not in report


def test_the_live_conversation_retrieves_through_the_reranker_which_learns_and_is_forgotten(tmp_path: Path) -> None:
    import numpy as np

    rec = Recommender.from_settings(Settings(state_dir=tmp_path, embeddings=False))
    rec.chat("ann", "s1", "I love jazz. I'm vegetarian")
    path = rec.memory.rerankers.path("ann")
    assert path is not None and not path.exists()  # nothing learned before an outcome

    def session(name: str) -> None:
        listed = rec.chat("ann", name, "something calm")
        if listed.action != "recommend":
            listed = rec.act("ann", name, {"type": "recommend_now"})
        rec.act("ann", name, {"type": "accept_item", "item_id": listed.recommendations[0].id})
        rec.memory.flush("ann")  # the credit is written in the background; the file is read directly here

    session("s2")  # recall retrieved the memories; the accepted item credits those it used
    assert path.is_file()
    with np.load(path) as data:
        before = int(data["meta"][1])  # updates so far
    session("s3")
    with np.load(path) as data:
        assert int(data["meta"][1]) > before >= 1  # it went on learning from each outcome
    assert not rec.memory.rerankers.path("bob").exists()
    rec.forget("ann")
    assert not path.exists()
