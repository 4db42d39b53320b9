"""The Gradio chat demo over the public API: one browser tab is one session.

Each browser is one user (a random id sealed in the browser's local storage with a secret kept
in the state folder, so it survives restarts), so a returning visitor is remembered and visitors
never share memories; ``user_id`` fixes one user for all. The page greets as soon as it loads.
A person can type, tap a quick reply (yes / no and the other values offered with a question,
one button per recommended item, "show me more" and "none of these", "start over"), or tap a
recommendation card. Buttons and cards send structured actions (``Recommender.act``), so a tap is never
misread. Beside the chat: a persona picker, the reasoning panel (the path walked, candidates
left, the subgraph that links the path to the items) and the memory panel (what is remembered,
each with a delete button, and "forget me"). Typed replies stream as they are written.
"""

# No "from __future__ import annotations": Gradio reads the handlers' hints (gr.EventData) at run
# time, and ``gr`` is imported inside build_demo, where eager annotations still resolve.
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crs import InvalidInput, Recommender, Reply
from crs.language.personas import bundled_personas, load_persona
from crs.ui.cards import cards_html
from crs.ui.identity import BrowserIdError, browser_secret, browser_user, check_browser_user
from crs.ui.memory_panel import memories_html
from crs.ui.reasoning import Walk, panel_html

__all__ = ["CSS", "GREETING", "MAX_QUICK_REPLIES", "QuickReply", "browser_user", "build_demo", "launch",
           "quick_replies", "theme"]

logger = logging.getLogger(__name__)
MAX_QUICK_REPLIES = 6
GREETING = "hello"  # what the page says for the person when it opens, so the bot greets first
_STALE = "That choice is no longer open."
_SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
_MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

# Clicks inside an HTML panel are sent to Python with the id the clicked element carries.
_CARD_CLICK = ("element.addEventListener('click', (e) => { const c = e.target.closest('[data-item]');"
               " if (c) trigger('click', {item_id: c.dataset.item}); });")
_MEMORY_CLICK = ("element.addEventListener('click', (e) => { const b = e.target.closest('[data-memory]');"
                 " if (b) trigger('click', {memory_id: b.dataset.memory}); });")

CSS = """
.gradio-container { max-width: 1280px !important; }
.crs-header h1 { margin-bottom: 0; }
.crs-header p { margin-top: .25rem; color: var(--body-text-color-subdued); }
.quick-reply { flex: 0 1 auto !important; min-width: 0 !important; max-width: 100%; white-space: normal !important; }
.chip { display: inline-block; padding: 1px 9px; margin: 2px 4px 2px 0; border-radius: 999px;
        font-size: .8rem; line-height: 1.5; background: var(--background-fill-secondary);
        border: 1px solid var(--border-color-primary); }
.chip-yes { background: #dcfce7; border-color: #86efac; color: #14532d; }
.chip-ask { background: #e0e7ff; border-color: #a5b4fc; color: #312e81; }
.chip-ask::after { content: "?"; }
.chip-no { background: #fee2e2; border-color: #fca5a5; color: #7f1d1d; text-decoration: line-through; }
.muted { color: var(--body-text-color-subdued); font-size: .85rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.card { display: flex; flex-direction: column; gap: 6px; text-align: left; padding: 12px 14px;
        border-radius: 12px; border: 1px solid var(--border-color-primary); cursor: pointer;
        background: var(--background-fill-primary); color: var(--body-text-color); font: inherit;
        transition: border-color .15s, box-shadow .15s; }
.card:hover, .card:focus-visible { border-color: #6366f1; box-shadow: 0 2px 10px rgba(79,70,229,.18);
        outline: none; }
.card-rank { font-size: .75rem; color: #4338ca; font-weight: 600; }
.card-name { font-weight: 650; font-size: 1rem; }
.card-description { font-size: .85rem; color: var(--body-text-color-subdued); }
.card-why { font-size: .85rem; font-style: italic; }
.card-path { font-size: .8rem; }
.path-item { font-weight: 600; color: #4338ca; }
.card-choose { align-self: flex-end; font-size: .8rem; font-weight: 600; color: #4338ca; }
.reasoning .row { display: flex; gap: 8px; align-items: baseline; margin: 4px 0; }
.reasoning .label { flex: 0 0 70px; font-size: .8rem; font-weight: 600;
        color: var(--body-text-color-subdued); }
.reasoning .count { font-weight: 600; }
.subgraph { margin: 8px 0 0 0; }
.subgraph-svg { width: 100%; height: auto; }
.subgraph figcaption { font-size: .8rem; color: var(--body-text-color-subdued); }
.memories { list-style: none; padding: 0; margin: 0; }
.memory { display: grid; grid-template-columns: auto 1fr auto; gap: 2px 8px; align-items: center;
        padding: 6px 0; border-bottom: 1px solid var(--border-color-primary); }
.memory-kind { font-size: .72rem; text-transform: uppercase; letter-spacing: .03em; color: #4338ca; }
.memory-text { font-size: .9rem; }
.memory-when { grid-column: 2; font-size: .72rem; color: var(--body-text-color-subdued); }
.memory-delete { grid-row: 1 / span 2; grid-column: 3; font: inherit; font-size: .8rem; cursor: pointer;
        padding: 2px 10px; border-radius: 8px; border: 1px solid #fca5a5; background: #fff;
        color: #b91c1c; }
.memory-delete:hover { background: #fee2e2; }
"""


