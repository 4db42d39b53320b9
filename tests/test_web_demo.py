"""The Gradio demo served on loopback and driven by a real headless Chromium.

Screenshots of each test are written under ``test-artifacts/web/`` (gitignored; set
``CRS_TEST_ARTIFACTS`` to put them elsewhere) and their folder is printed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crs import Recommender, Settings
from tests.conftest import missing

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("CRS_TEST_ARTIFACTS", REPO / "test-artifacts")) / "web"
BOT = "[data-testid='bot']"
USER = "[data-testid='user']"
WAIT = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shoot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def serve(state: Path, port: int) -> tuple[Any, Recommender]:
    from crs.ui.web import launch

    # as `crs demo` builds it: the embedded memory store in a process of its own
    rec = Recommender.from_settings(Settings(state_dir=state, memory_process=True))
    return launch(rec, port=port, block=False), rec


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Recommender]]:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    port = free_port()
    demo, rec = serve(tmp_path_factory.mktemp("state"), port)
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


def _context(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1280, "height": 1000})


def _open(ctx: Any, url: str) -> Any:
    """A new tab on the demo, once the bot has greeted."""
    page = ctx.new_page()
    page.goto(url, wait_until="load")
    _wait_bots(page, 1)
    return page


def _wait_bots(page: Any, n: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll(\"{BOT}\").length >= {n}", timeout=WAIT)


def _say(page: Any, text: str, until: str | None = None) -> None:
    """Type ``text`` and send it; wait for the reply (and for the quick reply ``until``, if given)."""
    before = page.locator(BOT).count()
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(
        f"() => document.querySelectorAll(\"{BOT}\").length > {before} && "
        "!document.querySelector('#message textarea').value", timeout=WAIT)
    if until is not None:
        page.get_by_role("button", name=until, exact=True).wait_for(timeout=WAIT)


def _tap(page: Any, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()


def _threads(rec: Recommender) -> list[tuple[str, str]]:
    out = set()
    for thread in {c.config["configurable"]["thread_id"] for c in rec.checkpointer.list(None)}:
        size, rest = thread.split(":", 1)  # "len:user:session"
        out.add((rest[: int(size)], rest[int(size) + 1:]))
    return sorted(out)


def _conversation(rec: Recommender, message: str) -> tuple[str, str]:
    """(user, session) of the one conversation in which the person said ``message``."""
    found = [(u, s) for u, s in _threads(rec)
             if any(t["role"] == "user" and t["content"] == message for t in rec.transcript(u, s))]
    assert len(found) == 1, found
    return found[0]


def _choose_first_card(page: Any) -> str:
    """Open a list, tap its first card; returns the chosen item's id."""
    page.locator("#cards .card, button.quick-reply:visible:text-is('Just recommend')").first.wait_for(timeout=WAIT)
    if page.get_by_role("button", name="Just recommend", exact=True).is_visible():  # asked, not listed yet
        _tap(page, "Just recommend")
    card = page.locator("#cards .card").first
    card.wait_for(timeout=WAIT)
    item = card.get_attribute("data-item")
    card.click()
    page.get_by_role("button", name="Start over", exact=True).wait_for(timeout=WAIT)
    return str(item)


def test_api_endpoint_answers_and_refuses_a_malformed_user(served: tuple[str, Recommender]) -> None:
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
    me = "web-" + "5" * 24
    client.predict("calm jazz please", "api-s2", me, api_name="/chat")
    assert _conversation(rec, "calm jazz please") == (me, "api-s2")
    before = _threads(rec)
    for bad in ("alice", "web-123", "WEB-" + "5" * 24):
        with pytest.raises(Exception, match=r"user must be 'web-' followed by 24 lowercase hex digits"):
            client.predict("hello there", "api-s3", bad, api_name="/chat")
    assert _threads(rec) == before  # refused: no conversation was started for anyone


