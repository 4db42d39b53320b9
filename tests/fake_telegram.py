"""A local fake of the Telegram Bot API on loopback: it answers like Telegram and records every call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT = {"id": 4242, "is_bot": True, "first_name": "crs", "username": "crs_test_bot", "can_join_groups": True,
       "can_read_all_group_messages": False, "supports_inline_queries": False}


class FakeBotApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._next_id = 100

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """The calls since the last take, in order (getMe excluded)."""
        with self._lock:
            calls, self.calls = [c for c in self.calls if c[0] != "getMe"], []
        return calls

    def answer(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            self.calls.append((method, params))
            self._next_id += 1
            message_id = self._next_id
        if method == "getMe":
            return BOT
        if method == "sendMessage":
            message = {"message_id": message_id, "date": int(time.time()), "from": BOT,
                       "chat": {"id": int(params["chat_id"]), "type": "private"}, "text": params["text"]}
            if "reply_markup" in params:
                message["reply_markup"] = params["reply_markup"]
            return message
        return True


def _parse(body: bytes, content_type: str) -> dict[str, Any]:
    is_json = content_type.startswith("application/json")
    raw = json.loads(body or b"{}") if is_json else dict(parse_qsl(body.decode()))
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "reply_markup" and isinstance(value, str):
            value = json.loads(value)
        params[key] = value
    return params


@contextmanager
def fake_bot_api(token: str) -> Iterator[tuple[str, FakeBotApi]]:
    """Yield (base_url for python-telegram-bot, the fake)."""
    api = FakeBotApi(token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            prefix = f"/bot{api.token}/"
            if not self.path.startswith(prefix):
                self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                return
            method = self.path[len(prefix):]
            result = api.answer(method, _parse(body, self.headers.get("Content-Type", "")))
            self._reply(200, {"ok": True, "result": result})

        do_GET = do_POST  # noqa: N815

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bot", api
    finally:
        server.shutdown()
        server.server_close()