def theme() -> Any:
    """A theme with system fonts only: the page asks no font host for anything."""
    import gradio as gr

    return gr.themes.Soft(primary_hue="indigo", secondary_hue="emerald", font=_SYSTEM_FONTS,
                          font_mono=_MONO_FONTS)


@dataclass(frozen=True)
class QuickReply:
    """A button under the chat: its label (also shown as the person's message) and action."""

    label: str
    action: dict[str, Any]


def forget_message(report: dict[str, Any]) -> str:
    """What the page says after forget-me: all gone, or what could not be deleted."""
    left = report.get("not_deleted") or []
    if not left:
        return "Everything about you was forgotten. This is a fresh start."
    return "Your conversations were forgotten, but not everything: " + "; ".join(left) + ". Please try again later."


def quick_replies(reply: Reply) -> list[QuickReply]:
    """The buttons that fit a reply, at most :data:`MAX_QUICK_REPLIES`."""
    out: list[QuickReply] = []
    question, shown = reply.open_question, reply.open_recommendations  # still open after a clarify or why
    if question is not None:
        q = question
        out += [QuickReply("Yes", {"type": "answer", "yes": True}),
                QuickReply("No", {"type": "answer", "yes": False})]
        for value, attr in zip(q.options, q.option_ids, strict=False):
            if attr != q.attribute:  # "yes" already stands for the asked value
                out.append(QuickReply(value, {"type": "attributes", "accept": [attr]}))
        out = out[: MAX_QUICK_REPLIES - 1]
        out.append(QuickReply("Just recommend", {"type": "recommend_now"}))
    elif shown:
        ids = [r.id for r in shown]
        out += [QuickReply(r.name, {"type": "accept_item", "item_id": r.id}) for r in shown[: MAX_QUICK_REPLIES - 2]]
        out.append(QuickReply("Show me more", {"type": "reject_items", "item_ids": ids, "show_more": True}))
        out.append(QuickReply("None of these", {"type": "reject_items", "item_ids": ids}))
    elif reply.action in ("accepted", "thanks"):
        out.append(QuickReply("Start over", {"type": "start_over"}))
    return out


class _Voices:
    """One recommender per persona, made on first use; all share the conversations."""

    def __init__(self, rec: Recommender) -> None:
        self.default = rec.persona.name
        self._made: dict[str, Recommender] = {self.default: rec}
        self._guard = threading.Lock()
        names = dict.fromkeys([self.default, *bundled_personas()])
        self.choices = [(self._label(rec, n), n) for n in names]

    def _label(self, rec: Recommender, name: str) -> str:
        persona = rec.persona if name == self.default else load_persona(name)
        return f"{persona.display_name} ({name})" if persona.display_name != name else name

    def __call__(self, name: str | None) -> Recommender:
        name = name or self.default
        with self._guard:
            if name not in self._made:
                if name not in bundled_personas():
                    raise InvalidInput(f"unknown persona {name!r}")
                self._made[name] = self._made[self.default].with_persona(name)
            return self._made[name]

    def describe(self, name: str | None) -> str:
        persona = self(name).persona
        return f"**{persona.display_name}**: {persona.description}" if persona.description else ""