def test_a_whole_conversation_in_the_browser(served: tuple[str, Recommender], browser: Any) -> None:
    url, rec = served
    ctx = _context(browser)
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    page = _open(ctx, url)
    assert page.locator(USER).count() == 0  # the bot speaks first
    assert f"{rec.graph.n_items} candidates left" in page.locator("#reasoning").inner_text()
    shoot(page, "01-greeting")

    box = page.locator("#message textarea")
    for empty in ("", "   "):  # an empty message is not sent
        box.fill(empty)
        box.press("Enter")
    page.wait_for_timeout(1_000)
    assert page.locator(USER).count() == 0 and page.locator(BOT).count() == 1

    _say(page, "some jazz please", until="Just recommend")
    user, session = _conversation(rec, "some jazz please")
    assert [t["content"] for t in rec.transcript(user, session) if t["role"] == "user"][1:] == ["some jazz please"]
    asked = page.locator("button.quick-reply:visible").all_inner_texts()
    assert asked[:2] == ["Yes", "No"] and asked[-1] == "Just recommend"
    question = rec.state(user, session).question  # type: ignore[union-attr]
    assert question is not None  # the panel shows what is being asked
    assert page.locator("#reasoning .chip-ask").inner_text() == rec.graph.attributes[
        rec.graph.attr_index[question]].value
    _tap(page, "Yes")  # a quick reply: accepts the asked value
    _wait_bots(page, 3)
    page.get_by_role("button", name="Just recommend", exact=True).wait_for(timeout=WAIT)
    state = rec.state(user, session)
    assert state is not None and len(state.accepted) == 2 and state.accepted[0] == "genre:jazz"
    _tap(page, "Just recommend")
    page.locator("#cards .card").first.wait_for(timeout=WAIT)
    shoot(page, "02-cards-and-reasoning")

    cards = page.locator("#cards .card")
    assert cards.count() == 3
    state = rec.state(user, session)
    assert state is not None
    values = [rec.graph.attributes[rec.graph.attr_index[a]].value for a in state.accepted]
    for k in range(3):  # every card: name, chips, reason, and the path from the accepted attributes
        card = cards.nth(k)
        item = card.get_attribute("data-item")
        index = rec.graph.item_index[str(item)]
        assert card.locator(".card-name").inner_text() == rec.graph.item_names[index]
        assert item == state.recommended[k]
        assert card.locator(".chip").count() >= 2 and card.locator(".card-why").inner_text()
        path = card.locator(".card-path").inner_text()
        assert path.startswith(values[0]) and path.endswith(rec.graph.item_names[index])
        if rec.graph.descriptions[index]:
            assert card.locator(".card-description").inner_text() == rec.graph.descriptions[index]
    panel = page.locator("#reasoning")
    assert panel.locator(".chip-yes").all_inner_texts() == values
    left = int(re.search(r"(\d+) candidates? left", panel.inner_text()).group(1))  # type: ignore[union-attr]
    assert left == int(rec.graph.items_with([rec.graph.attr_index[a] for a in state.accepted]).sum())
    assert panel.locator("svg.subgraph-svg").count() == 1
    assert panel.locator("svg.subgraph-svg path").count() > 20  # nodes, links and letters are drawn

    page.locator("#persona input").click()  # change persona mid-conversation: the talk goes on
    page.get_by_role("option", name=re.compile(r"\(playful\)")).click()
    page.get_by_text("playful hype-friend", exact=False).wait_for(timeout=WAIT)
    chosen = cards.first.get_attribute("data-item")
    name = cards.first.locator(".card-name").inner_text()
    cards.first.click()  # tapping a card chooses it
    page.get_by_role("button", name="Start over", exact=True).wait_for(timeout=WAIT)
    assert page.locator(USER).last.inner_text().strip() == name
    said = page.locator(BOT).last.inner_text()
    assert name in said and re.search(r"Woohoo|Yesss", said)  # in the playful voice
    state = rec.state(user, session)
    assert state is not None and state.accepted_item == chosen
    assert "item you chose" in panel.inner_text()
    shoot(page, "03-chosen-playful")

    page.locator("#new-conversation").click()  # restart: a new session, greeted again
    page.wait_for_function(f"() => document.querySelectorAll(\"{USER}\").length == 0", timeout=WAIT)
    _wait_bots(page, 1)
    assert page.locator(BOT).count() == 1 and page.locator("#cards .card").count() == 0
    assert "nothing yet" in panel.inner_text()
    _say(page, "something from the 1980s")
    again = _conversation(rec, "something from the 1980s")
    assert again[0] == user and again[1] != session
    shoot(page, "04-new-conversation")

    page.locator("#chat button[aria-label='Clear']").click()  # the chat's own clear button also restarts
    page.wait_for_function(f"() => document.querySelectorAll(\"{USER}\").length == 0", timeout=WAIT)
    _wait_bots(page, 1)
    sessions = {s for u, s in _threads(rec) if u == user}
    assert len(sessions) == 3  # the first, the one after "New conversation", the one after clearing
    offsite = sorted({u for u in requests if not u.startswith(url) and not u.startswith(("data:", "blob:"))})
    assert offsite == []  # the page asked no host but the local server
    ctx.close()


