"""The steps of one user turn, as plain functions over the turn's state.

``graphs/`` wires these into a LangGraph state machine; the steps never import ``graphs``.
Each step reads the fields it needs from :class:`TurnState` and returns only the fields it
changes, so every step can be unit-tested on a dict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

import numpy as np
from langgraph.config import get_stream_writer

from crs.kb.errors import UnknownIdError
from crs.language.memory_talk import forget_me_question, forgot_text, memories_text
from crs.language.nlg import ProfileSource, ReplyPlan, Responder, StreamingResponder
from crs.language.nlu import MAX_CHARS, NLUContext, Understander
from crs.language.reply import Pending, Question, RecommendedItem, Reply
from crs.memory.statements import find_statements
from crs.reasoning.engine import Engine
from crs.reasoning.state import Action, DialogueState, Feedback, Recommendation

__all__ = ["ChoiceMemory", "MemoryHooks", "RecallingMemory", "SessionMemory", "TurnState", "TurnSteps",
           "VisibleMemory"]

_HISTORY_TURNS = 8  # recent turns handed to the reply writer (an LLM prompt's budget cuts further)
_UNDO_STEPS = 2  # answers "go back" can undo, one at a time (each is a copy of the dialogue in the state)
#: transcript lines the state keeps: the reply writer's history and more. A checkpoint then stays
#: the same size however long the conversation; the whole conversation is in the transcript log.
TRANSCRIPT_WINDOW = 2 * _HISTORY_TURNS


class TurnState(TypedDict, total=False):
    """The graph state of one conversation thread. Only plain, serialisable values."""

    user_id: str
    session_id: str
    dialogue: dict[str, Any] | None  # DialogueState.to_dict()
    message: str | None  # this turn's text, if any
    feedback: dict[str, Any] | None  # this turn's structured feedback (a button, or the NLU's)
    problem: str | None  # why this turn's input could not be used
    action: dict[str, Any] | None  # the engine's decision this turn
    reply: dict[str, Any] | None  # Reply.model_dump()
    understood: dict[str, list[str]] | None  # attribute ids a message asked for / ruled out, to acknowledge
    transcript: list[dict[str, Any]]  # the most recent lines only (TurnSteps.transcript_window)
    said: list[dict[str, Any]]  # this turn's lines, for the append-only transcript log
    chosen_before: list[str]  # items this user chose in earlier sessions (from memory, at recall)
    confirming_forget: bool  # "forget everything about me" was asked; the next "yes" confirms it
    memory_record: dict[str, Any] | None  # long-term memory's record of this session's turns not yet reflected
    previous: list[dict[str, Any]]  # the dialogue before each of the last few answers, newest last ("go back")
    undone: bool | None  # this turn's "go back": True if a step was undone, False if there was none


class MemoryHooks(Protocol):
    """What the conversation needs from long-term memory (the memory package fills it)."""

    def prior(self, user_id: str) -> Sequence[tuple[str, float]]: ...

    def avoid(self, user_id: str) -> Sequence[str]: ...

    def observe(self, user_id: str, state: TurnState) -> None: ...


@runtime_checkable
class VisibleMemory(Protocol):
    """Optional part of a memory: what a person can see and erase from the conversation."""

    def memories(self, user_id: str) -> Sequence[Any]: ...

    def forget_said(self, user_id: str, text: str) -> Sequence[Any]: ...


_MEMORY_KINDS = {"memories": "memories", "forget": "forget", "forget_me": "confirm_forget"}
_NO = re.compile(r"^\W*(?:no|nope|nah|don't|do not|cancel|never ?mind|keep)\b", re.I)
#: the words of a correction before what was meant ("no wait, I meant", "oops, I meant")
_GO_BACK = re.compile(r"^\W*(?:(?:no|oh|oops|sorry|wait|actually)\W+)*(?:wait\W+)?(?:i\s+meant\b|go\s+back\b)?\W*",
                      re.I)
_YES = re.compile(r"^\W*(?:yes|yeah|yep|yup|sure|ok(?:ay)?|confirm(?:ed)?|do it|please do|go ahead)\b", re.I)


@runtime_checkable
class RecallingMemory(Protocol):
    """Optional part of a memory: a session's prior retrieved for its opening message (RMM)."""

    def recall(self, user_id: str, query: str | None = None) -> Sequence[tuple[str, float]]: ...