def build_demo(rec: Recommender, *, user_id: str | None = None, secret: str | None = None) -> Any:
    """The demo's Blocks. ``secret`` seals browser ids (default: the one in the state folder)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from gradio.events import api as api_endpoint

    secret = secret or browser_secret(Path(rec.settings.state_dir))
    voices = _Voices(rec)
    graph = rec.graph

    def who(stored: str | None) -> str:
        return user_id or browser_user(stored)

    def buttons(choices: list[QuickReply]) -> list[Any]:
        return [gr.Button(value=choices[i].label, visible=True) if i < len(choices) else gr.Button(visible=False)
                for i in range(MAX_QUICK_REPLIES)]

    def packed(choices: list[QuickReply]) -> list[dict[str, Any]]:  # gr.State holds plain data
        return [{"label": c.label, "action": c.action} for c in choices]

    def memory_panel(uid: str) -> str:
        if rec.memory is None:
            return '<p class="muted">Long-term memory is off for this demo: nothing is remembered.</p>'
        try:
            return memories_html(rec.memories(uid))
        except Exception:  # the chat still works when the memory store does not answer
            logger.exception("could not list the memories of %s", uid)
            return '<p class="muted">The memory store did not answer; try again in a moment.</p>'

    def reasoning_panel(uid: str, session: str, reply: Reply | None) -> str:
        state = rec.state(uid, session)
        if state is None:
            return panel_html(graph, Walk(candidates=graph.n_items))
        items: tuple[str, ...] = ()
        if reply is not None and reply.action == "recommend":
            items = tuple(r.id for r in reply.recommendations)
        elif state.accepted_item is not None:
            items = (state.accepted_item,)
        left = reply.candidates if reply is not None else graph.n_items
        chosen = state.accepted_item is not None and items == (state.accepted_item,)
        asking = reply.question.attribute if reply is not None and reply.question is not None else None
        return panel_html(graph, Walk(state.accepted, state.rejected, left, items, chosen, asking))

    def view(history: list[dict[str, Any]], session: str, uid: str, reply: Reply | None) -> list[Any]:
        """Every output after a turn, in the order of ``outputs`` below."""
        choices = quick_replies(reply) if reply is not None else []
        cards = cards_html(graph, reply.recommendations) if reply is not None and reply.action == "recommend" else ""
        return [history, session, packed(choices), uid, cards, reasoning_panel(uid, session, reply),
                memory_panel(uid), *buttons(choices)]

    def greeted(uid: str, persona: str | None) -> list[Any]:
        session = uuid.uuid4().hex
        reply = voices(persona).chat(uid, session, GREETING)
        return view([{"role": "assistant", "content": reply.text}], session, uid, reply)

    def on_load(stored: str | None, persona: str | None) -> list[Any]:
        return greeted(who(stored), persona)

    def on_text(message: str, history: list[dict[str, Any]], session: str | None, user: str | None,
                persona: str | None) -> Iterator[list[Any]]:
        if not isinstance(message, str) or not message.strip():  # an empty message is not sent
            yield [gr.skip()] * (len(outputs) + 1)
            return
        session, uid = session or uuid.uuid4().hex, who(user)
        history = [*history, {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        reply: Reply | None = None
        for reply in voices(persona).chat_stream(uid, session, message):
            history[-1] = {"role": "assistant", "content": reply.text}
            yield [*[history, session, [], uid], *[gr.skip()] * 3, *buttons([]), ""]
        yield [*view(history, session, uid, reply), ""]

    def act(history: list[dict[str, Any]], session: str | None, choice: dict[str, Any], uid: str,
            persona: str | None) -> list[Any]:
        history = [*history, {"role": "user", "content": choice["label"]}]
        if session is None:
            session = uuid.uuid4().hex
        try:
            reply = voices(persona).act(uid, session, choice["action"])
        except InvalidInput as exc:  # e.g. the question was answered by typing meanwhile
            history.append({"role": "assistant", "content": f"{_STALE} ({exc}) Tell me what you'd like."})
            return view(history, session, uid, None)
        history.append({"role": "assistant", "content": reply.text})
        return view(history, session, uid, reply)

    def on_button(index: int) -> Callable[..., list[Any]]:
        def tap(history: list[dict[str, Any]], session: str | None, choices: list[dict[str, Any]],
                user: str | None, persona: str | None) -> list[Any]:
            if session is None or index >= len(choices):
                return [gr.skip()] * len(outputs)
            return act(history, session, choices[index], who(user), persona)
        return tap

    def on_card(history: list[dict[str, Any]], session: str | None, choices: list[dict[str, Any]],
                user: str | None, persona: str | None, evt: gr.EventData) -> list[Any]:
        item = getattr(evt, "_data", None) or {}
        wanted = item.get("item_id") if isinstance(item, dict) else None
        for choice in choices:
            if choice["action"].get("type") == "accept_item" and choice["action"].get("item_id") == wanted:
                return act(history, session, choice, who(user), persona)
        return [gr.skip()] * len(outputs)  # a card of a list that is no longer shown

    def on_new(history: list[dict[str, Any]], session: str | None, user: str | None,
               persona: str | None) -> list[Any]:
        uid = who(user)
        if session is not None:
            try:
                rec.end_session(uid, session)  # the old conversation is over: reflect on it now
            except Exception:  # a memory store that does not answer must not block a new conversation
                logger.exception("could not reflect on session %s of %s", session, uid)
        return greeted(uid, persona)

    def on_persona(persona: str | None, history: list[dict[str, Any]], session: str | None,
                   user: str | None) -> list[Any]:
        uid = who(user)
        try:
            voices(persona)
        except InvalidInput as exc:  # e.g. a recommender built with its own nlg has no persona to change
            raise gr.Error(str(exc), title="Persona", print_exception=False) from None
        said = any(m.get("role") == "user" for m in history)
        if said:  # the conversation goes on; the next reply speaks in the new voice
            return [*[gr.skip()] * len(outputs), voices.describe(persona)]
        if session is not None:
            rec.reset(uid, session)  # only a greeting: greet again in the new voice
        return [*greeted(uid, persona), voices.describe(persona)]

    def on_delete(user: str | None, evt: gr.EventData) -> tuple[str, str]:
        uid = who(user)
        data = getattr(evt, "_data", None) or {}
        memory_id = data.get("memory_id") if isinstance(data, dict) else None
        if not isinstance(memory_id, str):
            return memory_panel(uid), ""
        try:
            gone = rec.forget_memory(uid, memory_id)
        except InvalidInput as exc:
            return memory_panel(uid), f"Could not delete that memory: {exc}"
        return memory_panel(uid), "Deleted." if gone else "That memory was already gone."

    def on_forget(user: str | None, persona: str | None) -> list[Any]:
        uid = who(user)
        try:
            report = rec.forget(uid)
        except Exception as exc:  # say so, keep the id: the person can try again
            logger.exception("could not forget %s", uid)
            return [*[gr.skip()] * len(outputs), f"Could not forget everything: {exc}. Nothing else changed; "
                    "please try again.", gr.Row(visible=False)]
        logger.info("forgot a browser user: %s", report)
        fresh = user_id or browser_user(None)  # a new id too: nothing links the old one to what follows
        return [*greeted(fresh, persona), forget_message(report), gr.Row(visible=False)]

    with gr.Blocks(title="crs — conversational recommender") as demo:
        gr.Markdown("# crs\nTell me what you're in the mood for. I'll ask a few questions and recommend,"
                    " and show you how I got there.", elem_classes=["crs-header"])
        session = gr.State(None)
        choices = gr.State([])
        user = gr.BrowserState(None, storage_key="crs-user", secret=secret)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                chat = gr.Chatbot(label="Conversation", height=440, elem_id="chat", sanitize_html=True,
                                  latex_delimiters=[], buttons=["copy"], feedback_options=None)
                with gr.Row():
                    quick = [gr.Button(visible=False, size="sm", elem_classes=["quick-reply"])
                             for _ in range(MAX_QUICK_REPLIES)]
                box = gr.Textbox(placeholder="something calm from the 60s", show_label=False, submit_btn=True,
                                 elem_id="message")
                with gr.Row():
                    new = gr.Button("New conversation", size="sm", variant="secondary", scale=0,
                                    elem_id="new-conversation")
                cards = gr.HTML("", js_on_load=_CARD_CLICK, elem_id="cards")
                gr.Examples([["something calm from the 60s"], ["just recommend something"]], inputs=[box])
            with gr.Column(scale=2, min_width=320):
                persona = gr.Dropdown(voices.choices, value=voices.default, label="Who you're talking to",
                                      elem_id="persona")
                about = gr.Markdown(voices.describe(voices.default), elem_classes=["muted"])
                with gr.Accordion("How I'm reasoning", open=True):
                    reasoning = gr.HTML(panel_html(graph, Walk(candidates=graph.n_items)), js_on_load=None,
                                        elem_id="reasoning")
                with gr.Accordion("What I remember about you", open=True):
                    memories = gr.HTML("", js_on_load=_MEMORY_CLICK, elem_id="memories")
                    status = gr.Markdown("", elem_id="memory-status")
                    forget = gr.Button("Forget me", size="sm", variant="stop", elem_id="forget-me")
                    with gr.Row(visible=False) as confirm_row:
                        gr.Markdown("Forget everything about you: every memory and every conversation?")
                        confirm = gr.Button("Yes, forget everything", size="sm", variant="stop",
                                            elem_id="forget-confirm")
                        cancel = gr.Button("Cancel", size="sm", elem_id="forget-cancel")

        outputs = [chat, session, choices, user, cards, reasoning, memories, *quick]
        private: dict[str, Any] = {"api_visibility": "private"}
        # Every event writes the user id back: the first event of a new browser settles its id once.
        demo.load(on_load, [user, persona], outputs, **private)
        box.submit(on_text, [box, chat, session, user, persona], [*outputs, box], **private)
        for i, button in enumerate(quick):
            button.click(on_button(i), [chat, session, choices, user, persona], outputs, **private)
        cards.click(on_card, [chat, session, choices, user, persona], outputs, **private)
        new.click(on_new, [chat, session, user, persona], outputs, **private)
        chat.clear(on_new, [chat, session, user, persona], outputs, **private)
        persona.change(on_persona, [persona, chat, session, user], [*outputs, about], **private)
        memories.click(on_delete, [user], [memories, status], **private)
        forget.click(lambda: gr.Row(visible=True), None, [confirm_row], **private)
        cancel.click(lambda: gr.Row(visible=False), None, [confirm_row], **private)
        confirm.click(on_forget, [user, persona], [*outputs, status, confirm_row], **private)

        def api_chat(message: str, session_id: str | None = None, user: str | None = None) -> str:
            """One message in, the reply's text out. Without ``session_id`` every call is a new
            session; with it, the conversation goes on. ``user`` (``web-`` and 24 hex digits,
            e.g. ``"web-" + uuid.uuid4().hex[:24]``) is remembered across sessions; without it a
            session is its own user. A malformed ``user`` is refused, never replaced."""
            session = session_id or uuid.uuid4().hex
            try:
                if user is not None:
                    check_browser_user(user)
                    if user_id is not None and user != user_id:
                        raise BrowserIdError("this demo serves one user for everyone; leave out user")
                uid = user_id or user or "web-" + hashlib.sha256(f"api:{session}".encode()).hexdigest()[:24]
                return rec.chat(uid, session, message).text
            except (BrowserIdError, InvalidInput) as exc:
                raise gr.Error(str(exc), title="Refused", print_exception=False) from None  # bad input: no traceback

        api_endpoint(api_chat, api_name="chat")
    return demo


def launch(rec: Recommender, *, port: int = 7860, block: bool = True, user_id: str | None = None) -> Any:
    """Serve the demo on 127.0.0.1; with ``block=False`` return the running app (call ``.close()``)."""
    demo = build_demo(rec, user_id=user_id)
    # Gradio polls its own server through httpx; those request lines are noise for a demo.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if block:
        print(f"crs demo: open http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
    demo.queue(default_concurrency_limit=8)  # turns of different tabs run in parallel; one tab's in order
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=not block, quiet=True,
                theme=theme(), css=CSS, footer_links=["api"])
    return demo
