"""``crs serve`` as a real process on loopback: auth, tenants, streaming, errors, parallel users."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.live_server import crs_serve

TOKENS = {"acme": "acme-token-123", "globex": "globex-token-456"}
ACME = {"Authorization": f"Bearer {TOKENS['acme']}"}
GLOBEX = {"Authorization": f"Bearer {TOKENS['globex']}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("serve")
    settings = home / "crs.toml"
    settings.write_text("max_message_chars = 500\n\n[serve]\nmax_body_bytes = 4096\n", "utf-8")
    env = {"CRS_API_TOKENS": ",".join(f"{t}:{k}" for t, k in TOKENS.items())}
    with crs_serve(home, "--settings", str(settings), env=env) as (url, _):
        yield url


def chat(url: str, headers: dict[str, str], user: str, session: str, text: str | None = None,
         action: dict[str, object] | None = None) -> httpx.Response:
    body: dict[str, object] = {"user_id": user, "session_id": session}
    body.update({"text": text} if text is not None else {"action": action})
    return httpx.post(f"{url}/v1/chat", json=body, headers=headers, timeout=60)


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


# ------------------------------------------------------------------ authentication
def test_missing_or_wrong_token_is_401_and_health_needs_none(server: str) -> None:
    missing = chat(server, {}, "u1", "s1", "jazz")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = chat(server, {"Authorization": "Bearer acme-token-12"}, "u1", "s1", "jazz")
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
    assert httpx.get(f"{server}/v1/users/u1/memories", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert httpx.delete(f"{server}/v1/users/u1").status_code == 401
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"conversations": "ok", "memory": "ok"}


def test_a_turn_returns_the_reply_object_of_crs_chat_json(server: str) -> None:
    first = chat(server, ACME, "ann", "s1", "something calm from the 60s")
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"text", "action", "question", "recommendations", "candidates", "turn", "pending"}
    assert body["action"] == "ask" and body["turn"] == 1 and body["candidates"] > 0
    assert set(body["question"]) == {"facet", "value", "options", "option_ids"}
    # a button press: the first offered value, sent back by id
    option = body["question"]["option_ids"][0]
    second = chat(server, ACME, "ann", "s1", action={"type": "attributes", "accept": [option]})
    assert second.status_code == 200 and second.json()["turn"] == 2
    assert second.json()["candidates"] <= body["candidates"]


def test_a_clarification_keeps_the_open_question_with_its_ids(server: str) -> None:
    asked = chat(server, ACME, "kim", "s1", "jazz").json()
    unclear = chat(server, ACME, "kim", "s1", "qwzx blorp").json()
    assert unclear["pending"] is not None
    assert unclear["pending"]["question"]["option_ids"] == asked["question"]["option_ids"]
    # the open question can still be answered by a button
    assert chat(server, ACME, "kim", "s1", action={"type": "answer", "yes": True}).status_code == 200


# ------------------------------------------------------------------ tenants
def test_tenants_user_ids_are_their_own(server: str) -> None:
    assert chat(server, ACME, "u1", "s1", "I love jazz").status_code == 200
    picks = chat(server, ACME, "u1", "s1", "just recommend something").json()["recommendations"]
    chosen = chat(server, ACME, "u1", "s1", action={"type": "accept_item", "item_id": picks[0]["id"]})
    assert chosen.json()["action"] == "accepted"  # a natural end: the session is reflected on
    mine = httpx.get(f"{server}/v1/users/u1/memories", headers=ACME).json()
    assert any("jazz" in m["text"].lower() for m in mine), mine
    # globex's u1 is another person: no memories, no conversation, no way to touch acme's
    assert httpx.get(f"{server}/v1/users/u1/memories", headers=GLOBEX).json() == []
    theirs = chat(server, GLOBEX, "u1", "s1", action={"type": "answer", "yes": True})
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "unknown_session"
    memory_id = mine[0]["id"]
    stolen = httpx.delete(f"{server}/v1/users/u1/memories/{memory_id}", headers=GLOBEX)
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "unknown_memory"
    assert httpx.delete(f"{server}/v1/users/u1", headers=GLOBEX).status_code == 404
    assert [m["id"] for m in httpx.get(f"{server}/v1/users/u1/memories", headers=ACME).json()] == \
        [m["id"] for m in mine]
    # acme deletes its own memory, then forgets the person: everything goes
    assert httpx.delete(f"{server}/v1/users/u1/memories/{memory_id}", headers=ACME).status_code == 204
    assert memory_id not in {m["id"] for m in httpx.get(f"{server}/v1/users/u1/memories", headers=ACME).json()}
    forgot = httpx.delete(f"{server}/v1/users/u1", headers=ACME)
    assert forgot.status_code == 200 and forgot.json()["deleted"]["threads"] == 1
    assert httpx.get(f"{server}/v1/users/u1/memories", headers=ACME).json() == []
    again = chat(server, ACME, "u1", "s1", action={"type": "answer", "yes": True})
    assert again.status_code == 404  # the conversation went too


def test_memory_talk_over_the_api_is_a_reply_not_a_500(server: str) -> None:
    """Replies about memory ("what do you remember", "forget everything") have their own kinds."""
    assert chat(server, ACME, "mia", "s1", "I can't stand metal").status_code == 200
    told = chat(server, ACME, "mia", "s1", "what do you remember about me?")
    assert told.status_code == 200 and told.json()["action"] == "memories"
    assert "metal" in told.json()["text"]
    stranger = chat(server, GLOBEX, "mia", "s1", "what do you remember about me?")
    assert stranger.status_code == 200 and "metal" not in stranger.json()["text"]
    asked = chat(server, ACME, "mia", "s1", "forget everything about me")
    assert asked.status_code == 200 and asked.json()["action"] == "confirm_forget"


# ------------------------------------------------------------------ streaming
def test_stream_carries_the_growing_reply_and_ends_with_the_final_one(server: str) -> None:
    with httpx.stream("POST", f"{server}/v1/chat/stream", headers=ACME, timeout=60,
                      json={"user_id": "sam", "session_id": "s1", "text": "rock from the 90s"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert [name for name, _ in events][-1] == "done"
    assert all(name == "reply" for name, _ in events[:-1])
    texts = [data["text"] for _, data in events]
    assert all(later.startswith(earlier) or earlier == "" for earlier, later in itertools.pairwise(texts))
    final = events[-1][1]
    assert final["turn"] == 1 and final["action"] in ("ask", "recommend")
    # the streamed turn is a real turn: the session goes on from it
    follow = chat(server, ACME, "sam", "s1", "just recommend something").json()
    assert follow["turn"] == 2 and follow["action"] == "recommend"
    # an action streams too (one final event), and an unknown session is a 404 before any event
    picked = httpx.post(f"{server}/v1/chat/stream", headers=ACME, timeout=60,
                        json={"user_id": "sam", "session_id": "s1",
                              "action": {"type": "accept_item", "item_id": follow["recommendations"][0]["id"]}})
    assert [name for name, _ in sse_events(picked.text)] == ["done"]
    assert sse_events(picked.text)[0][1]["action"] == "accepted"
    unknown = httpx.post(f"{server}/v1/chat/stream", headers=ACME,
                         json={"user_id": "sam", "session_id": "nope", "action": {"type": "recommend_now"}})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_session"


# ------------------------------------------------------------------ bad input
def test_bad_input_gets_clear_json_errors_never_a_500(server: str) -> None:
    url = f"{server}/v1/chat"
    json_ct = {**ACME, "Content-Type": "application/json"}
    bad = httpx.post(url, content=b'{"user_id": "u", ', headers=json_ct)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    extra = httpx.post(url, json={"user_id": "u", "session_id": "s", "text": "hi", "mood": "x"}, headers=ACME)
    assert extra.status_code == 422 and extra.json()["error"]["code"] == "unknown_field"
    assert "'mood'" in extra.json()["error"]["message"]
    both = httpx.post(url, json={"user_id": "u", "session_id": "s", "text": "hi", "action": {"type": "why"}},
                      headers=ACME)
    assert both.status_code == 422 and "exactly one of 'text' or 'action'" in both.json()["error"]["message"]
    huge = httpx.post(url, content=json.dumps({"user_id": "u", "session_id": "s", "text": "x" * 5000}),
                      headers=json_ct)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as the body arrives
        yield b'{"user_id": "u", "session_id": "s", "text": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    streamed = httpx.post(url, content=chunks(), headers=json_ct)
    assert streamed.status_code == 413
    long = httpx.post(url, json={"user_id": "u", "session_id": "s", "text": "z" * 501}, headers=ACME)
    assert long.status_code == 422 and "text is 501 characters; the limit is 500" in long.json()["error"]["message"]
    empty = httpx.post(url, json={"user_id": "u", "session_id": "s", "text": "   "}, headers=ACME)
    assert empty.status_code == 422 and "text must not be empty" in empty.json()["error"]["message"]
    bad_id = httpx.post(url, json={"user_id": "", "session_id": "s", "text": "hi"}, headers=ACME)
    assert bad_id.status_code == 422 and bad_id.json()["error"]["details"][0]["where"] == "user_id"
    bad_action = httpx.post(url, json={"user_id": "u", "session_id": "s", "action": {"type": "dance"}},
                            headers=ACME)
    assert bad_action.status_code == 422
    # found by Schemathesis: a null text beside a malformed action was once a 500
    null_text = httpx.post(url, json={"user_id": "u", "session_id": "s", "text": None, "action": []}, headers=ACME)
    assert null_text.status_code == 422
    assert {d["where"] for d in null_text.json()["error"]["details"]} == {"text", "action"}
    not_json = httpx.post(url, content=b"user_id=u", headers={**ACME, "Content-Type": "text/plain"})
    assert 400 <= not_json.status_code < 500
    started = chat(server, ACME, "eve", "s1", "jazz")
    assert started.status_code == 200
    unknown_item = chat(server, ACME, "eve", "s1", action={"type": "accept_item", "item_id": "no-such-album"})
    assert unknown_item.status_code == 422 and "no-such-album" in unknown_item.json()["error"]["message"]
    assert chat(server, ACME, "eve", "s1", "no").json()["turn"] == 2  # nothing was lost on the way
    gone = httpx.delete(f"{server}/v1/users/eve/memories/0123abcd", headers=ACME)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_memory"
    assert httpx.delete(f"{server}/v1/users/never-seen", headers=ACME).json()["error"]["code"] == "unknown_user"
    assert httpx.get(f"{server}/v1/users/bad%20id/memories", headers=ACME).status_code == 422


def test_metrics_count_turns_latency_and_errors(server: str) -> None:
    chat(server, ACME, "mia", "s1", "jazz")
    chat(server, {}, "mia", "s1", "jazz")
    text = httpx.get(f"{server}/metrics").text
    assert 'crs_turns_total{kind="text",tenant="acme"}' in text
    assert "crs_turn_seconds_bucket" in text and 'crs_turn_seconds_count{kind="text"}' in text
    assert 'crs_errors_total{code="unauthorized"}' in text
    assert 'crs_http_requests_total{method="POST",route="/v1/chat",status="200"}' in text


def test_openapi_schema_lists_every_endpoint_with_bearer_auth(server: str) -> None:
    schema = httpx.get(f"{server}/openapi.json").json()
    assert {"/v1/chat", "/v1/chat/stream", "/v1/users/{user_id}/memories", "/v1/users/{user_id}/memories/{memory_id}",
            "/v1/users/{user_id}", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# ------------------------------------------------------------------ many people at once
GENRES = ["jazz", "rock", "pop", "folk", "electronic", "hip hop", "metal", "soul", "classical", "blues"]
DECADES = ["60s", "70s", "80s", "90s", "2000s"]


def conversation(url: str, headers: dict[str, str], user: int) -> list[dict[str, object]]:
    """Ten turns of one person; each of the 50 asks for their own genre and decade."""
    genre, decade = GENRES[user % 10], DECADES[user // 10 % 5]
    lines = [f"{genre} from the {decade}", "no", "yes", "just recommend something", "why the first one?",
             "none of these", "start over", GENRES[(user + 3) % 10], "yes", "no"]
    with httpx.Client(headers=headers, timeout=120) as client:
        out = []
        for line in lines:
            response = client.post(f"{url}/v1/chat", json={"user_id": f"p{user}", "session_id": f"s{user}",
                                                           "text": line})
            assert response.status_code == 200, response.text
            out.append(response.json())
        return out


@pytest.mark.slow
def test_fifty_parallel_users_ten_turns_each_lose_and_cross_nothing(server: str) -> None:
    with ThreadPoolExecutor(max_workers=50) as pool:
        parallel = list(pool.map(lambda u: conversation(server, ACME, u), range(50)))
    # The same people, one at a time, in the other tenant: every reply must be the same.
    alone = [conversation(server, GLOBEX, u) for u in range(50)]
    for user, (together, by_itself) in enumerate(zip(parallel, alone, strict=True)):
        assert [r["turn"] for r in together] == list(range(1, 11)), f"user {user} lost a turn"
        assert together == by_itself, f"user {user}'s replies differ when others talk at once"
    assert len({json.dumps(p) for p in parallel}) > 25  # people really differ, so a crossed reply shows