@runtime_checkable
class SessionMemory(Protocol):
    """Optional part of a memory: the session's record travels in the conversation's state (and
    its checkpoints), so any worker serving a turn sees the whole session, and deleting the
    conversation deletes the record. ``record`` is what the previous turn returned."""

    def observe_session(self, user_id: str, state: TurnState,
                        record: dict[str, Any] | None) -> dict[str, Any] | None: ...


@runtime_checkable
class ChoiceMemory(Protocol):
    """Optional part of a memory: the items a user chose before (not offered again unless asked)."""

    def chosen(self, user_id: str) -> Sequence[str]: ...


Route = Literal["ask", "recommend", "respond"]


def _action_from_dict(data: dict[str, Any]) -> Action:
    recs = tuple(Recommendation(**{**r, "path": tuple(r["path"])}) for r in data.get("recommendations", ()))
    fields = {k: v for k, v in data.items() if k not in ("confirm", "again")}
    return Action(**{**fields, "options": tuple(data.get("options", ())), "recommendations": recs})


def _conversational_kind(feedback: Feedback | None, dialogue: DialogueState) -> str | None:
    """The reply kind for turns that need no policy decision; None means ask the engine."""
    if feedback is None:
        return "error"
    intent = feedback.intent
    if intent == "thanks" or (intent == "restart" and feedback.is_empty):
        return intent
    if intent == "greet":
        return "clarify" if dialogue.accepted else "greet"
    if intent == "why":
        return "explain"
    if intent == "options":
        return "options"
    if feedback.accept_item:
        return "accepted"
    return "clarify" if intent == "unknown" else None


_KEEPS_OPEN = ("clarify", "explain", "error", "greet", "options")  # replies after which the open question stays open


class _Acknowledged(TypedDict, total=False):  # ReplyPlan's fields of that name
    understood: tuple[str, ...]
    understood_not: tuple[str, ...]


def _nlu_context(dialogue: DialogueState) -> NLUContext:
    """What a message is read against: the open question, and the list still on screen (a list
    turned down whole is gone: "the first one" no longer picks from it)."""
    shown = () if set(dialogue.recommended) <= set(dialogue.rejected_items) else dialogue.recommended
    return NLUContext(question=dialogue.question, options=dialogue.options, recommended=shown,
                      accepted=dialogue.accepted)


def _unknown_id(exc: UnknownIdError) -> dict[str, Any]:
    return {"problem": f"{str(exc).capitalize()}."}  # the turn's error reply; the dialogue is left as it was


def _understood(feedback: Feedback, dialogue: DialogueState) -> dict[str, list[str]] | None:
    """What a message asked for, to acknowledge: not a bare yes or no to the question asked."""
    accept, reject = list(feedback.accept_attributes), list(feedback.reject_attributes)
    if (not accept and not reject) or set(accept) | set(reject) <= {dialogue.question}:
        return None
    return {"accept": accept, "reject": reject}


def _stated_changes(dialogue: DialogueState, feedback: Feedback, message: str | None) -> DialogueState:
    """A change of mind stated this turn ("I'm done with jazz") counts at once, in this session:
    what it rejects is kept out of lists from now on, and what it asks for is no longer avoided."""
    if not message or not (feedback.reject_attributes or feedback.accept_attributes):
        return dialogue
    kinds = {st.kind for st in find_statements(message)}
    avoid = list(dialogue.avoid)
    if "dislike" in kinds:
        avoid = [*avoid, *(a for a in feedback.reject_attributes if a not in avoid)]
    if "like" in kinds:
        avoid = [a for a in avoid if a not in feedback.accept_attributes]
    return dialogue if tuple(avoid) == dialogue.avoid else dialogue.evolve(avoid=tuple(avoid))


