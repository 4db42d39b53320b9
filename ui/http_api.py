"""The HTTP API for bots: ``create_app(settings, tokens=...)`` gives a FastAPI app.

Settings in, app out, nothing at module level: every worker process builds its own app and its
own :class:`~crs.Recommender` (at startup, unless one is passed in). Each bearer token belongs to
one tenant, and a tenant's user ids are its own (see :mod:`crs.ui.tenants`).
"""

import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import anyio
from fastapi import Depends, FastAPI, Header, Path
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crs import InvalidInput, Recommender, Reply, Settings
from crs.ui.errors import ApiError, error_response, install_error_handlers
from crs.ui.metrics import CONTENT_TYPE_LATEST, ApiMetrics
from crs.ui.pump import ThreadPump
from crs.ui.readiness import readiness
from crs.ui.schemas import (
    ID_PATTERN,
    ChatRequest,
    ErrorBody,
    ForgetReport,
    MemoryOut,
    ReplyOut,
    chat_request,
    reply_out,
)
from crs.ui.tenants import Tokens, scoped_user

if TYPE_CHECKING:  # create_app's request model, made at run time with the message limit, is a ChatRequest
    Chat: TypeAlias = ChatRequest

__all__ = ["INSECURE_TENANT", "create_app"]

log = logging.getLogger(__name__)

#: the one tenant of a server started with --insecure-no-auth
INSECURE_TENANT = "default"

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in ((400, "the body is not valid JSON"), (401, "missing or wrong bearer token"),
                       (404, "unknown session, user or memory"), (413, "the body is too large"),
                       (422, "a field is missing, unknown or invalid"),
                       (503, "a store does not answer"))
}
# One event of /v1/chat/stream (OpenAPI 3.2's itemSchema for text/event-stream).
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["reply", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"oneOf": [
            {"$ref": "#/components/schemas/ReplyOut"}, {"$ref": "#/components/schemas/ErrorBody"}]}},
    },
}
_UserId = Annotated[str, Path(pattern=ID_PATTERN, description="the person, in your tenant's own ids")]
_MemoryId = Annotated[str, Path(pattern=ID_PATTERN)]
_IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=ID_PATTERN,
    description="your id for this turn: a retry with the same key returns the same reply, the turn applied once")]


