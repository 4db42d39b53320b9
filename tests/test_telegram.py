"""The Telegram adapter in a real ``crs serve --telegram`` process, talking to a fake Bot API on loopback.

Updates are Telegram's own webhook payloads; each test checks the exact Bot API calls they cause.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_telegram import BOT, FakeBotApi, fake_bot_api
from tests.live_server import crs_serve, free_port

TOKEN = "123456:TEST-token_for-the-fake"
SECRET = "webhook-secret_42"
API_TOKEN = "acme-token-123"
_ids = count(500_000)


class Bot:
    def __init__(self, url: str, api: FakeBotApi) -> None:
        self.url, self.api = url, api

    def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return httpx.post(f"{self.url}/telegram/webhook", json=update, headers=headers, timeout=60)

    def send(self, user: int, text: str, **extra: Any) -> list[tuple[str, dict[str, Any]]]:
        response = self.post(message_update(user, text, **extra))
        assert response.status_code == 200, response.text
        return self.api.take()

    def tap(self, user: int, data: str, message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        response = self.post(callback_update(user, data, message))
        assert response.status_code == 200, response.text
        return self.api.take()


def person(user: int) -> dict[str, Any]:
    return {"id": user, "is_bot": False, "first_name": f"User{user}", "language_code": "en"}


def message_update(user: int, text: str, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": next(_ids), "from": person(user),
                               "chat": {"id": user, "first_name": f"User{user}", "type": "private"},
                               "date": 1764460800, **extra}
    if text:
        message["text"] = text
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    return {"update_id": next(_ids), "message": message}


def callback_update(user: int, data: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"update_id": next(_ids), "callback_query": {
        "id": str(next(_ids)), "from": person(user), "message": message,
        "chat_instance": "-8052413405519230512", "data": data}}


def sent(calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The one sendMessage among the calls, as the message the bot's chat now shows."""
    (params,) = [p for method, p in calls if method == "sendMessage"]
    message = {"message_id": next(_ids), "from": BOT, "date": 1764460801,
               "chat": {"id": int(params["chat_id"]), "type": "private"}, "text": params["text"]}
    if "reply_markup" in params:
        message["reply_markup"] = params["reply_markup"]
    return message


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    home = tmp_path_factory.mktemp("telegram")
    with fake_bot_api(TOKEN) as (base_url, api):
        settings = home / "crs.toml"
        settings.write_text(f'[serve.telegram]\nbase_url = "{base_url}"\n', "utf-8")
        env = {"CRS_API_TOKENS": f"acme:{API_TOKEN}", "CRS_TELEGRAM_TOKEN": TOKEN, "CRS_TELEGRAM_SECRET": SECRET}
        with crs_serve(home, "--settings", str(settings), "--telegram", env=env) as (url, _):
            # the command line checked the token, then the app introduced itself: nothing else yet
            assert [m for m, _ in api.calls] == ["getMe", "getMe"]
            api.take()
            yield Bot(url, api)


