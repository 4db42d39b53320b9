"""Several workers on shared stores: conversations in a real PostgreSQL, memories in a real
Chroma server, and ``crs serve --workers 2`` on one port."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from crs import Recommender, Settings
from crs.graphs.postgres import ConversationStoreUnavailable, UserLocks, _pool, postgres_checkpointer
from crs.settings import SettingsError, load_settings
from crs.ui.server import WorkersNeedSharedStores, check_workers
from tests.workers_server import serve_workers, worker_pids

# -------------------------------------------------------------- settings (no server needed)


@pytest.mark.parametrize(("url", "reason"), [
    ("mysql://db/crs", "must start with postgresql://"),
    ("postgresql://db.example", "names no database"),
    ("postgresql:///crs", "names no host"),
    ("postgresql://crs:hunter2@db:port/crs", "is not a valid URL"),
])
def test_a_bad_checkpoints_url_is_named_and_its_password_is_not_shown(tmp_path: Path, url: str, reason: str) -> None:
    path = tmp_path / "crs.toml"
    path.write_text(f'checkpoints_url = "{url}"\n')
    with pytest.raises(SettingsError, match=reason) as err:
        load_settings(path)
    assert "line 1" in str(err.value) and "checkpoints_url" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_several_workers_need_shared_stores() -> None:
    with pytest.raises(WorkersNeedSharedStores, match="checkpoints_url") as err:
        check_workers(Settings(), 2)
    assert "memory_host" in str(err.value)
    with pytest.raises(WorkersNeedSharedStores, match="memory_host"):
        check_workers(Settings(checkpoints_url="postgresql://crs@127.0.0.1/crs"), 2)
    assert check_workers(Settings(checkpoints_url="postgresql://crs@127.0.0.1/crs", memory=False), 2) == 2
    assert check_workers(Settings(), 1) == 1


def test_the_cli_refuses_workers_on_embedded_stores(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crs.cli import app

    result = CliRunner().invoke(app, ["serve", "--workers", "2", "--insecure-no-auth", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--workers 2 needs stores the workers can share" in result.output


def test_a_postgres_that_is_not_there_is_one_clear_error() -> None:
    from tests.services import free_port

    port = free_port()
    with pytest.raises(ConversationStoreUnavailable, match=rf"127\.0\.0\.1:{port}/crs does not answer.*refused"):
        postgres_checkpointer(f"postgresql://crs:secret@127.0.0.1:{port}/crs", timeout=2)


def test_the_cli_names_a_bad_checkpoints_url(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crs.cli import app

    result = CliRunner().invoke(app, ["serve", "--insecure-no-auth", "--state-dir", str(tmp_path),
                                      "--checkpoints-url", "mysql://root:hunter2@db/crs"])
    assert result.exit_code == 2
    assert "checkpoints_url must start with postgresql://" in result.output and "hunter2" not in result.output


def test_a_conversation_store_that_does_not_answer_is_a_503_naming_it(
        tmp_path: Path, toy_graph, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg
    from fastapi.testclient import TestClient

    from crs.ui.http_api import create_app
    from tests.conftest import TOY_VOCAB

    settings = Settings(state_dir=tmp_path, memory=False)
    rec = Recommender(toy_graph, vocabulary=TOY_VOCAB, settings=settings)

    def down(*_: object, **__: object) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(rec, "chat", down)
    with TestClient(create_app(settings, tokens=None, recommender=rec), raise_server_exceptions=False) as client:
        response = client.post("/v1/chat", json={"user_id": "u1", "session_id": "s", "text": "jazz"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    error = response.json()["error"]
    assert error["code"] == "conversations_unavailable" and "PostgreSQL" in error["message"]


def test_an_idempotency_key_answers_a_retried_turn_once_over_http(tmp_path: Path, toy_graph) -> None:
    from fastapi.testclient import TestClient

    from crs.ui.http_api import create_app
    from tests.conftest import TOY_VOCAB

    settings = Settings(state_dir=tmp_path, memory=False)
    rec = Recommender(toy_graph, vocabulary=TOY_VOCAB, settings=settings)
    with TestClient(create_app(settings, tokens=None, recommender=rec)) as client:
        def post(body: dict[str, object], key: str) -> dict[str, object]:
            r = client.post("/v1/chat", json={"user_id": "u1", "session_id": "s", **body},
                            headers={"Idempotency-Key": key})
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        first = post({"text": "some jazz"}, "k1")
        turn = rec.state("default/u1", "s").turn  # type: ignore[union-attr]
        assert post({"text": "some jazz"}, "k1") == first
        assert rec.state("default/u1", "s").turn == turn  # type: ignore[union-attr]
        press = {"action": {"type": "reject_items", "item_ids": [first["recommendations"][0]["id"]]}}  # type: ignore[index]
        rejected = post(press, "k2")
        assert rec.state("default/u1", "s").turn == turn + 1  # type: ignore[union-attr]
        turn += 1
        assert post(press, "k2") == rejected  # a retried press too
        assert rec.state("default/u1", "s").turn == turn  # type: ignore[union-attr]
        bad = client.post("/v1/chat", json={"user_id": "u1", "session_id": "s", "text": "x"},
                          headers={"Idempotency-Key": "not a valid key!"})
        assert bad.status_code == 422 and "Idempotency-Key" in bad.text
    assert [m["content"] for m in rec.transcript("default/u1", "s") if m["role"] == "user"][:1] == ["some jazz"]


# -------------------------------------------------------------- PostgreSQL, in process


def _settings(tmp_path: Path, url: str, **extra: object) -> Settings:
    return Settings(state_dir=tmp_path / "state", checkpoints_url=url, embeddings=False, **extra)


def test_a_conversation_in_postgres_goes_on_in_another_worker(tmp_path: Path, postgres_url: str) -> None:
    one = Recommender.from_settings(_settings(tmp_path, postgres_url, memory=False))
    two = Recommender.from_settings(_settings(tmp_path, postgres_url, memory=False))
    user = f"ann-{time.monotonic_ns()}"
    first = one.chat(user, "s1", "some jazz please")
    assert first.action == "ask"
    state = two.state(user, "s1")
    assert state is not None and state.accepted  # the other worker sees the jazz
    two.chat(user, "s1", "no")
    assert [m["content"] for m in one.transcript(user, "s1") if m["role"] == "user"] == ["some jazz please", "no"]


def test_one_users_turns_in_two_workers_are_serialised(tmp_path: Path, postgres_url: str) -> None:
    """Two workers (two Recommenders, two connection pools) hammer one conversation: with the
    advisory lock every turn reads the state the one before wrote, so none is lost."""
    workers = [Recommender.from_settings(_settings(tmp_path, postgres_url, memory=False)) for _ in range(2)]
    user = f"bob-{time.monotonic_ns()}"
    workers[0].chat(user, "s1", "hello")
    inside: list[int] = []
    overlap = threading.Event()
    for index, rec in enumerate(workers):  # record who is inside a turn, and slow each turn down
        invoke = rec.app.invoke

        def slow(*args: object, _invoke=invoke, _index=index, **kwargs: object) -> object:
            inside.append(_index)
            if len(inside) > 1:
                overlap.set()
            try:
                time.sleep(0.05)
                return _invoke(*args, **kwargs)
            finally:
                inside.remove(_index)

        rec.app.invoke = slow  # type: ignore[method-assign]
    said = [f"message {i}" for i in range(8)]
    threads = [threading.Thread(target=workers[i % 2].chat, args=(user, "s1", text)) for i, text in enumerate(said)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not overlap.is_set(), "two workers ran a turn of the same person at once"
    seen = [m["content"] for m in workers[0].transcript(user, "s1") if m["role"] == "user"]
    assert seen[0] == "hello" and sorted(seen[1:]) == sorted(said)  # every turn kept, none twice


def test_the_user_lock_holds_across_connections(postgres_url: str) -> None:
    a = UserLocks(_pool(postgres_url, max_size=2, name="a", timeout=5))
    b = UserLocks(_pool(postgres_url, max_size=2, name="b", timeout=5), wait_seconds=0.3)
    try:
        with a.hold("carol"), a.hold("carol"):  # re-entrant in one thread
            with pytest.raises(ConversationStoreUnavailable, match=r"running for over 0\.3 s"), b.hold("carol"):
                pass
            with b.hold("dave"):  # another user is not blocked
                pass
        with b.hold("carol"):  # released
            pass
    finally:
        a.close()
        b.close()


def test_a_retried_request_is_answered_once(tmp_path: Path, postgres_url: str) -> None:
    rec = Recommender.from_settings(_settings(tmp_path, postgres_url, memory=False))
    user = f"erin-{time.monotonic_ns()}"
    first = rec.chat(user, "s1", "some rock", request_id="t1")
    again = rec.chat(user, "s1", "some rock", request_id="t1")  # the reply was lost; the client retries
    assert again == first
    rec.chat(user, "s1", "no", request_id="t2")
    assert [m["content"] for m in rec.transcript(user, "s1") if m["role"] == "user"] == ["some rock", "no"]


def test_forget_me_deletes_threads_in_postgres_and_memories_in_the_chroma_server(
        tmp_path: Path, postgres_url: str, chroma_address: tuple[str, int]) -> None:
    host, port = chroma_address
    rec = Recommender.from_settings(_settings(tmp_path, postgres_url, memory_host=host, memory_port=port))
    ann, bob = f"ann-{time.monotonic_ns()}", f"bob-{time.monotonic_ns()}"
    rec.chat(ann, "s1", "I love jazz. I have two kids.")
    rec.chat(ann, "s2", "some rock")
    rec.chat(bob, "s1", "I love folk. I am vegetarian.")
    assert rec.memories(ann) and rec.memories(bob)
    other = Recommender.from_settings(_settings(tmp_path, postgres_url, memory_host=host, memory_port=port))
    report = other.forget(ann)  # any worker can forget anyone
    assert report["threads"] == 2 and report["memories"] >= 1 and "not_deleted" not in report
    assert rec.state(ann, "s1") is None and rec.state(ann, "s2") is None and rec.memories(ann) == []
    with rec.checkpointer._cursor() as cur:
        for table in ("checkpoints", "crs_transcript"):  # the transcript log is in PostgreSQL too
            cur.execute(f"SELECT count(*) AS n FROM {table} WHERE position(%s in thread_id) > 0", (ann,))
            assert cur.fetchone()["n"] == 0, table
        cur.execute("SELECT count(*) AS n FROM crs_transcript WHERE position(%s in thread_id) > 0", (bob,))
        assert cur.fetchone()["n"] > 0
    assert rec.state(bob, "s1") is not None and rec.memories(bob)  # the others are untouched


# -------------------------------------------------------------- crs serve --workers 2


@pytest.mark.slow
def test_serve_with_two_workers_shares_conversations_and_memories(
        tmp_path: Path, postgres_url: str, chroma_address: tuple[str, int]) -> None:
    with serve_workers(tmp_path, postgres_url, chroma_address, workers=2) as (url, proc):
        assert len(worker_pids(proc.pid)) == 2
        assert httpx.get(url + "/readyz").json() == {
            "status": "ready", "checks": {"conversations": "ok", "memory": "ok"}}
        with httpx.Client(base_url=url, timeout=30, headers={"Connection": "close"}) as client:
            # each request on a new connection, which either worker may accept: one conversation
            for i, text in enumerate(["I love jazz. I have kids.", "no", "yes", "just recommend something"]):
                response = client.post("/v1/chat", json={"user_id": "ann", "session_id": "s1", "text": text},
                                       headers={"Idempotency-Key": f"ann-s1-{i}"})
                assert response.status_code == 200, response.text
            assert response.json()["action"] in ("recommend", "ask")
            memories = client.get("/v1/users/ann/memories").json()
            assert any("kids" in m["text"] for m in memories)
            forgot = client.delete("/v1/users/ann")
            assert forgot.status_code == 200 and forgot.json()["deleted"]["threads"] == 1
            assert client.get("/v1/users/ann/memories").json() == []
