"""The Gradio demo served on loopback and driven by a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crs import Recommender, Settings
from tests.conftest import missing

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Recommender]]:
    from crs.ui.web import launch

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    rec = Recommender.from_settings(Settings(state_dir=tmp_path_factory.mktemp("state")))
    port = free_port()
    demo = launch(rec, port=port, block=False)
    yield f"http://127.0.0.1:{port}/", rec
    demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        missing("BROWSER", "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
        )
        yield b
        b.close()


def test_api_endpoint_answers_on_loopback(served: tuple[str, Recommender]) -> None:
    from gradio_client import Client

    url, rec = served
    client = Client(url, verbose=False)
    reply = client.predict("jazz from the 1960s", api_name="/chat")
    assert isinstance(reply, str) and reply.endswith(("?", ".")) and len(reply) > 10
    first = client.predict("some jazz", "api-s1", api_name="/chat")
    client.predict("just recommend something", "api-s1", api_name="/chat")  # the same conversation goes on
    user, session = _conversation(rec, "some jazz")
    assert session == "api-s1" and first and [t["content"] for t in rec.transcript(user, session)
                                              if t["role"] == "user"] == ["some jazz", "just recommend something"]


def test_a_person_can_chat_in_the_browser(served: tuple[str, Recommender], browser: Any, tmp_path: Path) -> None:
    url, rec = served
    page, box = _open_and_say(browser, url, "some jazz please")
    bots = page.locator("[data-testid='bot']")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"bot\"]').length >= 1",
                           timeout=20_000)
    first = bots.last.inner_text()
    box.fill("just recommend something")
    box.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"bot\"]').length >= 2",
                           timeout=20_000)
    page.screenshot(path=str(tmp_path / "demo.png"))
    second = bots.last.inner_text()
    user, session = _conversation(rec, "some jazz please")
    state = rec.state(user, session)
    assert "?" in first  # a question about an attribute
    assert state is not None and state.accepted == ("genre:jazz",)
    assert "matches jazz" in second  # recommendations explained by their path
    assert second.count("matches jazz") == 3
    page.close()


def _open_and_say(browser: Any, url: str, text: str) -> tuple[Any, Any]:
    """A new tab on the demo that has sent ``text``; returns the page and its message box."""
    page = browser.new_page()
    page.goto(url, wait_until="load")
    box = page.get_by_role("textbox").first
    box.wait_for(timeout=30_000)
    box.fill(text)
    box.press("Enter")
    return page, box


def _conversation(rec: Recommender, first_message: str) -> tuple[str, str]:
    """(user, session) of the one checkpointed conversation that opened with ``first_message``."""
    found = []
    for thread in {c.config["configurable"]["thread_id"] for c in rec.checkpointer.list(None)}:
        size, rest = thread.split(":", 1)  # "len:user:session"
        user, session = rest[: int(size)], rest[int(size) + 1 :]
        transcript = rec.transcript(user, session)
        if transcript and transcript[0]["content"] == first_message:
            found.append((user, session))
    assert len(found) == 1, found
    return found[0]


def test_each_browser_is_a_user_remembered_across_tabs(served: tuple[str, Recommender], browser: Any) -> None:
    url, rec = served
    ann = browser.new_context()
    page, _ = _open_and_say(ann, url, "calm jazz from the 1950s")
    page.get_by_role("button", name="Just recommend", exact=True).click()
    page.get_by_role("button", name="None of these", exact=True).wait_for(timeout=20_000)
    chosen = page.locator("button.quick-reply:visible").first.inner_text().strip()
    page.get_by_role("button", name=chosen, exact=True).click()  # choosing ends the session: reflected
    page.get_by_role("button", name="Start over", exact=True).wait_for(timeout=20_000)
    user, _ = _conversation(rec, "calm jazz from the 1950s")
    assert user.startswith("web-") and "genre:jazz" in rec.memory.profile(user).likes  # type: ignore[union-attr]
    again, _ = _open_and_say(ann, url, "something new")  # a second tab of the same browser
    bob = browser.new_context()
    other, _ = _open_and_say(bob, url, "something else")
    for tab in (again, other):
        tab.wait_for_function("() => document.querySelectorAll('[data-testid=\"bot\"]').length >= 1",
                              timeout=20_000)
    assert _conversation(rec, "something new")[0] == user
    stranger = _conversation(rec, "something else")[0]
    assert stranger.startswith("web-") and stranger != user
    assert rec.memory.profile(stranger).is_empty  # type: ignore[union-attr]
    ann.close()
    bob.close()


def test_quick_replies_answer_and_choose_in_the_browser(served: tuple[str, Recommender], browser: Any) -> None:
    url, rec = served
    page, _ = _open_and_say(browser, url, "something from the 1960s")
    quick = page.locator("button.quick-reply:visible")
    page.get_by_role("button", name="Just recommend", exact=True).wait_for(timeout=20_000)
    asked = [b.strip() for b in quick.all_inner_texts()]
    assert asked[:2] == ["Yes", "No"] and asked[-1] == "Just recommend"
    page.get_by_role("button", name="Just recommend", exact=True).click()
    page.get_by_role("button", name="None of these", exact=True).wait_for(timeout=20_000)
    offered = [b.strip() for b in quick.all_inner_texts()][:-1]
    assert len(offered) == 3  # one button per recommended item (top_k = 3)
    page.get_by_role("button", name=offered[0], exact=True).click()
    page.get_by_role("button", name="Start over", exact=True).wait_for(timeout=20_000)
    users = page.locator("[data-testid='user']")
    assert users.last.inner_text().strip() == offered[0]  # the tap shows as the person's message
    user, session = _conversation(rec, "something from the 1960s")
    state = rec.state(user, session)
    assert state is not None and state.accepted_item is not None
    assert rec.graph.item_names[rec.graph.item_index[state.accepted_item]] == offered[0]
    page.close()
