"""A Telegram bot over the recommender (python-telegram-bot, webhook mode).

Telegram posts each update to ``POST /telegram/webhook`` with the secret given to
``setWebhook``; anything without it is refused. Text goes to the engine; a reply's quick
replies become an inline keyboard, and a tap comes back as a callback query that is turned
into a structured action. ``/start`` begins a new conversation, ``/memories`` lists what is
remembered (each with a button to forget it) and ``/forget`` forgets the person entirely.

One Telegram user is one crs user in the bot's tenant; one chat is one session. Buttons carry
``<turn>:<code>`` (Telegram allows 64 bytes) and are resolved against the conversation's state:
a button from an earlier turn is answered with "no longer open", never misapplied.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from crs import InvalidInput, Recommender, Reply, Settings
from crs.settings import TelegramSettings
from crs.ui.errors import error_response
from crs.ui.tenants import check_tenant, scoped_user
from crs.ui.web import QuickReply, quick_replies

__all__ = ["WEBHOOK_PATH", "TelegramBot", "TelegramConfigError", "add_webhook_route", "callback_code", "check_bot",
           "with_env"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token
_MAX_TEXT = 4096  # Telegram's limit for one message
STALE = "That choice is no longer open."
WELCOME_BACK = "Tell me what you're in the mood for."


class TelegramConfigError(ValueError):
    """The bot cannot start: the message says which setting is missing or wrong."""


def with_env(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """Settings with the bot's token and secret from CRS_TELEGRAM_TOKEN / CRS_TELEGRAM_SECRET (they win)."""
    env = os.environ if env is None else env
    tg = settings.serve.telegram
    token = env.get("CRS_TELEGRAM_TOKEN") or (tg.token.get_secret_value() if tg.token else "")
    secret = env.get("CRS_TELEGRAM_SECRET") or (tg.secret_token.get_secret_value() if tg.secret_token else "")
    if not token:
        raise TelegramConfigError("--telegram needs the bot token: set CRS_TELEGRAM_TOKEN (from @BotFather)")
    if not _SECRET.fullmatch(secret):
        raise TelegramConfigError("--telegram needs CRS_TELEGRAM_SECRET: 1-256 of A-Z, a-z, 0-9, '_' or '-' "
                                  "(the secret_token you give setWebhook)")
    try:
        check_tenant(tg.tenant)
    except ValueError as exc:
        raise TelegramConfigError(f"serve.telegram.tenant: {exc}") from None
    telegram = tg.model_copy(update={"token": token, "secret_token": secret})
    serve = settings.serve.model_copy(update={"telegram": TelegramSettings.model_validate(telegram.model_dump())})
    return settings.model_copy(update={"serve": serve})


def check_bot(config: TelegramSettings) -> str:
    """Ask the Bot API who the bot is (before serving): its @username, or a clear error."""
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    async def who() -> str:
        assert config.token is not None
        async with Bot(config.token.get_secret_value(), base_url=config.base_url) as bot:
            return str(bot.username)

    try:
        return asyncio.run(who())
    except InvalidToken:
        raise TelegramConfigError("Telegram refused the bot token (CRS_TELEGRAM_TOKEN); check it with @BotFather") \
            from None
    except TelegramError as exc:
        raise TelegramConfigError(f"cannot reach the Telegram Bot API at {config.base_url}: {exc}") from None


def callback_code(choice: QuickReply, reply: Reply) -> str:
    """The short code a quick reply travels as; indices refer to the reply's own lists.

    >>> from crs import Reply
    >>> callback_code(QuickReply("Yes", {"type": "answer", "yes": True}), Reply(text="?", action="ask", turn=3))
    '3:y'
    """
    action = choice.action
    kind = action["type"]
    if kind == "answer":
        code = "y" if action["yes"] else "n"
    elif kind == "attributes":  # the question may be one still open under a clarification
        question = reply.open_question
        ids = question.option_ids if question is not None else []
        code = f"o{ids.index(action['accept'][0])}"
    elif kind == "accept_item":
        code = f"i{[r.id for r in reply.open_recommendations].index(action['item_id'])}"
    elif kind == "reject_items":
        code = "more" if action.get("show_more") else "none"
    elif kind == "recommend_now":
        code = "now"
    elif kind == "start_over":
        code = "over"
    else:
        raise ValueError(f"no callback code for action {kind!r}")
    return f"{reply.turn}:{code}"


