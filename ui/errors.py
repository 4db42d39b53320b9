"""One shape for every error the HTTP API returns: ``{"error": {"code", "message", "details"}}``.

Bad input is always a 4xx that names the problem; a 5xx means the server itself failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from crs.graphs.postgres import is_store_down

__all__ = ["ApiError", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 413: "body_too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests",
               503: "unavailable"}


class ApiError(Exception):
    """Raised by an endpoint: becomes a JSON error with this status and code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, details: Sequence[dict[str, str]] = (),
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": list(details)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _where(loc: Sequence[Any]) -> str:
    # pydantic names union branches in the location ("tagged-union[...]", "none"); people don't
    parts = [str(p) for p in loc
             if p != "body" and not str(p).startswith(("tagged-union[", "function-", "constrained-"))]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any], where: str) -> str:
    kind, ctx = error.get("type"), error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown field {where.rsplit('.', 1)[-1]!r}"
    if kind == "missing":
        return "this field is required"
    if where == "text" and kind in ("string_pattern_mismatch", "string_too_short"):
        return "text must not be empty or only spaces"
    if where == "text" and kind in ("too_long", "string_too_long"):
        return f"text is {len(str(error.get('input', ''))):,} characters; the limit is {ctx.get('max_length', '?'):,}"
    if kind == "union_tag_not_found":
        return f"needs a {ctx.get('discriminator', 'type')} (one of {ctx.get('expected_tags', '...')})"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _validation(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error", "")
        return error_response(400, "invalid_json", f"the request body is not valid JSON{': ' if reason else ''}"
                              f"{reason}")
    # "action: Input should be None" only says that the optional field was given: not the problem
    meaningful = [e for e in errors if tuple(e.get("loc", ()))[-1:] != ("none",)] or errors
    details = []
    for e in meaningful:
        where = _where(e.get("loc", ()))
        details.append({"where": where, "message": _message(e, where)})
    summary = "; ".join(f"{d['where']}: {d['message']}" for d in details[:3])
    code = "unknown_field" if all(e.get("type") == "extra_forbidden" for e in meaningful) else "invalid_request"
    return error_response(422, code, summary or "the request is not valid", details)


def install_error_handlers(app: FastAPI, on_error: Any = None) -> None:
    """Route every error through one JSON shape; ``on_error(code)`` counts them."""

    def counted(response: JSONResponse, code: str) -> JSONResponse:
        if on_error is not None:
            on_error(code)
        return response

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return counted(error_response(exc.status, exc.code, exc.message, headers=exc.headers), exc.code)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        response = _validation(exc)
        return counted(response, "invalid_json" if response.status_code == 400 else "invalid_request")

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        return counted(error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None)), code)

    async def crash(_: Request, exc: Exception) -> JSONResponse:
        if is_store_down(exc):  # not a bug: PostgreSQL is down or restarting; the client may retry
            log.warning("the conversation store does not answer: %s", exc)
            return counted(error_response(503, "conversations_unavailable",
                                          "the conversation store (PostgreSQL) does not answer; try again shortly",
                                          headers={"Retry-After": "1"}), "conversations_unavailable")
        log.exception("unhandled error", exc_info=exc)
        return counted(error_response(500, "internal_error", "the server failed to answer; it has been logged"),
                       "internal_error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, crash)
