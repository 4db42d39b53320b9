"""The API's parts on their own: tokens, readiness when a store is down, Telegram's button codes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crs import Recommender, Reply, Settings
from crs.kb import KnowledgeGraph
from crs.memory import ReflectiveMemory
from crs.reasoning.state import DialogueState
from crs.ui.http_api import create_app
from crs.ui.server import NoTokens, resolve_tokens
from crs.ui.telegram import TelegramConfigError, _action_for, callback_code, keyboard, with_env
from crs.ui.tenants import TenantError, parse_tokens
from crs.ui.web import QuickReply
from tests.conftest import TOY_VOCAB


def test_token_lists_are_checked_and_the_environment_wins() -> None:
    with pytest.raises(TenantError, match="tenant 'Shop!'"):
        parse_tokens("Shop!:long-enough-token")
    with pytest.raises(TenantError, match="at least 8 characters"):
        parse_tokens("shop:short")
    with pytest.raises(TenantError, match="share a token"):
        parse_tokens("a:same-token-1,b:same-token-1")
    with pytest.raises(TenantError, match="given twice"):
        parse_tokens("a:token-aaaa-1,a:token-aaaa-2")
    settings = Settings(serve={"tokens": {"fromfile": "file-token-123"}})
    assert resolve_tokens(settings, {}).tenants == ["fromfile"]
    assert resolve_tokens(settings, {"CRS_API_TOKENS": "env:env-token-123"}).tenants == ["env"]
    with pytest.raises(NoTokens, match="--insecure-no-auth"):
        resolve_tokens(Settings(), {})
    assert resolve_tokens(Settings(), {}, insecure=True) is None


def test_tokens_in_a_settings_file_are_not_printed(tmp_path: Path) -> None:
    settings = Settings(serve={"tokens": {"shop": "file-token-123"}})
    assert "file-token-123" not in repr(settings) and "file-token-123" not in str(settings.serve)


def test_memory_that_does_not_answer_is_503_and_not_ready(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    down = ReflectiveMemory(None, disabled_reason="cannot reach the Chroma server at 127.0.0.1:9")
    settings = Settings(state_dir=tmp_path)
    rec = Recommender(toy_graph, vocabulary=TOY_VOCAB, settings=settings, memory=down)
    with TestClient(create_app(settings, tokens=None, recommender=rec)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["conversations"] == "ok"
        assert "cannot reach the Chroma server" in ready.json()["checks"]["memory"]
        listed = client.get("/v1/users/u1/memories")
        assert listed.status_code == 503 and listed.json()["error"]["code"] == "memory_unavailable"
        # the conversation itself still works without memory
        assert client.post("/v1/chat", json={"user_id": "u1", "session_id": "s", "text": "jazz"}).status_code == 200
        # forget-me deletes what it can and says, with a 503, what is left
        forgot = client.delete("/v1/users/u1")
        assert forgot.status_code == 503 and forgot.json()["error"]["code"] == "partly_forgotten"
        assert "long-term memories" in forgot.json()["error"]["message"]
        assert rec.state("default/u1", "s") is None  # the conversation went all the same


def test_without_memory_in_the_settings_ready_says_so(tmp_path: Path, toy_graph: KnowledgeGraph) -> None:
    settings = Settings(state_dir=tmp_path, memory=False)
    rec = Recommender(toy_graph, vocabulary=TOY_VOCAB, settings=settings)
    with TestClient(create_app(settings, tokens=None, recommender=rec)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["memory"].startswith("off")


def test_telegram_needs_its_token_and_a_valid_secret() -> None:
    with pytest.raises(TelegramConfigError, match="CRS_TELEGRAM_TOKEN"):
        with_env(Settings(), {})
    with pytest.raises(TelegramConfigError, match="CRS_TELEGRAM_SECRET"):
        with_env(Settings(), {"CRS_TELEGRAM_TOKEN": "1:x", "CRS_TELEGRAM_SECRET": "has spaces"})
    ok = with_env(Settings(), {"CRS_TELEGRAM_TOKEN": "1:x", "CRS_TELEGRAM_SECRET": "s3cret_-X"})
    assert ok.serve.telegram.token is not None and ok.serve.telegram.token.get_secret_value() == "1:x"


def test_button_codes_are_short_and_resolve_against_the_current_state() -> None:
    reply = Reply.model_validate({
        "text": "Jazz?", "action": "ask", "turn": 4,
        "question": {"attribute": "genre:jazz", "facet": "genre", "value": "jazz",
                     "options": ["jazz", "rock"], "option_ids": ["genre:jazz", "genre:rock"]}})
    markup = keyboard(reply)
    assert markup is not None
    rows = [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]
    assert rows == [[("Yes", "4:y"), ("No", "4:n")], [("rock", "4:o1")], [("Just recommend", "4:now")]]
    state = DialogueState(turn=4, question="genre:jazz", options=("genre:jazz", "genre:rock"),
                          recommended=("a" * 60, "b"))
    assert _action_for("o1", state) == {"type": "attributes", "accept": ["genre:rock"]}
    assert _action_for("y", state) == {"type": "answer", "yes": True}
    assert _action_for("i0", state) == {"type": "accept_item", "item_id": "a" * 60}  # long ids never travel
    assert _action_for("none", state) == {"type": "reject_items", "item_ids": ["a" * 60, "b"]}
    assert _action_for("more", state) == {"type": "reject_items", "item_ids": ["a" * 60, "b"], "show_more": True}
    assert _action_for("o7", state) is None and _action_for("i9", state) is None
    assert _action_for("y", DialogueState(turn=5)) is None  # no question pending: nothing to say yes to
    assert callback_code(QuickReply("Start over", {"type": "start_over"}), reply) == "4:over"


class _CountingRecommender(Recommender):
    """Counts how many turns run at once (each takes a while, so overlapping ones show)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.running = self.most = 0
        self.guard = threading.Lock()

    def chat(self, user_id: str, session_id: str, text: str, *, request_id: str | None = None) -> Reply:
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            return super().chat(user_id, session_id, text, request_id=request_id)
        finally:
            with self.guard:
                self.running -= 1


@pytest.mark.parametrize("width", [2, 8])
def test_turns_run_at_most_turn_threads_at_once(tmp_path: Path, toy_graph: KnowledgeGraph, width: int) -> None:
    settings = Settings(state_dir=tmp_path, memory=False, serve={"turn_threads": width})
    rec = _CountingRecommender(toy_graph, vocabulary=TOY_VOCAB, settings=settings)
    with TestClient(create_app(settings, tokens=None, recommender=rec)) as client:
        def one(n: int) -> dict[str, object]:
            response = client.post("/v1/chat", json={"user_id": f"u{n}", "session_id": "s", "text": "jazz"})
            assert response.status_code == 200
            return dict(response.json())

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(one, range(12)))
    assert rec.most == min(width, 12)  # never more at once, and the pool is used to its width
    assert all(r["text"] for r in replies) and rec.running == 0
    assert all(rec.state(f"default/u{n}", "s") is not None for n in range(12))  # every turn ran
