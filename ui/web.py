"""The Gradio chat demo over the public API: one browser tab is one session.

Each browser is one user (a random id kept in the browser's local storage), so a returning
visitor is remembered and visitors never share memories; ``user_id`` fixes one user for all.
A person can type, or tap a quick reply under the chat: yes / no and the other values offered
with a question, one button per recommended item and "none of these", "start over" at the
end. Buttons send structured actions (``Recommender.act``), so a tap is never misread. Typed
replies stream as they are written (an LLM's grow word by word; templates arrive at once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crs.api import InvalidInput, Recommender
from crs.language.reply import Reply

__all__ = ["MAX_QUICK_REPLIES", "QuickReply", "browser_user", "build_demo", "launch", "quick_replies"]

MAX_QUICK_REPLIES = 6
_BROWSER_USER = re.compile(r"web-[0-9a-f]{24}")  # what a browser's stored id must look like
_STALE = "That choice is no longer open."


@dataclass(frozen=True)
class QuickReply:
    """A button under the chat: its label (also shown as the person's message) and action."""

    label: str
    action: dict[str, Any]


def quick_replies(reply: Reply) -> list[QuickReply]:
    """The buttons that fit a reply, at most :data:`MAX_QUICK_REPLIES`."""
    out: list[QuickReply] = []
    if reply.action == "ask" and reply.question is not None:
        q = reply.question
        out += [QuickReply("Yes", {"type": "answer", "yes": True}),
                QuickReply("No", {"type": "answer", "yes": False})]
        for value, attr in zip(q.options, q.option_ids, strict=False):
            if attr != q.attribute:  # "yes" already stands for the asked value
                out.append(QuickReply(value, {"type": "attributes", "accept": [attr]}))
        out = out[: MAX_QUICK_REPLIES - 1]
        out.append(QuickReply("Just recommend", {"type": "recommend_now"}))
    elif reply.action == "recommend" and reply.recommendations:
        items = reply.recommendations[: MAX_QUICK_REPLIES - 1]
        out += [QuickReply(r.name, {"type": "accept_item", "item_id": r.id}) for r in items]
        out.append(QuickReply("None of these", {"type": "reject_items",
                                                "item_ids": [r.id for r in reply.recommendations]}))
    elif reply.action in ("accepted", "thanks"):
        out.append(QuickReply("Start over", {"type": "start_over"}))
    return out


def browser_user(stored: str | None) -> str:
    """The user id a browser keeps: its stored one, or a new random one if absent or malformed."""
    if isinstance(stored, str) and _BROWSER_USER.fullmatch(stored):
        return stored
    return f"web-{uuid.uuid4().hex[:24]}"


def build_demo(rec: Recommender, *, user_id: str | None = None) -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from gradio.events import api as api_endpoint

    def who(stored: str | None) -> str:
        return user_id or browser_user(stored)

    def buttons(choices: list[QuickReply]) -> list[Any]:
        return [gr.Button(value=choices[i].label, visible=True) if i < len(choices) else gr.Button(visible=False)
                for i in range(MAX_QUICK_REPLIES)]

    def packed(choices: list[QuickReply]) -> list[dict[str, Any]]:  # gr.State holds plain data
        return [{"label": c.label, "action": c.action} for c in choices]

    def on_text(message: str, history: list[dict[str, Any]], session: str | None,
                user: str | None) -> Iterator[list[Any]]:
        session, uid = session or uuid.uuid4().hex, who(user)
        history = [*history, {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        reply: Reply | None = None
        for reply in rec.chat_stream(uid, session, message):
            history[-1] = {"role": "assistant", "content": reply.text}
            yield [history, session, [], "", uid, *buttons([])]
        choices = quick_replies(reply) if reply is not None else []
        yield [history, session, packed(choices), "", uid, *buttons(choices)]

    def on_button(index: int) -> Any:
        def tap(history: list[dict[str, Any]], session: str | None, choices: list[dict[str, Any]],
                user: str | None) -> list[Any]:
            uid = who(user)
            if session is None or index >= len(choices):
                return [history, session, choices, uid, *buttons([QuickReply(**c) for c in choices])]
            chosen = choices[index]
            history = [*history, {"role": "user", "content": chosen["label"]}]
            try:
                reply = rec.act(uid, session, chosen["action"])
            except InvalidInput as exc:  # e.g. the question was answered by typing meanwhile
                history.append({"role": "assistant", "content": f"{_STALE} ({exc}) Tell me what you'd like."})
                return [history, session, [], uid, *buttons([])]
            history.append({"role": "assistant", "content": reply.text})
            new = quick_replies(reply)
            return [history, session, packed(new), uid, *buttons(new)]
        return tap

    with gr.Blocks(title="crs — conversational recommender") as demo:
        gr.Markdown("## crs\nTell me what you're in the mood for. I'll ask a few questions and recommend.")
        session = gr.State(None)
        choices = gr.State([])
        user = gr.BrowserState(None, storage_key="crs-user")
        chat = gr.Chatbot(label="Conversation", height=460, sanitize_html=True)
        with gr.Row():
            quick = [gr.Button(visible=False, size="sm", elem_classes=["quick-reply"])
                     for _ in range(MAX_QUICK_REPLIES)]
        box = gr.Textbox(placeholder="something calm from the 60s", show_label=False, submit_btn=True)
        gr.Examples([["something calm from the 60s"], ["just recommend something"]], inputs=[box])
        demo.load(who, [user], [user], api_visibility="private")  # a new browser gets its id here
        # Every event writes the user id back: a message sent before the page's load event
        # finished still settles the browser's id once, not once per message.
        box.submit(on_text, [box, chat, session, user], [chat, session, choices, box, user, *quick],
                   api_visibility="private")
        for i, button in enumerate(quick):
            button.click(on_button(i), [chat, session, choices, user], [chat, session, choices, user, *quick],
                         api_visibility="private")

        def api_chat(message: str, session_id: str | None = None, user: str | None = None) -> str:
            """One message in, the reply's text out. Without ``session_id`` every call is a new
            session; with it, the conversation goes on. ``user`` (a ``web-`` id of 24 hex digits)
            is remembered across sessions; without it a session is its own user."""
            session = session_id or uuid.uuid4().hex
            if user is None and user_id is None:
                user = "web-" + hashlib.sha256(f"api:{session}".encode()).hexdigest()[:24]
            return rec.chat(who(user), session, message).text

        api_endpoint(api_chat, api_name="chat")
    return demo


def launch(rec: Recommender, *, port: int = 7860, block: bool = True, user_id: str | None = None) -> Any:
    """Serve the demo on 127.0.0.1; with ``block=False`` return the running app (call ``.close()``)."""
    demo = build_demo(rec, user_id=user_id)
    # Gradio polls its own server through httpx; those request lines are noise for a demo.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if block:
        print(f"crs demo: open http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=not block, quiet=True)
    return demo
