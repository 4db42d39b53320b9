"""The public entry point: a :class:`Recommender` that holds many conversations at once."""

from __future__ import annotations

import copy
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import TypeAdapter, ValidationError

from crs.actions import AnswerQuestion, NoPendingQuestion, UserAction, to_feedback
from crs.graphs import (
    CheckpointError,
    build_conversation_graph,
    delete_user_threads,
    scrub_checkpoints,
    sqlite_checkpointer,
    thread_id,
)
from crs.graphs.checkpoint import (
    KEEP_CHECKPOINTS,
    checkpoint_failure,
    prune_due,
    prune_thread,
    saver_path,
    user_thread_prefix,
)
from crs.graphs.steps import TRANSCRIPT_WINDOW, MemoryHooks, TurnSteps
from crs.graphs.transcript import TranscriptLog, transcript_log_for
from crs.kb import (
    BUNDLED_CATALOG,
    KBError,
    KnowledgeGraph,
    Vocabulary,
    build_graph,
    iter_interaction_pairs,
    load_catalog,
)
from crs.kb.embeddings import default_embedder
from crs.kb.loaders import paused_gc
from crs.language.llm import GroundedResponder, LLMUnderstander, load_chat_model
from crs.language.nlg import ProfileSource, Responder, TemplateNLG
from crs.language.nlu import OfflineNLU, Understander
from crs.language.personas import Persona, PersonaError, resolve_persona
from crs.language.reply import Reply
from crs.locks import KeyedLocks
from crs.reasoning.engine import Engine
from crs.reasoning.scoring import Scorer
from crs.reasoning.state import DialogueState
from crs.settings import Settings, load_settings

if TYPE_CHECKING:  # importing crs.memory at run time would load chromadb for every user of the API
    from crs.memory import MemoryEntry
    from crs.reasoning.policies import BuiltPolicy

__all__ = ["CheckpointError", "InvalidInput", "Recommender", "load_knowledge", "load_policy", "load_scorer"]

logger = logging.getLogger(__name__)
_ACTION = TypeAdapter(UserAction)
_MAX_ID_CHARS = 256


class InvalidInput(ValueError):
    """A call the recommender refuses: the message says what was wrong; nothing has changed."""


def load_knowledge(settings: Settings) -> tuple[KnowledgeGraph, Vocabulary | None]:
    """Build the graph the settings point at: a benchmark dataset or a catalog file."""
    if settings.dataset is not None:
        from crs.kb import load_scpr

        if settings.data_dir is None:
            raise InvalidInput("a dataset needs data_dir (the folder holding lastfm/ and lastfm_star/)")
        return load_scpr(settings.data_dir, settings.dataset).graph, None
    # The catalog's millions of objects are dropped before the cyclic collector ever walks them.
    with paused_gc():
        catalog = load_catalog(settings.catalog or BUNDLED_CATALOG, vocabulary=settings.vocabulary)
        # Streamed (user, item) pairs: a graph needs no more, and 2M records would cost gigabytes.
        interactions = iter_interaction_pairs(settings.interactions) if settings.interactions else ()
        graph, vocabulary = build_graph(catalog, interactions), catalog.vocabulary
        del catalog
    return graph, vocabulary