def test_memory_panel_lists_deletes_and_forgets(served: tuple[str, Recommender], browser: Any) -> None:
    url, rec = served
    ctx = _context(browser)
    page = _open(ctx, url)
    _say(page, "calm jazz from the 1950s")
    _choose_first_card(page)  # choosing ends the session: it is reflected on
    user, _ = _conversation(rec, "calm jazz from the 1950s")
    page.locator("#memories .memory").first.wait_for(timeout=WAIT)
    remembered = rec.memories(user)
    rows = page.locator("#memories .memory")
    assert rows.count() == len(remembered) >= 1
    assert rows.locator(".memory-text").all_inner_texts() == [m.text for m in remembered]
    shoot(page, "05-memories")

    second = _open(ctx, url)  # another tab of the same browser: the same person, the same memories
    second.locator("#memories .memory").first.wait_for(timeout=WAIT)
    assert second.locator("#memories .memory-text").all_inner_texts() == [m.text for m in remembered]
    second.close()
    stranger_ctx = _context(browser)  # another browser is another person: it sees nothing of this one
    stranger = _open(stranger_ctx, url)
    assert "Nothing is remembered" in stranger.locator("#memories").inner_text()
    stranger_ctx.close()

    victim = remembered[0]
    page.locator(f"#memories [data-memory='{victim.id}']").click()
    page.locator(f"#memories [data-memory-row='{victim.id}']").wait_for(state="detached", timeout=WAIT)
    assert [m.id for m in rec.memories(user)] == [m.id for m in remembered[1:]]
    assert page.locator("#memories .memory").count() == len(remembered) - 1

    page.locator("#forget-me").click()
    page.locator("#forget-cancel").click()  # thought better of it: nothing happens
    page.locator("#forget-confirm").wait_for(state="hidden", timeout=WAIT)
    assert [m.id for m in rec.memories(user)] == [m.id for m in remembered[1:]]
    page.locator("#forget-me").click()
    page.locator("#forget-confirm").click()
    page.get_by_text("Everything about you was forgotten").wait_for(timeout=WAIT)
    assert "Nothing is remembered" in page.locator("#memories").inner_text()
    assert rec.memories(user) == [] and not [u for u, _ in _threads(rec) if u == user]
    _say(page, "some rock please")  # the page goes on, as a new person
    fresh, _ = _conversation(rec, "some rock please")
    assert fresh.startswith("web-") and fresh != user
    shoot(page, "06-forgotten")
    ctx.close()