def create_app(
    settings: Settings,
    *,
    tokens: Tokens | None,
    recommender: Recommender | None = None,
    telegram: bool = False,
) -> FastAPI:
    """The API over ``recommender`` (built from ``settings`` at startup when not given).

    ``tokens=None`` serves without authentication, as the one tenant ``default``; only
    ``crs serve --insecure-no-auth`` asks for that. ``telegram`` adds the Telegram webhook
    (``POST /telegram/webhook``, see :mod:`crs.ui.telegram`).
    """
    metrics = ApiMetrics()
    if not TYPE_CHECKING:  # a class made at run time is no type to a checker: it sees the alias above
        Chat = chat_request(settings.max_message_chars)  # noqa: N806 - a model class
    box: dict[str, Any] = {"rec": recommender}
    # Turns get a pool of their own, a few threads wide (settings.serve.turn_threads): sixteen
    # turns sharing the interpreter lock at once each take sixteen times as long, while the same
    # turns a few at a time finish in order (p95 137 -> 97 ms at 16 clients, at a higher throughput;
    # benchmarks/out/api_load_no_memory_threads{40,4}_quiet.json). Requests waiting for a thread cost nothing.
    turns: dict[str, anyio.CapacityLimiter] = {}

    async def on_turn_thread(fn: Any, *args: Any) -> Any:
        if "limiter" not in turns:  # made inside the event loop that uses it
            turns["limiter"] = anyio.CapacityLimiter(settings.serve.turn_threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=turns["limiter"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if box["rec"] is None:
            box["rec"] = await run_in_threadpool(Recommender.from_settings, settings)
        # What starting loaded (catalog, model, libraries) stays for good: out of the collector's
        # sight, a full collection walks only what turns made. At 16 clients with memory on, p99
        # 178 -> 129 ms (benchmarks/out/api_load_before_gc_freeze.json against api_load_quiet.json
        # as committed with f8b5921).
        gc.collect()
        gc.freeze()
        bot = None
        if telegram:
            from crs.ui.telegram import TelegramBot

            bot = TelegramBot(box["rec"], settings.serve.telegram)
            await bot.start()
            app.state.telegram = bot
        try:
            yield
        finally:
            if bot is not None:
                await bot.stop()

    app = FastAPI(
        title="crs",
        summary="A conversational recommender for bots: chat turns, streaming, memories, forget-me.",
        version="1",
        lifespan=lifespan,
        responses={422: _ERRORS[422]},
    )
    app.state.metrics = metrics
    install_error_handlers(app, on_error=lambda code: metrics.errors.labels(code).inc())
    app.add_middleware(_LimitBody, limit=settings.serve.max_body_bytes)
    app.add_middleware(_CountRequests, metrics=metrics)
    bearer = HTTPBearer(auto_error=False, description="a tenant's token (CRS_API_TOKENS=tenant:token)")

    def rec() -> Recommender:
        built = box["rec"]
        if built is None:
            raise ApiError(503, "starting", "the server is still starting")
        return built  # type: ignore[no-any-return]

    def tenant(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        if tokens is None:
            return INSECURE_TENANT
        found = tokens.tenant_of(credentials.credentials) if credentials is not None else None
        if found is None:
            reason = "a bearer token is required" if credentials is None else "the bearer token is not valid"
            raise ApiError(401, "unauthorized", reason, headers={"WWW-Authenticate": "Bearer"})
        return found

    Tenant = Annotated[str, Depends(tenant)]  # noqa: N806 - a type alias

    def turn(body: ChatRequest, user: str, key: str | None = None) -> Reply:
        """One turn on a worker thread; bad input becomes a 4xx, never a 500. ``key`` (the
        Idempotency-Key header) makes a retry return the turn's reply instead of running it again."""
        r = rec()
        if body.text is not None:
            try:
                return r.chat(user, body.session_id, body.text, request_id=key)
            except InvalidInput as exc:
                raise ApiError(422, "invalid_input", str(exc)) from None
        if r.state(user, body.session_id) is None:
            raise ApiError(404, "unknown_session", f"there is no session {body.session_id!r} for this user; "
                           "start it with a text message")
        try:
            return r.act(user, body.session_id, body.action.model_dump(), request_id=key)  # type: ignore[union-attr]
        except InvalidInput as exc:
            raise ApiError(422, "invalid_action", str(exc)) from None

    def counted(tenant_name: str, kind: str, started: float) -> None:
        metrics.turns.labels(tenant_name, kind).inc()
        metrics.turn_seconds.labels(kind).observe(time.perf_counter() - started)

    @app.post("/v1/chat", response_model=ReplyOut, responses=_ERRORS, tags=["chat"])
    async def chat(body: Chat, who: Tenant, idempotency_key: _IdempotencyKey = None) -> dict[str, Any]:
        """One turn: the person's text or action in, the bot's reply out.

        Send an ``Idempotency-Key`` (an id of your own, new for each turn) to retry safely: if
        the connection broke after the turn was done, the retry gets the same reply, and the
        turn is not applied twice.
        """
        started = time.perf_counter()
        reply = await on_turn_thread(turn, body, scoped_user(who, body.user_id), idempotency_key)
        counted(who, "text" if body.text is not None else "action", started)
        return reply_out(reply)

    @app.post("/v1/chat/stream", response_class=StreamingResponse, tags=["chat"],
              responses={**_ERRORS, 200: {"description": "server-sent events: `reply` (the reply so far, "
                                          "repeated as it grows), then `done` (the final reply)",
                                          "content": {"text/event-stream": {"itemSchema": _SSE_EVENT}}}})
    async def chat_stream(body: Chat, who: Tenant) -> StreamingResponse:
        """The same turn as ``/v1/chat``, as server-sent events carrying the growing reply."""
        started, user = time.perf_counter(), scoped_user(who, body.user_id)
        if body.action is not None:
            reply = await on_turn_thread(turn, body, user)
            counted(who, "action", started)
            return _sse([("done", reply)])
        r = rec()
        pump = ThreadPump(lambda: r.chat_stream(user, body.session_id, body.text or ""))
        kind, first = await pump.get()  # the first step runs before the response starts: errors get a status
        if kind == "error":
            if isinstance(first, InvalidInput):
                raise ApiError(422, "invalid_input", str(first)) from None
            raise first
        if kind == "end":
            raise ApiError(500, "internal_error", "the turn gave no reply")

        async def events() -> AsyncIterator[str]:
            current = first
            try:
                while True:
                    kind, value = await pump.get()
                    if kind == "item":
                        yield _event("reply", current)
                        current = value
                    elif kind == "end":
                        yield _event("done", current)
                        counted(who, "stream", started)
                        return
                    else:
                        log.error("a streamed turn failed", exc_info=value)
                        metrics.errors.labels("internal_error").inc()
                        yield "event: error\ndata: " + json.dumps({"error": {
                            "code": "internal_error", "message": "the reply could not be finished"}}) + "\n\n"
                        return
            finally:
                pump.stop.set()  # a client that left: the turn is abandoned (and rolled back) on its thread

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/v1/users/{user_id}/memories", response_model=list[MemoryOut], responses=_ERRORS, tags=["memory"])
    async def memories(user_id: _UserId, who: Tenant) -> list[dict[str, Any]]:
        """What is remembered about a person (memories that still hold), newest first."""
        entries = await run_in_threadpool(_memory_call, rec().memories, scoped_user(who, user_id))
        return [_memory_out(e) for e in entries]

    @app.delete("/v1/users/{user_id}/memories/{memory_id}", status_code=204, responses=_ERRORS, tags=["memory"])
    async def forget_memory(user_id: _UserId, memory_id: _MemoryId, who: Tenant) -> Response:
        """Delete one memory of a person."""
        found = await run_in_threadpool(_memory_call, rec().forget_memory, scoped_user(who, user_id), memory_id)
        if not found:
            raise ApiError(404, "unknown_memory", f"user {user_id!r} has no memory {memory_id!r}")
        return Response(status_code=204)

    @app.delete("/v1/users/{user_id}", response_model=ForgetReport, responses=_ERRORS, tags=["memory"])
    async def forget_user(user_id: _UserId, who: Tenant) -> dict[str, Any]:
        """Forget-me: every memory, the profile and every conversation of a person."""
        report = dict(await run_in_threadpool(_memory_call, rec().forget, scoped_user(who, user_id)))
        left = report.pop("not_deleted", [])
        not_scrubbed = report.pop("not_scrubbed", [])
        if left:  # what could go went; say what is left, and that a retry is needed
            raise ApiError(503, "partly_forgotten", "not everything could be deleted; try again: " + "; ".join(left))
        if not any(report.values()):
            raise ApiError(404, "unknown_user", f"nothing is stored about user {user_id!r}")
        return {"user_id": user_id, "deleted": report, "not_scrubbed": not_scrubbed}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "a store does not answer"}})
    async def readyz() -> JSONResponse:
        """Ready: the conversation store and the memory store answer."""
        if box["rec"] is None:
            return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
        checks = await run_in_threadpool(readiness, box["rec"])
        ok = all(v == "ok" or v.startswith("off") for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        """Prometheus text format: turns, turn latency, errors, requests."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _require_action_types(FastAPI.openapi(app))  # type: ignore[method-assign]
    if telegram:
        from crs.ui.telegram import add_webhook_route

        add_webhook_route(app, settings.serve.telegram)
    return app


def _require_action_types(schema: dict[str, Any]) -> dict[str, Any]:
    """An action's ``type`` has a default in Python, but on the wire it picks the action: required."""
    for component in schema.get("components", {}).get("schemas", {}).values():
        kind = component.get("properties", {}).get("type", {})
        if "const" in kind and "default" in kind:
            required = component.setdefault("required", [])
            if "type" not in required:
                required.insert(0, "type")
    return schema


def _memory_call(function: Any, *args: Any) -> Any:
    from crs.memory import MemoryStoreError

    try:
        return function(*args)
    except MemoryStoreError as exc:
        raise ApiError(503, "memory_unavailable", f"long-term memory does not answer: {exc}") from None
    except InvalidInput as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None


def _memory_out(entry: Any) -> dict[str, Any]:
    return {"id": entry.id, "kind": entry.kind, "text": entry.text, "attribute_ids": list(entry.attribute_ids),
            "item_ids": list(entry.item_ids), "explicit": entry.explicit, "session_id": entry.session_id,
            "created_at": entry.created_at, "confidence": entry.confidence}


def _event(name: str, reply: Reply) -> str:
    return f"event: {name}\ndata: {json.dumps(reply_out(reply), ensure_ascii=False)}\n\n"


def _sse(events: list[tuple[str, Reply]]) -> StreamingResponse:
    def body() -> Iterator[str]:
        for name, reply in events:
            yield _event(name, reply)

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


class _CountRequests:
    """Counts every request by route template (never the raw path: ids would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status["code"])).inc()



class _LimitBody:
    """413 for a body over ``limit`` bytes: at once when Content-Length says so, else as it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = error_response(413, "body_too_large", f"the request body is larger than {self.limit:,} bytes")
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"the request body is larger than {self.limit:,} bytes")
            return message

        await self.app(scope, counted, send)
