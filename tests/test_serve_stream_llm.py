"""Streaming over real HTTP with a chat model that writes word by word (a fake model, a real uvicorn server)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langchain_core.language_models import GenericFakeChatModel

from crs import PolicySettings, Recommender, Settings
from crs.kb import KnowledgeGraph
from crs.language.llm.config import LLMSettings
from crs.ui.http_api import create_app
from tests.conftest import TOY_VOCAB
from tests.live_server import free_port

TEXT = "Kind of Blue and Blue Train: pure jazz."


class SlowModel(GenericFakeChatModel):
    """Writes each piece after a pause, as a remote model does."""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for chunk in super()._stream(*args, **kwargs):
            time.sleep(0.05)
            yield chunk


@pytest.fixture
def server(tmp_path: Path, toy_graph: KnowledgeGraph) -> Iterator[str]:
    settings = Settings(state_dir=tmp_path, memory=False, policy=PolicySettings(top_k=2),
                        llm=LLMSettings(understand=False))
    model = SlowModel(messages=iter([TEXT] * 10))
    rec = Recommender(toy_graph, vocabulary=TOY_VOCAB, settings=settings, llm=model)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, tokens=None, recommender=rec), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_stream_carries_the_reply_as_it_grows(server: str) -> None:
    body = {"user_id": "ann", "session_id": "s", "text": "jazz from the 1950s"}
    with httpx.stream("POST", f"{server}/v1/chat/stream", json=body, timeout=30) as response:
        assert response.status_code == 200
        events = []
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))
    names = [name for name, _ in events]
    assert len(events) > 3 and names[-1] == "done" and set(names[:-1]) == {"reply"}
    texts = [data["text"] for _, data in events]
    assert all(texts[i + 1].startswith(texts[i].rstrip()) for i in range(len(texts) - 1))
    final = events[-1][1]
    assert final["text"] == TEXT and final["action"] == "recommend"
    assert [r["id"] for r in final["recommendations"]] == ["kind-of-blue", "blue-train"]


def test_a_client_that_leaves_mid_stream_frees_the_conversation(server: str) -> None:
    body = {"user_id": "bob", "session_id": "s", "text": "jazz from the 1950s"}
    with httpx.stream("POST", f"{server}/v1/chat/stream", json=body, timeout=30) as response:
        next(response.iter_lines())  # the first event line, then hang up
    # the conversation is not left locked, and the unfinished turn was not kept: this is turn 1
    reply = httpx.post(f"{server}/v1/chat", json={**body, "text": "just recommend something"}, timeout=30)
    assert reply.status_code == 200 and reply.json()["turn"] == 1