class TurnSteps:
    """The turn's steps, bound to one engine, understander, responder and memory."""

    def __init__(
        self,
        engine: Engine,
        nlu: Understander,
        nlg: Responder,
        memory: MemoryHooks | None = None,
        *,
        max_message_chars: int = MAX_CHARS,
        profiles: ProfileSource | None = None,
        transcript_window: int | None = TRANSCRIPT_WINDOW,
    ) -> None:
        self.engine = engine
        self.transcript_window = transcript_window  # None keeps every line in the state (grows per turn)
        self.nlu = nlu
        self.nlg = nlg
        self.memory = memory
        self.profiles = profiles  # this user's long-term profile, for the reply's words
        self.max_message_chars = max_message_chars
        self.examples = self._example_attributes()

    def _example_attributes(self) -> tuple[str, ...]:
        """The commonest value of each facet: concrete things to suggest when clarifying."""
        g = self.engine.graph
        sizes = np.diff(g.attr_items.indptr)
        picks = [int(ix[np.argmax(sizes[ix])]) for ix in g.facets.values()]
        if len(picks) < 3:  # one big facet (tags): its three commonest values
            picks = np.argsort(-sizes, kind="stable")[:3].tolist()
        return tuple(g.attr_ids[a] for a in picks)

    def _dialogue(self, state: TurnState) -> DialogueState:
        data = state.get("dialogue")
        return DialogueState.from_dict(data) if data else self.engine.start(state.get("user_id"))

    # ------------------------------------------------------------------ steps
    def recall(self, state: TurnState) -> dict[str, Any]:
        """At the first turn of a thread, start the dialogue with the user's remembered prior."""
        if state.get("dialogue"):
            return {}
        user = state.get("user_id")
        if self.memory is None or not user:
            return {"dialogue": self.engine.start(user).to_dict()}
        if isinstance(self.memory, RecallingMemory):  # retrieved for what this session opens with
            prior = self.memory.recall(user, state.get("message"))
        else:
            prior = self.memory.prior(user)
        chosen = list(self.memory.chosen(user)) if isinstance(self.memory, ChoiceMemory) else []  # after: one read
        return {"dialogue": self.engine.start(user, prior, self.memory.avoid(user)).to_dict(),
                "chosen_before": [i for i in chosen if i in self.engine.graph.item_index]}

    def understand(self, state: TurnState) -> dict[str, Any]:
        """Turn the message into feedback, unless a button already gave structured feedback."""
        if state.get("feedback") is not None:
            return {"problem": None}
        text = state.get("message")
        if text is None or not text.strip():
            return {"feedback": None, "problem": "Your message was empty."}
        if len(text) > self.max_message_chars:
            return {
                "feedback": None,
                "problem": f"Your message is too long ({len(text):,} characters; "
                f"the limit is {self.max_message_chars:,}).",
            }
        dialogue = self._dialogue(state)
        feedback = self.nlu.understand(text, _nlu_context(dialogue))
        return {"feedback": feedback.to_dict(), "problem": None, "understood": _understood(feedback, dialogue)}

    def reason(self, state: TurnState) -> dict[str, Any]:
        """Walk the graph: apply the feedback to the path and the candidate set."""
        if state.get("problem") or state.get("feedback") is None:
            return {}
        feedback = Feedback.from_dict(state.get("feedback") or {})
        dialogue = self._dialogue(state)
        earlier = list(state.get("previous") or ())
        if feedback.intent == "undo":
            return self._go_back(state, dialogue, earlier)
        if feedback.intent == "restart":
            # "start over with jazz": a fresh path that begins with what the message asked for
            fresh = self.engine.start(dialogue.user_id, dialogue.prior, dialogue.avoid).evolve(turn=dialogue.turn)
            restart = Feedback(accept_attributes=feedback.accept_attributes,
                               reject_attributes=feedback.reject_attributes)
            updated = self.engine.apply(fresh, restart)
        elif feedback.intent == "inform" and feedback.is_empty and dialogue.question:
            # "I don't mind": the question is settled without extending or pruning the path.
            updated = dialogue.evolve(asked=(*dialogue.asked, dialogue.question), question=None,
                                      options=(), turn=dialogue.turn + 1)
        else:
            try:
                updated = _stated_changes(self.engine.apply(dialogue, feedback), feedback, state.get("message"))
            except UnknownIdError as exc:
                return _unknown_id(exc)
        out: dict[str, Any] = {"dialogue": updated.to_dict()}
        answered = feedback.intent in ("inform", "recommend_now", "restart")  # not a "why?" nor a misreading
        if answered and updated != dialogue and state.get("dialogue"):  # what "go back" returns to
            out["previous"] = [*earlier, state["dialogue"]][-_UNDO_STEPS:]
        return out

    def _go_back(self, state: TurnState, dialogue: DialogueState, earlier: list[dict[str, Any]]) -> dict[str, Any]:
        """The dialogue before the last answer, and what a correction says instead, if it does."""
        if not earlier:
            return {"undone": False}
        # the turn count goes on (memory reads a count that goes back as a new conversation)
        restored = DialogueState.from_dict(earlier[-1]).evolve(turn=dialogue.turn + 1)
        out: dict[str, Any] = {"dialogue": restored.to_dict(), "previous": earlier[:-1], "undone": True}
        instead = self._meant(state.get("message"), restored)
        if instead is not None:  # "no wait, I meant jazz", "oops, I meant no": back one step, then that
            try:
                out["dialogue"] = self.engine.apply(restored, instead).to_dict()
            except UnknownIdError as exc:
                return _unknown_id(exc)
            out["feedback"] = instead.to_dict()  # the turn goes on as that answer
        return out

    def _meant(self, message: str | None, restored: DialogueState) -> Feedback | None:
        """What a correction says instead ("I meant no" answers the question asked before), read
        against the dialogue it goes back to; None when it says nothing more than "go back"."""
        rest = _GO_BACK.sub("", message or "", count=1)
        if not rest.strip():
            return None
        meant = self.nlu.understand(rest, _nlu_context(restored))
        if meant.intent not in ("inform", "recommend_now") or meant.is_empty:
            return None
        return Feedback(accept_attributes=meant.accept_attributes, reject_attributes=meant.reject_attributes,
                        accept_item=meant.accept_item, reject_items=meant.reject_items)

    def decide(self, state: TurnState) -> dict[str, Any]:
        """Choose the dialogue act: ask, recommend, or one of the conversational replies."""
        dialogue = self._dialogue(state)
        raw = state.get("feedback")
        feedback = Feedback.from_dict(raw) if raw else None
        kind = "error" if state.get("problem") else _conversational_kind(feedback, dialogue)
        if feedback is not None and feedback.intent == "undo":  # "go back": what was open then, shown again
            return {"action": self._shown_again(dialogue)}
        if feedback is not None and feedback.intent in _MEMORY_KINDS:  # about the memory, not the search
            return {"action": {"kind": _MEMORY_KINDS[feedback.intent]}}
        if state.get("confirming_forget"):  # anything but yes or no goes on as usual, and cancels it
            if _YES.match(state.get("message") or ""):
                return {"action": {"kind": "forgotten"}}
            if _NO.match(state.get("message") or ""):
                return {"action": {"kind": "forget", "keep": True}}
        remembered = self._remembered_like(dialogue, feedback, kind)
        if remembered is not None:
            # A returning user: confirm what memory says instead of asking from scratch.
            n = len(self.engine.view(dialogue).candidates)
            return {"action": {"kind": "ask", "attribute": remembered, "candidates": n, "confirm": True}}
        if kind is not None:
            item = None
            if kind == "explain":
                item = feedback.about_item if feedback else None
                item = item or dialogue.accepted_item or next(iter(dialogue.recommended), None)
                if item is None:  # "why?" before any list: the open question's reason, or say so
                    n = len(self.engine.view(dialogue).candidates)
                    return {"action": {"kind": kind, "item": None, "attribute": dialogue.question, "candidates": n}}
            elif kind == "accepted" and feedback is not None:
                item = feedback.accept_item
            elif kind == "options" and feedback is not None:  # the values of a facet, or what to say
                return {"action": {"kind": kind, "facet": feedback.about_facet}}
            return {"action": {"kind": kind, "item": item}}
        action = self.engine.decide(dialogue, force_recommend=feedback is not None
                                    and feedback.intent == "recommend_now")
        if action.kind == "recommend":
            action = self._without_dislikes(dialogue, action, state.get("chosen_before") or ())
        return {"action": asdict(action)}

    def _shown_again(self, dialogue: DialogueState) -> dict[str, Any]:
        """The action that shows the dialogue's open question or list again (after "go back")."""
        n = len(self.engine.view(dialogue).candidates)
        if dialogue.question is not None:
            return {"kind": "ask", "attribute": dialogue.question, "options": list(dialogue.options),
                    "candidates": n, "again": True}
        if dialogue.recommended and dialogue.accepted_item is None:
            recs = [asdict(self.engine.explain(dialogue, i)) for i in dialogue.recommended]
            return {"kind": "recommend", "recommendations": recs, "candidates": n, "again": True}
        return {"kind": "restart"}

    def _without_dislikes(self, dialogue: DialogueState, action: Action, chosen_before: Sequence[str] = ()) -> Action:
        """Never show what the person said they dislike (this session, or remembered), nor
        what they chose in an earlier session unless they ask for it by name.

        The policy treats dislikes softly (they lower scores, so questions still explore), but
        a list shown to the person leaves out items having a disliked attribute, unless the
        person has since accepted it. If nothing else is left, the bot says so instead.
        """
        g = self.engine.graph
        avoid = set(dialogue.avoid)
        if self.engine.settings.no_rule == "soft":
            avoid.update(dialogue.rejected)
        avoid.difference_update(dialogue.accepted)
        seen = [i for i in chosen_before if i not in dialogue.wanted and i in g.item_index]
        if not avoid and not seen:
            return action
        disliked = np.zeros(g.n_items, dtype=bool)
        for attr in avoid:
            disliked[g.attr_items.row(g.attr_index[attr])] = True
        disliked[[g.item_index[i] for i in seen]] = True
        if not any(disliked[g.item_index[r.item_id]] for r in action.recommendations):
            return action
        view = self.engine.view(dialogue)
        left = int((~disliked[view.candidates]).sum())
        if left == 0:
            return Action(kind="clarify", candidates=0)
        recs = self.engine.recommendations(dialogue, view, exclude=disliked)
        return Action(kind="recommend", recommendations=recs, candidates=left)

    def _remembered_like(self, dialogue: DialogueState, feedback: Feedback | None, kind: str | None) -> str | None:
        """The first remembered like (stated, or established by choices in several sessions),
        when the session opens without saying what it wants.

        Only at the start (nothing asked or accepted yet) and only for a greeting or an empty
        answer: a message that names attributes always wins over memory. Weak evidence (the
        attributes of a single choice) nudges the scores but is never put to the person as a like.
        """
        if dialogue.asked or dialogue.accepted or dialogue.recommended or feedback is None:
            return None
        if kind not in ("greet", None) or not feedback.is_empty or feedback.intent not in ("greet", "inform"):
            return None
        avoid = set(dialogue.avoid) | set(dialogue.rejected)
        if self.profiles is None or not dialogue.user_id:  # a memory without profiles: its strongest like
            ranked = [a for _, a in sorted(((w, a) for a, w in dialogue.prior if w > 0), reverse=True)]
        else:
            profile = self.profiles.profile(dialogue.user_id)
            ranked = list(profile.likes) if profile is not None else []
        likes = [a for a in ranked if a in self.engine.graph.attr_index and a not in avoid]
        return likes[0] if likes else None

    def route(self, state: TurnState) -> Route:
        kind = (state.get("action") or {}).get("kind")
        return kind if kind in ("ask", "recommend") else "respond"

    def record(self, state: TurnState) -> dict[str, Any]:
        """Remember what is being shown (the question or the list), for the next turn's NLU."""
        if (state.get("action") or {}).get("again"):
            return {}  # shown already: the dialogue went back to it
        action = _action_from_dict(state["action"] or {})
        return {"dialogue": self.engine.record(self._dialogue(state), action).to_dict()}

    def _memory_reply(self, state: TurnState, kind: str, dialogue: DialogueState) -> tuple[Reply, dict[str, Any]]:
        """Replies about the memory itself: what is remembered, forgetting one thing, forget-me."""
        user = state.get("user_id") or ""
        memory = self.memory if isinstance(self.memory, VisibleMemory) else None
        extra: dict[str, Any] = {}
        if kind == "confirm_forget":
            text = forget_me_question()
            extra["confirming_forget"] = True
        elif kind == "forgotten":  # the front door deletes everything once this turn is over
            text = "Done: I've forgotten everything about you. If we talk again, it's a fresh start."
        elif memory is None:
            text = "I don't keep memories about anyone here, so there's nothing to show or forget."
        elif kind == "memories":
            text = memories_text(memory.memories(user))
        elif (state.get("action") or {}).get("keep"):
            text = "Okay, I'll keep what I remember. What are you in the mood for?"
        else:
            gone = list(memory.forget_said(user, state.get("message") or ""))
            text = forgot_text(gone)
            dropped = {a for e in gone for a in getattr(e, "attribute_ids", ())}
            if dropped:  # this session stops using it too
                extra["dialogue"] = dialogue.evolve(
                    prior=tuple((a, w) for a, w in dialogue.prior if a not in dropped),
                    avoid=tuple(a for a in dialogue.avoid if a not in dropped)).to_dict()
        return Reply(text=text, action=kind, turn=dialogue.turn), extra  # type: ignore[arg-type]

    def respond(self, state: TurnState) -> dict[str, Any]:
        """Write the reply (persona-aware NLG) and clear this turn's inputs."""
        dialogue = self._dialogue(state)
        data = dict(state.get("action") or {"kind": "error"})
        if data["kind"] in ("memories", "forget", "confirm_forget", "forgotten"):
            reply, extra = self._memory_reply(state, data["kind"], dialogue)
            return {**self._said(state, reply), **extra}
        item = data.pop("item", None)
        facet = data.pop("facet", None)
        confirm = bool(data.pop("confirm", False))
        recs: tuple[Recommendation, ...] = ()
        if data["kind"] in ("ask", "recommend", "clarify") and "candidates" in data:
            action = _action_from_dict(data)
            recs = action.recommendations
        elif data["kind"] == "explain" and item is None:  # about the open question, or nothing yet
            action = Action(kind="explain", attribute=data.get("attribute"), candidates=int(data.get("candidates", 0)))
        else:
            action = Action(kind=data["kind"], candidates=len(self.engine.view(dialogue).candidates))
        if action.kind == "explain" and item is not None:
            recs = (self.engine.explain(dialogue, item),)
        unclear = action.kind == "clarify" and not state.get("problem")  # a message not understood
        plan = ReplyPlan(
            kind=action.kind, turn=dialogue.turn, candidates=action.candidates,
            attribute=dialogue.question if unclear else action.attribute, options=action.options,
            recommendations=recs, accepted=dialogue.accepted, item=item, problem=state.get("problem"),
            examples=self.examples, confirm=confirm, seeds=dialogue.seeds,
            shown=len(dialogue.recommended) if unclear and dialogue.accepted_item is None else 0, facet=facet,
            undone=state.get("undone"), **self._reply_context(state), **self._acknowledged(state, action.kind),
        )
        reply = self._write(plan)
        if reply.action in _KEEPS_OPEN:
            reply = reply.model_copy(update={"pending": self._pending(dialogue)})
        return self._said(state, reply)

    def _said(self, state: TurnState, reply: Reply) -> dict[str, Any]:
        """The turn's reply and transcript lines; this turn's inputs are cleared."""
        said = [{"role": "assistant", "content": reply.text, "action": reply.action}]
        heard = state.get("message")
        if heard is None and state.get("feedback") is not None:
            heard = f"[action] {state['feedback']}"
        lines = ([{"role": "user", "content": heard[:self.max_message_chars]}] if heard else []) + said
        recent = [*(state.get("transcript") or ()), *lines]
        if self.transcript_window is not None:
            recent = recent[-self.transcript_window:]
        return {
            "reply": reply.model_dump(),
            "transcript": recent, "said": lines,
            "message": None, "feedback": None, "problem": None, "action": None, "understood": None,
            "confirming_forget": False, "undone": None,
        }

    @staticmethod
    def _acknowledged(state: TurnState, kind: str) -> _Acknowledged:
        understood = state.get("understood") or {}
        if kind not in ("ask", "recommend", "clarify") or state.get("problem"):
            return {}
        return {"understood": tuple(understood.get("accept", ())),
                "understood_not": tuple(understood.get("reject", ()))}

    def _pending(self, dialogue: DialogueState) -> Pending | None:
        """The question or list still open after a reply about something else."""
        g = self.engine.graph
        if dialogue.question is not None and dialogue.question in g.attr_index:
            attr = g.attributes[g.attr_index[dialogue.question]]
            ids = [a for a in (dialogue.options or (dialogue.question,)) if a in g.attr_index]
            values = [g.attributes[g.attr_index[a]].value for a in ids]
            return Pending(question=Question(attribute=attr.id, facet=attr.facet, value=attr.value,
                                             options=values, option_ids=ids))
        shown = [i for i in dialogue.recommended if i in g.item_index]
        if shown and dialogue.accepted_item is None:
            return Pending(recommendations=[RecommendedItem(id=i, name=g.item_names[g.item_index[i]], why="")
                                            for i in shown])
        return None

    def _write(self, plan: ReplyPlan) -> Reply:
        """The reply; a streaming responder's partial replies go to the graph's custom stream."""
        if not isinstance(self.nlg, StreamingResponder):
            return self.nlg.respond(plan)
        try:
            emit = get_stream_writer()
        except RuntimeError:  # called outside a graph run (e.g. a unit test of this step)
            emit = None
        reply = None
        for reply in self.nlg.stream_respond(plan):
            if emit is not None:
                emit({"reply": reply.model_dump()})
        if reply is None:
            raise RuntimeError("the responder's stream produced no reply")
        return reply

    def _reply_context(self, state: TurnState) -> dict[str, Any]:
        """What the reply's words may depend on: this user's profile, the previous reply, recent turns."""
        user = state.get("user_id")
        turns = [(t["role"], str(t["content"])) for t in state.get("transcript") or ()
                 if t.get("role") in ("user", "assistant")]
        return {
            "profile": self.profiles.profile(user) if self.profiles is not None and user else None,
            "previous": next((text for role, text in reversed(turns) if role == "assistant"), None),
            "message": state.get("message"),
            "history": tuple(turns[-_HISTORY_TURNS:]),
        }

    def reflect(self, state: TurnState) -> dict[str, Any]:
        """Hand the finished turn to long-term memory (a no-op without memory)."""
        user = state.get("user_id")
        kind = (state.get("reply") or {}).get("action")
        # A turn about the memory itself is not about the person ("forget that I like jazz" states nothing).
        if self.memory is None or not user or kind in ("memories", "forget", "confirm_forget", "forgotten"):
            return {}
        if isinstance(self.memory, SessionMemory):
            return {"memory_record": self.memory.observe_session(user, state, state.get("memory_record"))}
        self.memory.observe(user, state)
        return {}