def test_updates_without_the_secret_header_are_refused_and_reach_nothing(bot: Bot) -> None:
    assert bot.post(message_update(1, "jazz"), secret=None).status_code == 401
    assert bot.post(message_update(1, "jazz"), secret="guess").status_code == 401
    assert bot.api.take() == []
    bad = httpx.post(f"{bot.url}/telegram/webhook", content=b"{not json",
                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"})
    assert bad.status_code == 400 and bot.api.take() == []
    # the webhook is no part of the public API schema
    assert "/telegram/webhook" not in httpx.get(f"{bot.url}/openapi.json").json()["paths"]


def test_a_whole_conversation_with_buttons(bot: Bot) -> None:
    calls = bot.send(777, "/start")
    assert [m for m, _ in calls] == ["sendMessage"]
    assert calls[0][1]["chat_id"] == "777" and "reply_markup" not in calls[0][1]
    assert "looking for" in calls[0][1]["text"] or "mood" in calls[0][1]["text"]

    question = sent(bot.send(777, "I love jazz"))
    labels = buttons(question)
    turn = labels[0][1].split(":")[0]
    assert labels[:2] == [("Yes", f"{turn}:y"), ("No", f"{turn}:n")]
    assert labels[-1] == ("Just recommend", f"{turn}:now")
    assert all(len(data.encode()) <= 64 for _, data in labels)

    tapped = bot.tap(777, f"{turn}:now", question)
    assert [m for m, _ in tapped] == ["answerCallbackQuery", "editMessageReplyMarkup", "sendMessage"]
    assert "text" not in tapped[0][1]  # a plain acknowledgement
    assert tapped[1][1]["message_id"] == str(question["message_id"])
    listing = sent(tapped)
    items = buttons(listing)
    assert items[-1][0] == "None of these" and items[-1][1].endswith(":none")
    assert items[-2][0] == "Show me more" and items[-2][1].endswith(":more")
    assert [data.split(":")[1] for _, data in items[:-2]] == [f"i{i}" for i in range(len(items) - 2)]

    # a button of an earlier turn is answered, never applied
    stale = bot.tap(777, f"{turn}:y", question)
    assert stale == [("answerCallbackQuery", {"callback_query_id": stale[0][1]["callback_query_id"],
                                               "text": "That choice is no longer open."})]

    first_name, first_data = items[0]
    chosen = sent(bot.tap(777, first_data, listing))
    assert first_name in chosen["text"] and "Enjoy" in chosen["text"]
    assert [label for label, _ in buttons(chosen)] == ["Start over"]


def test_buttons_stay_under_a_clarification_and_still_answer_the_open_question(bot: Bot) -> None:
    bot.send(444, "/start")
    question = sent(bot.send(444, "jazz"))
    unclear = sent(bot.send(444, "qwzx blorp"))
    assert unclear["text"] != question["text"]
    labels = buttons(unclear)
    assert [label for label, _ in labels[:2]] == ["Yes", "No"]
    answered = sent(bot.tap(444, labels[0][1], unclear))  # "Yes" answers the question still open
    assert answered["text"] not in (question["text"], unclear["text"])


def test_memories_and_forget_commands(bot: Bot) -> None:
    bot.send(888, "/start")
    bot.send(888, "I love jazz")
    listing = sent(bot.send(888, "just recommend something"))
    bot.tap(888, buttons(listing)[0][1], listing)  # a natural end: the session is reflected on

    shown = sent(bot.send(888, "/memories"))
    assert shown["text"].startswith("Here is what I remember:") and "jazz" in shown["text"].lower()
    forget_one = buttons(shown)[0]
    assert forget_one[0] == "Forget 1" and forget_one[1].startswith("fm:")
    calls = bot.tap(888, forget_one[1], shown)
    assert calls[0] == ("answerCallbackQuery", {"callback_query_id": calls[0][1]["callback_query_id"],
                                                 "text": "Forgotten."})
    assert [m for m, _ in calls] == ["answerCallbackQuery", "editMessageReplyMarkup"]

    # another Telegram user, and an API tenant's user of the same number, see none of it
    assert sent(bot.send(999, "/memories"))["text"] == "I don't remember anything about you yet."
    api = httpx.get(f"{bot.url}/v1/users/tg888/memories", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert api.status_code == 200 and api.json() == []

    done = sent(bot.send(888, "/forget"))["text"]
    assert done.startswith("Done: I forgot everything about you") and "1 conversations" in done
    assert sent(bot.send(888, "/memories"))["text"] == "I don't remember anything about you yet."
    assert sent(bot.send(888, "/forget"))["text"] == "I had nothing stored about you."


def test_start_begins_a_new_conversation_in_the_chat(bot: Bot) -> None:
    bot.send(555, "/start")
    question = sent(bot.send(555, "rock"))
    turn = buttons(question)[0][1].split(":")[0]
    sent(bot.send(555, "/start"))
    # the old question's buttons belong to a conversation that is gone
    assert bot.tap(555, f"{turn}:y", question)[0][1]["text"] == "That choice is no longer open."
    fresh = sent(bot.send(555, "jazz"))
    assert buttons(fresh)[0][1].startswith("2:")  # turn 1 was the greeting of the new conversation


def test_a_wrong_bot_token_stops_the_server_with_one_line(tmp_path: Path) -> None:
    with fake_bot_api(TOKEN) as (base_url, _):
        settings = tmp_path / "crs.toml"
        settings.write_text(f'[serve.telegram]\nbase_url = "{base_url}"\n', "utf-8")
        env = {**os.environ, "HOME": str(tmp_path), "CRS_HOME": str(tmp_path / "crs"),
               "CRS_API_TOKENS": f"acme:{API_TOKEN}", "CRS_TELEGRAM_TOKEN": "999:wrong", "CRS_TELEGRAM_SECRET": SECRET}
        out = subprocess.run([sys.executable, "-m", "crs.cli", "serve", "--telegram", "--settings", str(settings),
                              "--port", str(free_port())], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == "crs: error: Telegram refused the bot token (CRS_TELEGRAM_TOKEN); check it with " \
                                 "@BotFather"


def test_non_text_messages_get_a_hint(bot: Bot) -> None:
    sticker = {"file_id": "CAACAgIAAxkBAAE", "file_unique_id": "AgADAQAD", "type": "regular",
               "width": 512, "height": 512, "is_animated": False, "is_video": False}
    calls = bot.send(321, "", sticker=sticker)
    assert [m for m, _ in calls] == ["sendMessage"] and calls[0][1]["text"].startswith("I can only read text")