def _action_for(code: str, state: Any) -> dict[str, Any] | None:
    """The action a code stands for in the conversation's current state; None if it cannot apply."""
    options = tuple(state.options) or ((state.question,) if state.question else ())
    recommended = tuple(state.recommended)
    if code in ("y", "n"):
        return {"type": "answer", "yes": code == "y"} if state.question else None
    if code == "now":
        return {"type": "recommend_now"}
    if code == "over":
        return {"type": "start_over"}
    if code in ("none", "more"):
        more = {"show_more": True} if code == "more" else {}
        return {"type": "reject_items", "item_ids": list(recommended), **more} if recommended else None
    if re.fullmatch(r"o\d{1,2}", code) and int(code[1:]) < len(options):
        return {"type": "attributes", "accept": [options[int(code[1:])]]}
    if re.fullmatch(r"i\d{1,2}", code) and int(code[1:]) < len(recommended):
        return {"type": "accept_item", "item_id": recommended[int(code[1:])]}
    return None


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Yes / no side by side, other values two to a row, one row per recommended item."""
    choices = quick_replies(reply)
    if not choices:
        return None
    yes_no: list[InlineKeyboardButton] = []
    values: list[InlineKeyboardButton] = []
    rest: list[list[InlineKeyboardButton]] = []
    for choice in choices:
        button = InlineKeyboardButton(choice.label[:64], callback_data=callback_code(choice, reply))
        kind = choice.action["type"]
        if kind == "answer":
            yes_no.append(button)
        elif kind == "attributes":
            values.append(button)
        else:
            rest.append([button])
    rows = ([yes_no] if yes_no else []) + [values[i:i + 2] for i in range(0, len(values), 2)] + rest
    return InlineKeyboardMarkup(rows)


class TelegramBot:
    """The handlers of one bot (``application.process_update`` runs one update to the end)."""

    def __init__(self, rec: Recommender, config: TelegramSettings) -> None:
        if config.token is None:
            raise TelegramConfigError("the Telegram bot needs a token")
        self.rec, self.tenant = rec, config.tenant
        self.application = (Application.builder().token(config.token.get_secret_value()).base_url(config.base_url)
                            .updater(None).job_queue(None).build())
        add = self.application.add_handler
        add(CommandHandler("start", self._start))
        add(CommandHandler("forget", self._forget))
        add(CommandHandler("memories", self._memories))
        add(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, self._text))
        add(MessageHandler(filters.UpdateType.MESSAGE & ~filters.TEXT, self._not_text))
        add(CallbackQueryHandler(self._tap))
        self.application.add_error_handler(self._error)

    async def start(self) -> None:
        await self.application.initialize()

    async def stop(self) -> None:
        await self.application.shutdown()

    # ------------------------------------------------------------ identity
    def _who(self, update: Update) -> tuple[str, str]:
        """(crs user, session): the Telegram user in the bot's tenant, and the chat."""
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        return scoped_user(self.tenant, f"tg{user.id}"), f"chat{chat.id}"

    async def _send(self, update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
        chat = update.effective_chat
        assert chat is not None
        await context.bot.send_message(chat.id, reply.text[:_MAX_TEXT], reply_markup=keyboard(reply))

    # ------------------------------------------------------------ handlers
    async def _start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A new conversation in this chat: the old one is reflected on, then closed."""
        user, session = self._who(update)

        def begin() -> Reply:
            if self.rec.state(user, session) is not None:
                self.rec.end_session(user, session)
                self.rec.reset(user, session)
            return self.rec.chat(user, session, "hello")

        await self._send(update, context, await asyncio.to_thread(begin))

    async def _text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        user, session = self._who(update)
        try:
            reply = await asyncio.to_thread(self.rec.chat, user, session, message.text)
        except InvalidInput as exc:
            chat = update.effective_chat
            assert chat is not None
            await context.bot.send_message(chat.id, f"Sorry, I can't use that: {exc}")
            return
        await self._send(update, context, reply)

    async def _not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        await context.bot.send_message(chat.id, "I can only read text. " + WELCOME_BACK)

    async def _tap(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        data = query.data or ""
        user, session = self._who(update)
        if data.startswith("fm:"):
            found = await asyncio.to_thread(self.rec.forget_memory, user, data[3:])
            await query.answer("Forgotten." if found else "That memory was already gone.")
            if found and query.message is not None:
                await query.edit_message_reply_markup(None)
            return
        turn, _, code = data.partition(":")
        state = await asyncio.to_thread(self.rec.state, user, session)
        action = _action_for(code, state) if state is not None and turn == str(state.turn) else None
        if action is None:
            await query.answer(STALE)
            return
        try:
            reply = await asyncio.to_thread(self.rec.act, user, session, action)
        except InvalidInput:  # the state moved on between reading it and acting
            await query.answer(STALE)
            return
        await query.answer()
        if query.message is not None:  # the tapped keyboard is spent
            await query.edit_message_reply_markup(None)
        await self._send(update, context, reply)

    async def _memories(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, _ = self._who(update)
        chat = update.effective_chat
        assert chat is not None
        entries = await asyncio.to_thread(self._safe_memories, user)
        if entries is None:
            await context.bot.send_message(chat.id, "My long-term memory is not available right now.")
            return
        if not entries:
            await context.bot.send_message(chat.id, "I don't remember anything about you yet.")
            return
        shown = entries[:10]
        text = "Here is what I remember:\n" + "\n".join(f"{i}. {e.text}" for i, e in enumerate(shown, start=1))
        buttons = [[InlineKeyboardButton(f"Forget {i}", callback_data=f"fm:{e.id}")]
                   for i, e in enumerate(shown, start=1)]
        await context.bot.send_message(chat.id, text[:_MAX_TEXT], reply_markup=InlineKeyboardMarkup(buttons))

    def _safe_memories(self, user: str) -> list[Any] | None:
        from crs.memory import MemoryStoreError

        try:
            return self.rec.memories(user)
        except MemoryStoreError:
            return None

    async def _forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, _ = self._who(update)
        chat = update.effective_chat
        assert chat is not None
        report = dict(await asyncio.to_thread(self.rec.forget, user))
        report.pop("not_scrubbed", None)
        if report.get("not_deleted"):
            text = "I could not forget everything right now (my memory store did not answer). Please try /forget again."
        elif any(report.values()):
            text = (f"Done: I forgot everything about you ({report.get('memories', 0)} memories, "
                    f"{report.get('threads', 0)} conversations).")
        else:
            text = "I had nothing stored about you."
        await context.bot.send_message(chat.id, text)

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("a Telegram update failed", exc_info=context.error)


def add_webhook_route(app: FastAPI, config: TelegramSettings) -> None:
    """``POST /telegram/webhook``: checks the secret header, then hands the update to the bot."""
    if config.secret_token is None:
        raise TelegramConfigError("the Telegram webhook needs a secret_token")
    secret = config.secret_token.get_secret_value().encode()

    @app.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> JSONResponse:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            return error_response(401, "unauthorized", f"missing or wrong {SECRET_HEADER}")
        try:
            payload = await request.json()
        except ValueError:
            return error_response(400, "invalid_json", "the update is not valid JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return error_response(400, "invalid_update", "a Telegram update is an object with an update_id")
        bot: TelegramBot = request.app.state.telegram
        try:
            update = Update.de_json(payload, bot.application.bot)
        except (KeyError, TypeError, ValueError) as exc:
            return error_response(400, "invalid_update", f"not a Telegram update: {exc}")
        await bot.application.process_update(update)
        return JSONResponse({"ok": True})
