"""Faults with real processes: a worker killed mid-turn, PostgreSQL and the Chroma server restarted
under load. ``crs serve --workers 2`` on real stores; the client retries as a bot would."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from crs import Recommender, Settings
from tests.conftest import missing
from tests.services import Chroma, Postgres, postgres_bindir
from tests.workers_server import process_with_local_port, serve_workers, worker_pids

pytestmark = pytest.mark.slow


def _user_messages(rec: Recommender, user: str, session: str) -> list[str]:
    return [m["content"] for m in rec.transcript(user, session) if m["role"] == "user"]


def _post_with_retries(client: httpx.Client, body: dict[str, Any], key: str, *, tries: int = 60) -> httpx.Response:
    """What a bot does: the same Idempotency-Key until the turn is answered."""
    for _ in range(tries):
        try:
            response = client.post("/v1/chat", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        if response.status_code != 503:
            return response
        time.sleep(0.5)
    raise AssertionError(f"no answer to {key} after {tries} tries")


def test_a_worker_killed_mid_turn_loses_and_duplicates_no_turn(tmp_path: Path, postgres_url: str) -> None:
    from crs.graphs.postgres import UserLocks, _pool

    reader = Recommender.from_settings(Settings(state_dir=tmp_path / "reader", checkpoints_url=postgres_url,
                                                memory=False, embeddings=False))
    user, session = f"kill-{time.monotonic_ns()}", "s1"
    scoped = f"default/{user}"
    said = ["some jazz please", "no", "yes", "just recommend something", "why the first one?"]
    with serve_workers(tmp_path, postgres_url, None, workers=2) as (url, proc), \
            httpx.Client(base_url=url, timeout=60, headers={"Connection": "close"}) as client:
        before = worker_pids(proc.pid)
        assert len(before) == 2
        body = {"user_id": user, "session_id": session}
        assert _post_with_retries(client, {**body, "text": said[0]}, "t0").status_code == 200
        # Hold the user's lock from here, so the next turn stops inside its worker; kill that worker.
        locks = UserLocks(_pool(postgres_url, max_size=2, name="test-locks", timeout=5))
        outcome: dict[str, Any] = {}
        try:
            with locks.hold(scoped):
                def send() -> None:
                    try:
                        outcome["first"] = client.post("/v1/chat", json={**body, "text": said[1]},
                                                       headers={"Idempotency-Key": "t1"})
                    except httpx.TransportError as exc:
                        outcome["first"] = exc

                sender = threading.Thread(target=send)
                sender.start()
                victim = _worker_waiting_for_a_lock(postgres_url, before)
                os.kill(victim, signal.SIGKILL)
                sender.join(30)
        finally:
            locks.close()
        assert isinstance(outcome["first"], httpx.TransportError), outcome["first"]  # the connection died
        assert _user_messages(reader, scoped, session) == said[:1]  # the killed turn left nothing behind
        # The client retries (the same key) and goes on: the other worker answers.
        assert _post_with_retries(client, {**body, "text": said[1]}, "t1").status_code == 200
        replies = {}
        for i, text in enumerate(said[2:], start=2):
            replies[i] = _post_with_retries(client, {**body, "text": text}, f"t{i}").json()
        # A retry of a turn whose reply was lost (the worker died after writing it) gets that reply again.
        again = _post_with_retries(client, {**body, "text": said[-1]}, f"t{len(said) - 1}").json()
        assert again == replies[len(said) - 1]
        assert _user_messages(reader, scoped, session) == said  # each turn once, in order
        deadline = time.monotonic() + 120  # and the supervisor replaced the dead worker
        while time.monotonic() < deadline and (len(worker_pids(proc.pid)) < 2 or victim in worker_pids(proc.pid)):
            time.sleep(0.5)
        after = worker_pids(proc.pid)
        assert len(after) == 2 and victim not in after


def _worker_waiting_for_a_lock(postgres_url: str, pids: list[int], timeout: float = 30) -> int:
    """The worker whose PostgreSQL session waits for an advisory lock (found by its client port)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND NOT l.granted").fetchone()
            if row is not None:
                pid = process_with_local_port(pids, int(row[0]))
                if pid is not None:
                    return pid
            time.sleep(0.1)
    raise AssertionError("no worker waited for the user's lock")