def load_scorer(
    settings: Settings,
    graph: KnowledgeGraph,
    *,
    progress: Callable[[int, int, float], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> Scorer | None:
    """The scorer the settings choose (see :func:`load_policy`); ``None`` means popularity."""
    built = load_policy(settings, graph, progress=progress, notice=notice)
    return built.scorer if built is not None else None


def load_policy(
    settings: Settings,
    graph: KnowledgeGraph,
    *,
    progress: Callable[[int, int, float], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> BuiltPolicy | None:
    """The registered policy the settings choose, with its scorer ready.

    - ``strategy`` names it; without one, ``best`` when there is a ``model`` file or the
      catalog has interactions, else ``None`` (the engine's popularity ranking, which with no
      interactions ranks every item the same).
    - A policy that needs a trained model and has no ``model`` file gets the catalog's own,
      trained on first use and cached in ``state_dir/models`` (see :mod:`crs.model_cache`).
    """
    has_interactions = bool(graph.user_items)
    name = settings.strategy or ("best" if settings.model is not None or has_interactions else None)
    if name is None:
        return None
    from crs.reasoning.policies import POLICIES, build_policy

    spec = POLICIES.get(name)
    model: Any = settings.model
    try:
        if spec is not None and spec.uses_model and model is None:
            if not has_interactions:
                raise ValueError("it needs a trained model, and the catalog has no interactions to train one on")
            from crs.model_cache import cached_model

            model = cached_model(graph, settings.state_dir, progress=progress, notice=notice)
        return build_policy(name, graph, model=model, top_k=settings.policy.top_k,
                            no_rule=settings.policy.no_rule)
    except (KeyError, ValueError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise InvalidInput(f"cannot use strategy {name!r}: {message}") from None


def _tuned_temperature(built: BuiltPolicy | None) -> float | None:
    """The softmax temperature ``crs train scorer`` tuned with the model, if it tuned one."""
    model = getattr(built.scorer, "model", None) if built is not None else None
    tuned = getattr(model, "meta", {}).get("tuned") if model is not None else None
    value = tuned.get("settings", {}).get("temperature") if isinstance(tuned, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _check_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > _MAX_ID_CHARS:
        raise InvalidInput(f"{kind} is longer than {_MAX_ID_CHARS} characters")
    return value


class Recommender:
    """A conversational recommender: ``chat()`` for text, ``act()`` for buttons.

    Build it from settings (``Recommender.from_settings``) or from objects. Conversations are
    kept per ``(user_id, session_id)`` in the checkpointer and survive a restart when it is a
    file. Calls for different conversations may run in parallel threads; calls for the same
    conversation are serialised.

    Storage stays linear in a conversation's length: the checkpoint holds the dialogue state and
    only the last ``transcript_window`` lines, each thread keeps its newest ``keep_checkpoints``
    checkpoints, and the whole conversation goes to an append-only ``transcripts`` log (by
    default in the checkpoint file itself). ``transcript_window=None, keep_checkpoints=None``
    keep everything in every checkpoint, as before (quadratic: for comparison only).
    """

    def __init__(
        self,
        graph: KnowledgeGraph,
        *,
        engine: Engine | None = None,
        scorer: Scorer | None = None,
        nlu: Understander | None = None,
        nlg: Responder | None = None,
        memory: MemoryHooks | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        vocabulary: Vocabulary | None = None,
        settings: Settings | None = None,
        llm: BaseChatModel | None = None,
        persona: Persona | str | None = None,
        profiles: ProfileSource | None = None,
        transcripts: TranscriptLog | None = None,
        transcript_window: int | None = TRANSCRIPT_WINDOW,
        keep_checkpoints: int | None = KEEP_CHECKPOINTS,
        max_idle_locks: int = 1024,
    ) -> None:
        self.settings = settings or Settings()
        self.graph = graph
        #: the registered policy whose scorer ranks items, or "popularity" (the engine's default)
        self.policy_name = getattr(scorer, "policy_name", None) or ("popularity" if scorer is None else "custom")
        self.engine = engine or Engine(graph, scorer, self.settings.policy)
        embedder = default_embedder() if self.settings.embeddings and nlu is None else None
        self.nlu = nlu or OfflineNLU(graph, embedder, max_chars=self.settings.max_message_chars)
        try:  # the persona and the optional chat model (llm= wins over settings.llm)
            self.persona = resolve_persona(persona if persona is not None else self.settings.persona)
            self.llm = llm if llm is not None else load_chat_model(self.settings.llm)
        except (PersonaError, ValueError) as exc:
            raise InvalidInput(str(exc)) from None
        if self.llm is not None and self.settings.llm.understand:
            self.nlu = LLMUnderstander(self.llm, graph, self.nlu, settings=self.settings.llm)
        self.vocabulary = vocabulary
        self._own_nlg = nlg is not None  # a given responder has its own voice: with_persona refuses
        self.nlg = nlg if nlg is not None else self._persona_nlg(self.persona)
        if profiles is None and isinstance(memory, ProfileSource):
            profiles = memory
        self.memory = memory
        if checkpointer is None and self.settings.checkpoints_url:
            from crs.graphs.postgres import postgres_checkpointer

            checkpointer = postgres_checkpointer(self.settings.checkpoints_url)
        if checkpointer is None:
            checkpointer = sqlite_checkpointer(self.settings.checkpoint_path)
        self.checkpointer = checkpointer
        self.transcripts = transcripts if transcripts is not None else transcript_log_for(
            checkpointer, self.settings.state_dir / "transcripts.sqlite")
        self.keep_checkpoints = keep_checkpoints
        self.steps = TurnSteps(self.engine, self.nlu, self.nlg, memory, transcript_window=transcript_window,
                               max_message_chars=self.settings.max_message_chars, profiles=profiles)
        self.app = build_conversation_graph(self.steps, checkpointer=checkpointer)
        # bounded: idle locks of old conversations and users are forgotten, held ones never
        self._locks: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock, max_idle=max_idle_locks)
        self._user_locks: KeyedLocks[threading.RLock] = KeyedLocks(threading.RLock, max_idle=max_idle_locks)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | str | Path | None = None,
        *,
        training_progress: Callable[[int, int, float], None] | None = None,
        training_notice: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        **kwargs: Any,
    ) -> Recommender:
        """Build everything the settings describe. A catalog with interactions gets the ``best``
        policy's trained scorer (trained on first use: ``training_notice`` gets one line first,
        ``training_progress(epoch, epochs, loss)`` follows it; then cached). ``clock`` is the
        long-term memory's "now" (default: real time; see :class:`crs.memory.OffsetClock`)."""
        if not isinstance(settings, Settings):
            settings = load_settings(settings) if settings is not None else Settings()
        graph, vocabulary = load_knowledge(settings)
        built = None
        if "engine" not in kwargs and "scorer" not in kwargs:
            built = load_policy(settings, graph, progress=training_progress, notice=training_notice)
            kwargs["scorer"] = built.scorer if built is not None else None
            tuned = _tuned_temperature(built)
            if tuned is not None and "temperature" not in settings.policy.model_fields_set:
                # the temperature tuned with the model suits its scores; an explicit setting wins
                policy = settings.policy.model_copy(update={"temperature": tuned})
                settings = settings.model_copy(update={"policy": policy})
        if "checkpointer" not in kwargs:  # first: a damaged file stops the start before memory is opened
            if settings.checkpoints_url:
                from crs.graphs.postgres import postgres_checkpointer

                kwargs["checkpointer"] = postgres_checkpointer(settings.checkpoints_url)
            else:
                kwargs["checkpointer"] = sqlite_checkpointer(settings.checkpoint_path)
        if "memory" not in kwargs and settings.memory:
            from crs.memory import ReflectiveMemory

            memory_clock: dict[str, Any] = {"clock": clock} if clock is not None else {}  # else the memory's own
            kwargs["memory"] = ReflectiveMemory.open(
                settings.state_dir / "memory", host=settings.memory_host, port=settings.memory_port, graph=graph,
                settings=settings.memory_settings,
                # With a Chroma server the writes are HTTP calls that free the GIL: off the reply path
                # they cut the session-end turn (p50) from 685 to 95 ms (benchmarks/out/api_load_memory_server*.json).
                # Embedded Chroma in this process holds the GIL through an upsert, so a background write
                # stalls every thread all the same (no gain measured), and it makes Chroma's leak of freed
                # memory into other users' index files (length.bin) likelier to carry a forgotten user's
                # bytes. In a process of its own (memory_process) the store serves one call at a time, and
                # a write waits on a pipe with the GIL released: to the background, as with a server.
                # With conversations in PostgreSQL (other workers may serve this person), a write stays in
                # its turn, under the user's lock across workers: forget-me on another worker takes that
                # lock too, so no write of this worker can land after it.
                background=(settings.memory_host is not None or settings.memory_process)
                and settings.checkpoints_url is None,
                process=settings.memory_process, **memory_clock)
        rec = cls(graph, vocabulary=vocabulary, settings=settings, **kwargs)
        if built is not None:
            rec.policy_name = settings.strategy or "best"
        return rec

    def _persona_nlg(self, persona: Persona) -> Responder:
        nlg = TemplateNLG(self.graph, self.vocabulary, persona)
        if self.llm is not None and self.settings.llm.generate:
            return GroundedResponder(self.llm, nlg, settings=self.settings.llm)
        return nlg

    def with_persona(self, persona: Persona | str) -> Recommender:
        """The same recommender speaking as another persona (a bundled name, a .yaml file, a Persona).

        Everything else is shared: catalog, engine, memory, conversations and their locks, so a
        conversation goes on where it was and only the wording of the next reply changes.
        """
        if self._own_nlg:
            raise InvalidInput("this recommender was given its own nlg, so it has no persona to change")
        try:
            voice = resolve_persona(persona)
        except (PersonaError, ValueError) as exc:
            raise InvalidInput(str(exc)) from None
        twin = copy.copy(self)
        twin.persona, twin.nlg = voice, self._persona_nlg(voice)
        twin.steps = copy.copy(self.steps)
        twin.steps.nlg = twin.nlg
        twin.app = build_conversation_graph(twin.steps, checkpointer=self.checkpointer)
        return twin

    # ---------------------------------------------------------------- turns
    def chat(self, user_id: str, session_id: str, text: str, *, request_id: str | None = None) -> Reply:
        """One user message in, one reply out. Bad text gets an ``error`` reply, state intact.

        ``request_id`` makes a retry safe: when the conversation's last turn was this request,
        its reply is returned again and the turn is not run a second time.
        """
        if not isinstance(text, str):
            raise InvalidInput(f"text must be a string, got {type(text).__name__}")
        return self._turn(user_id, session_id, {"message": text, "feedback": None}, request_id)

    def chat_stream(self, user_id: str, session_id: str, text: str) -> Iterator[Reply]:
        """Like :meth:`chat`, but yields the reply as it is written (each item is the whole reply
        so far; the last is final). Template replies arrive at once; an LLM's grow word by word.
        """
        if not isinstance(text, str):
            raise InvalidInput(f"text must be a string, got {type(text).__name__}")
        self._config(user_id, session_id)  # bad ids fail here, before anything runs
        # The turn holds locks that belong to the thread that took them, and callers (a web
        # framework's thread pool) may step a generator from one thread and then another: so
        # the turn runs whole on a thread of its own and hands its replies over.
        return _on_one_thread(lambda: self._stream_turn(user_id, session_id, text))

    def _stream_turn(self, user_id: str, session_id: str, text: str) -> Iterator[Reply]:
        config = self._config(user_id, session_id)
        update = {"user_id": user_id, "session_id": session_id, "message": text, "feedback": None}
        tid = config["configurable"]["thread_id"]
        with self._user_lock(user_id), self._across_workers(user_id), self._lock(tid):
            before = self.app.get_state(config)
            out: dict[str, Any] = {}
            try:
                for mode, chunk in self.app.stream(update, config, stream_mode=["custom", "values"],
                                                   durability="exit"):
                    if mode == "custom" and isinstance(chunk, dict) and "reply" in chunk:
                        yield Reply.model_validate(chunk["reply"])
                    elif mode == "values" and isinstance(chunk, dict):
                        out = chunk
            except BaseException:
                self._roll_back(config, before)
                raise
            self._after_turn(config, before, out)

    def act(self, user_id: str, session_id: str, action: UserAction | dict[str, Any], *,
            request_id: str | None = None) -> Reply:
        """A structured action (a button press). Unknown ids raise :class:`InvalidInput`.
        ``request_id`` as in :meth:`chat`."""
        try:
            parsed = _ACTION.validate_python(action)
        except ValidationError as exc:
            raise InvalidInput(f"not a valid action: {exc.errors()[0]['msg']}") from None

        def update(before: Any) -> dict[str, Any]:
            # checked against the state the turn will run on (read under the conversation's lock)
            data = before.values.get("dialogue") if before.values else None
            try:
                feedback = to_feedback(parsed, DialogueState.from_dict(data) if data else None)
                self.engine.validate(feedback)
            except (NoPendingQuestion, KBError) as exc:
                raise InvalidInput(str(exc)) from None
            return {"message": None, "feedback": feedback.to_dict()}

        return self._turn(user_id, session_id, update, request_id)

    def answer(self, user_id: str, session_id: str, yes: bool) -> Reply:
        return self.act(user_id, session_id, AnswerQuestion(yes=yes))

    def _turn(self, user_id: str, session_id: str, update: dict[str, Any] | Callable[[Any], dict[str, Any]],
              request_id: str | None = None) -> Reply:
        """Run one turn under the conversation's locks. ``update`` is the graph's input, or makes
        it from the state before the turn (read once, here, under the locks)."""
        config = self._config(user_id, session_id)
        tid = config["configurable"]["thread_id"]
        with self._user_lock(user_id), self._across_workers(user_id), self._lock(tid):
            before = self.app.get_state(config)
            if request_id is not None and _done(before, request_id):
                return Reply.model_validate(before.values["reply"])  # a retry of the last turn: not run twice
            if callable(update):
                update = update(before)
            try:
                # Durability "exit": the checkpoint is written once, after the whole turn, with the
                # request's id in its metadata (so a retried request is known).
                run = {**config, "metadata": {"crs_request": request_id}} if request_id is not None else config
                out = self.app.invoke({"user_id": user_id, "session_id": session_id, **update}, run,
                                      durability="exit")
            except BaseException as exc:
                self._roll_back(config, before)
                if isinstance(exc, sqlite3.Error):  # the checkpoint file: full disk, damaged file
                    raise checkpoint_failure(saver_path(self.checkpointer), exc, during=(
                        "this turn was not saved, the conversation is as it was before it")) from exc
                raise
            self._after_turn(config, before, out)
            reply = Reply.model_validate(out["reply"])
            if reply.action == "forgotten":  # "forget everything about me", confirmed
                self.forget(user_id)
        return reply

    def _after_turn(self, config: RunnableConfig, before: Any, out: dict[str, Any]) -> None:
        """Log the turn's lines and prune the thread's old checkpoints (the turn is already saved).

        A conversation checkpointed before the log existed (its state has no ``said``) has its
        earlier lines copied in first.
        """
        thread = config["configurable"]["thread_id"]
        old = before.values or {}
        earlier = old.get("transcript") or () if "said" not in old else ()
        self.transcripts.append(thread, out.get("said") or (), earlier=earlier)
        if self.keep_checkpoints is not None and prune_due(self.checkpointer, (before.metadata or {}).get("step")):
            prune_thread(self.checkpointer, thread, self.keep_checkpoints)

    def _roll_back(self, config: RunnableConfig, before: Any) -> None:
        """Make the state before a failed turn current again: a turn applies whole or not at all.

        LangGraph saves the failed step so a run can be resumed; a chat turn is not resumable
        (the user never saw a reply), so the last good checkpoint is copied back on top.
        """
        try:
            if before.values:
                self.app.update_state(before.config, None, as_node="__copy__")
            else:
                self.checkpointer.delete_thread(config["configurable"]["thread_id"])
        except sqlite3.Error as exc:  # the same full disk or damaged file: nothing was saved either
            logger.warning("could not roll back a failed turn on %s: %s", config["configurable"], exc)
        except Exception:  # the original error matters more; keep it, but say what happened
            logger.exception("could not roll back a failed turn on %s", config["configurable"])

    # ---------------------------------------------------------------- state
    def state(self, user_id: str, session_id: str) -> DialogueState | None:
        """Where a conversation stands, or None if it has not started."""
        snapshot = self.app.get_state(self._config(user_id, session_id))
        data = snapshot.values.get("dialogue") if snapshot.values else None
        return DialogueState.from_dict(data) if data else None

    def transcript(self, user_id: str, session_id: str) -> list[dict[str, Any]]:
        """The whole conversation, oldest line first: ``{"role", "content"}`` dicts (assistant
        lines also carry the reply's ``action``; a button press is a user line ``[action] ...``).
        Read from the append-only log, so it is complete however long the conversation ran."""
        config = self._config(user_id, session_id)
        lines = self.transcripts.read(config["configurable"]["thread_id"])
        if lines:
            return lines
        snapshot = self.app.get_state(config)  # a conversation not yet in the log: its state's lines
        return list(snapshot.values.get("transcript", [])) if snapshot.values else []

    def close(self) -> None:
        """Finish the memory writes still queued and stop the memory store's own process, if it
        has one (``memory_process``); at exit this happens by itself. Conversations need nothing."""
        flush = getattr(self.memory, "flush", None)
        if flush is not None:
            flush()
        close = getattr(getattr(self.memory, "store", None), "close", None)
        if close is not None:
            close()

    def end_session(self, user_id: str, session_id: str) -> None:
        """Reflect on a finished session now (it also happens by itself at natural ends)."""
        config = self._config(user_id, session_id)
        reflect = getattr(self.memory, "reflect", None)
        if reflect is not None:
            with self._across_workers(user_id), self._lock(config["configurable"]["thread_id"]):
                # the session's record travels in its state (any worker may have served its turns)
                record = (self.app.get_state(config).values or {}).get("memory_record")
                reflect(user_id, session_id, **({"record": record} if record else {}))

    def forget(self, user_id: str) -> dict[str, Any]:
        """Forget a user entirely: memories, derived profile, reranker and every conversation
        checkpoint, with no byte of them left in the state folder's files.

        It waits for the user's running turns and holds their next ones until it is done, so
        nothing is written back. When part cannot be deleted (the memory store is down), the
        rest still is, and the report's ``not_deleted`` says what is left. With a Chroma server the
        memories are deleted through its API; ``not_scrubbed`` names the server's files, which
        only the server can scrub.
        """
        user = _check_id("user_id", user_id)
        report: dict[str, Any] = {}
        left: list[str] = []
        with self._user_lock(user), self._across_workers(user):
            forget = getattr(self.memory, "forget", None)
            if forget is not None:
                try:
                    report.update(forget(user))
                except Exception as exc:  # the store is down: the checkpoints still go
                    logger.warning("forgetting user %r: %s", user, exc)
                    left.append(f"long-term memories: {exc}")
            report["threads"] = delete_user_threads(self.checkpointer, user)
            try:
                self.transcripts.delete_prefix(user_thread_prefix(user))
                scrub_checkpoints(self.checkpointer)
                self.transcripts.scrub()
            except sqlite3.Error as exc:
                left.append(f"deleted conversations may remain in the checkpoint file's free pages: {exc}")
        if left:
            report["not_deleted"] = left
        return report

    def memories(self, user_id: str) -> list[MemoryEntry]:
        """What is remembered about a user (the memories that still hold), newest first."""
        user = _check_id("user_id", user_id)
        memories = getattr(self.memory, "memories", None)
        return list(memories(user)) if memories is not None else []

    def forget_memory(self, user_id: str, memory_id: str) -> bool:
        """Delete one memory of a user; False when that user has no memory with that id."""
        user = _check_id("user_id", user_id)
        memory = _check_id("memory_id", memory_id)
        forget = getattr(self.memory, "forget_memory", None)
        return bool(forget(user, memory)) if forget is not None else False

    def reset(self, user_id: str, session_id: str) -> None:
        """Forget one conversation entirely (its checkpoints are deleted); the session id may be used
        again for a new one.

        What the old conversation said is still in long-term memory, under the session's id and
        its turn numbers. The new conversation is told to count as the session's next part
        (``#n``), as a "start over" inside it does: else its "I love jazz" in turn 1 would have the
        id of the old one's and be taken for a replay of it, and a change of mind back to jazz
        after "I'm done with jazz" would be lost.
        """
        config = self._config(user_id, session_id)
        with self._across_workers(user_id), self._lock(config["configurable"]["thread_id"]):
            record = (self.app.get_state(config).values or {}).get("memory_record") if self.memory else None
            self.checkpointer.delete_thread(config["configurable"]["thread_id"])
            self.transcripts.delete_thread(config["configurable"]["thread_id"])
            if record:
                from crs.memory.session import next_part

                following = next_part(record, session_id)
                if following is not None:
                    self.app.update_state(config, {"memory_record": following}, as_node="respond")

    def _config(self, user_id: str, session_id: str) -> RunnableConfig:
        user = _check_id("user_id", user_id)
        session = _check_id("session_id", session_id)
        return {"configurable": {"thread_id": thread_id(user, session)}}

    def _lock(self, key: str) -> AbstractContextManager[threading.Lock]:
        return self._locks.hold(key)

    def _across_workers(self, user_id: str) -> AbstractContextManager[None]:
        """A user's lock shared by every worker process (PostgreSQL's advisory lock), when the
        checkpointer has one; one process's SQLite file needs only the locks here."""
        locks = getattr(self.checkpointer, "user_locks", None)
        return locks.hold(user_id) if locks is not None else nullcontext()

    def _user_lock(self, user_id: str) -> AbstractContextManager[threading.RLock]:
        """Held by each turn of a user and by forgetting them: forget-me waits for running turns."""
        return self._user_locks.hold(user_id)


def _done(snapshot: Any, request_id: str) -> bool:
    """The conversation's last checkpoint was written by this request."""
    return bool(snapshot.values) and (snapshot.metadata or {}).get("crs_request") == request_id


def _on_one_thread(make: Callable[[], Iterator[Reply]]) -> Iterator[Reply]:
    """Iterate ``make()`` on a thread of its own, yielding its items here. Closing this
    generator early stops the other after its current item and waits until it has closed
    (on its own thread), so nothing stays locked and an unfinished turn is rolled back."""
    handed: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run() -> None:
        try:
            items = make()
            try:
                for item in items:
                    handed.put(("item", item))
                    if stop.is_set():
                        break
            finally:
                items.close()  # type: ignore[attr-defined]
        except BaseException as exc:
            handed.put(("error", exc))
            return
        handed.put(("end", None))

    worker = threading.Thread(target=run, daemon=True, name="crs-turn")
    worker.start()
    try:
        while True:
            kind, value = handed.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # let it finish its item, close the turn and say so
            try:
                handed.get(timeout=0.05)
            except queue.Empty:
                continue