def test_quick_replies_answer_and_choose_in_the_browser(served: tuple[str, Recommender], browser: Any) -> None:
    url, rec = served
    ctx = _context(browser)
    page = _open(ctx, url)
    _say(page, "something from the 1960s", until="Just recommend")
    quick = page.locator("button.quick-reply:visible")
    asked = [b.strip() for b in quick.all_inner_texts()]
    assert asked[:2] == ["Yes", "No"] and asked[-1] == "Just recommend"
    _tap(page, "Just recommend")
    page.get_by_role("button", name="None of these", exact=True).wait_for(timeout=WAIT)
    labels = [b.strip() for b in quick.all_inner_texts()]
    assert labels[-2:] == ["Show me more", "None of these"]
    first = labels[:-2]
    assert len(first) == 3  # one button per recommended item (top_k = 3)
    _tap(page, "Show me more")  # the next list at once
    page.wait_for_function("(first) => { const b = [...document.querySelectorAll('button.quick-reply')]"
                           ".filter(e => e.offsetParent !== null);"
                           " return b.length && b[0].innerText.trim() !== first; }", arg=first[0], timeout=WAIT)
    offered = [b.strip() for b in quick.all_inner_texts()][:-2]
    assert offered and not set(offered) & set(first)
    _tap(page, offered[0])
    page.get_by_role("button", name="Start over", exact=True).wait_for(timeout=WAIT)
    assert page.locator(USER).last.inner_text().strip() == offered[0]  # the tap shows as the person's message
    user, session = _conversation(rec, "something from the 1960s")
    state = rec.state(user, session)
    assert state is not None and state.accepted_item is not None
    assert rec.graph.item_names[rec.graph.item_index[state.accepted_item]] == offered[0]
    ctx.close()


def test_a_browser_keeps_its_identity_across_a_server_restart(browser: Any, tmp_path: Path) -> None:
    state, port = tmp_path / "state", free_port()
    url = f"http://127.0.0.1:{port}/"
    demo, rec = serve(state, port)
    try:
        ctx = _context(browser)
        page = _open(ctx, url)
        _say(page, "calm jazz from the 1950s")
        _choose_first_card(page)
        user, _ = _conversation(rec, "calm jazz from the 1950s")
        page.locator("#memories .memory").first.wait_for(timeout=WAIT)
        remembered = [m.id for m in rec.memories(user)]
        page.close()
    finally:
        demo.close()
        rec.close()  # as the process ending would: one process per embedded store at a time
    assert stat.S_IMODE((state / "web-secret").stat().st_mode) == 0o600

    demo, rec = serve(state, port)  # a new server on the same state folder and address
    try:
        page = _open(ctx, url)
        page.locator("#memories .memory").first.wait_for(timeout=WAIT)
        assert [m.id for m in rec.memories(user)] == remembered
        assert page.locator("#memories .memory").count() == len(remembered)  # the same person
        _say(page, "some rock please")
        assert _conversation(rec, "some rock please")[0] == user
        shoot(page, "07-after-restart")
        other = _context(browser)
        newcomer = _open(other, url)
        assert "Nothing is remembered" in newcomer.locator("#memories").inner_text()
        other.close()
        ctx.close()
    finally:
        demo.close()


def test_a_persona_picked_before_speaking_greets_again_in_its_voice(served: tuple[str, Recommender],
                                                                    browser: Any) -> None:
    url, rec = served
    ctx = _context(browser)
    page = _open(ctx, url)
    first = page.locator(BOT).first.inner_text()
    assert first.startswith(("Hi!", "Hello!"))  # the default persona
    before = set(_threads(rec))
    page.locator("#persona input").click()
    page.get_by_role("option", name=re.compile(r"\(expert\)")).click()
    page.wait_for_function(
        f"() => /criteria/i.test(document.querySelector(\"{BOT}\")?.innerText || '')", timeout=WAIT)
    assert page.locator(BOT).count() == 1 and page.locator(USER).count() == 0
    after = set(_threads(rec))
    assert len(after - before) == 1 and len(before - after) == 1  # the unanswered greeting is replaced
    _say(page, "some jazz please")
    assert re.search(r"\? ?(\(y/n\)|y/n)", page.locator(BOT).last.inner_text())  # the expert's terse question
    ctx.close()