class _Load:
    """Client threads sending turns all the time; every answer is kept (status, error code)."""

    def __init__(self, url: str, users: int = 3) -> None:
        self.url, self.users = url, users
        self.stop = threading.Event()
        self.results: list[tuple[float, int, str]] = []
        self.threads = [threading.Thread(target=self._run, args=(u,), daemon=True) for u in range(users)]

    def _run(self, u: int) -> None:
        lines = ["some jazz please", "no", "yes", "no", "just recommend something"]
        n = 0
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                body = {"user_id": f"load{u}", "session_id": f"s{n // len(lines)}", "text": lines[n % len(lines)]}
                try:
                    r = client.post("/v1/chat", json=body, headers={"Idempotency-Key": f"load{u}-{n}"})
                    code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""
                    self.results.append((time.monotonic(), r.status_code, code))
                    if r.status_code == 200:
                        n += 1
                except httpx.TransportError as exc:
                    self.results.append((time.monotonic(), 0, type(exc).__name__))
                time.sleep(0.05)

    def __enter__(self) -> _Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)

    def wait_for(self, status: int, since: float, timeout: float = 90) -> list[tuple[float, int, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [r for r in self.results if r[0] >= since and r[1] == status]
            if seen:
                return seen
            time.sleep(0.1)
        tail = Counter((s, c) for t, s, c in self.results if t >= since)
        raise AssertionError(f"no {status} since the change; got {dict(tail)}")


def test_stores_restarted_under_load_give_503s_and_recover_by_themselves(tmp_path: Path) -> None:
    if postgres_bindir() is None:
        missing("SERVICES", "PostgreSQL is not installed (no initdb): cannot restart one under load")
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="crs-test-pg-restart-"))  # not under pytest's root-only tmp
    pg = Postgres(folder).start()
    chroma = Chroma(tmp_path / "chroma").start()
    try:
        with serve_workers(tmp_path, pg.url, ("127.0.0.1", chroma.port), workers=2) as (url, proc), \
                httpx.Client(base_url=url, timeout=60) as client:
            pids = worker_pids(proc.pid)
            memorable = {"user_id": "mem", "session_id": "s1", "text": "I love jazz. I have two kids."}
            assert _post_with_retries(client, memorable, "mem-0").status_code == 200
            memories = client.get("/v1/users/mem/memories").json()
            assert memories
            with _Load(url) as load:
                load.wait_for(200, time.monotonic())
                # PostgreSQL goes down: turns get a 503 that names it, and /readyz says so
                pg.stop()
                down = time.monotonic()
                failed = load.wait_for(503, down)
                assert all(code == "conversations_unavailable" for _, _, code in failed)
                ready = client.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["conversations"].startswith("failed")
                pg.start()  # same data, same port: crs is not restarted
                load.wait_for(200, time.monotonic())
                assert not [r for r in load.results if r[0] >= down and r[1] not in (200, 503)]
                # the Chroma server goes down: memory requests get a 503 that names it
                chroma.stop()
                response = client.get("/v1/users/mem/memories")
                assert response.status_code == 503
                assert response.json()["error"]["code"] == "memory_unavailable"
                assert client.get("/readyz").json()["checks"]["memory"].startswith("failed")
                chroma.start()
                deadline = time.monotonic() + 60
                while client.get("/v1/users/mem/memories").status_code != 200 and time.monotonic() < deadline:
                    time.sleep(0.5)
                load.wait_for(200, time.monotonic())
            assert worker_pids(proc.pid) == pids  # recovered by themselves
            assert client.get("/readyz").json()["status"] == "ready"
            # The same statements again, in another worker after the restarts: remembered once.
            assert _post_with_retries(client, {**memorable, "session_id": "s2"}, "mem-1").status_code == 200
            after = client.get("/v1/users/mem/memories").json()
            assert {m["id"] for m in memories} <= {m["id"] for m in after}  # nothing lost
            # nothing twice: each statement once, and one summary per session (s1, s2), which may read alike
            texts = Counter((m["kind"], m["text"]) for m in after if m["kind"] != "session_summary")
            assert all(n == 1 for n in texts.values()), texts
            assert sum(m["kind"] == "session_summary" for m in after) == 2, after
            assert len({m["id"] for m in after}) == len(after)
            errors = Counter((s, c) for _, s, c in load.results if s not in (200, 503))
            assert not errors, errors  # nothing but answers and clear 503s
    finally:
        chroma.stop()
        pg.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
