"""Real stores on loopback for the tests and the load benchmark: a PostgreSQL cluster in a temp
folder (as an unprivileged user when run as root: postgres refuses root) and ``chroma run``.

    python tests/services.py up DIR     # prints export lines: CRS_TEST_POSTGRES_URL, CRS_TEST_CHROMA
    python tests/services.py down DIR

``.ci/run`` uses the same two commands; the test fixtures start their own when those variables
are not set (see ``postgres_url`` and ``chroma_address`` in tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crs.memory.allocator import private_allocator_env

CHROMA = Path(sys.executable).with_name("chroma")
DATABASE = "crs"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Ask a process to stop (SIGTERM); kill it if it has not within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: $CRS_PG_BINDIR, PATH, or Debian's /usr/lib/postgresql/N/bin."""
    env = os.environ.get("CRS_PG_BINDIR")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _as_user() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


class Postgres:
    """An unprivileged PostgreSQL cluster in ``folder`` (made by initdb on first start)."""

    def __init__(self, folder: Path, port: int | None = None, *, fast: bool = True) -> None:
        self.folder, self.port, self.fast = Path(folder), port or free_port(), fast
        bindir = postgres_bindir()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (no initdb; apt-get install postgresql)")
        self.bindir = bindir
        self.data = self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://crs@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*_as_user(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")

    def start(self) -> Postgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the cluster's user must own its folder (and reach it)
            user = _as_user()[2]
            os.chmod(self.folder, 0o755)
            shutil.chown(self.folder, user)
        if not self.data.exists():
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "crs", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        if self.fast:  # tests: no fsync (a crash of the test machine loses nothing that matters)
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "postgres.log"), "-w", "-t", "60", "start")
        self._ensure_database()
        return self

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://crs@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


class Chroma:
    """``chroma run`` on loopback over ``folder``."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = Path(folder), port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, *, detach: bool = False) -> Chroma:
        if not CHROMA.exists():
            raise FileNotFoundError(f"the chroma command is not installed next to {sys.executable}")
        # the allocator settings the README asks of a Chroma server (crs.memory.allocator)
        env = {**private_allocator_env(), "ANONYMIZED_TELEMETRY": "False"}
        self.proc = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(self.folder), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=detach)
        deadline = time.monotonic() + timeout
        import httpx

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with code {self.proc.returncode}")
            try:
                if httpx.get(f"http://{self.address}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("chroma run did not become ready in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)
        self.proc = None


def _up(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pg = Postgres(folder / "postgres").start()
    chroma = Chroma(folder / "chroma").start(detach=True)
    assert chroma.proc is not None
    (folder / "services.json").write_text(json.dumps({"postgres": str(pg.folder), "chroma_pid": chroma.proc.pid}))
    print(f"export CRS_TEST_POSTGRES_URL={pg.url}")
    print(f"export CRS_TEST_CHROMA={chroma.address}")


def _down(folder: Path) -> None:
    info = json.loads((folder / "services.json").read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(info["chroma_pid"]), signal.SIGTERM)
    Postgres(Path(info["postgres"]), port=1).stop()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("up", "down"):
        raise SystemExit("usage: python tests/services.py up|down FOLDER")
    (_up if sys.argv[1] == "up" else _down)(Path(sys.argv[2] if sys.argv[2] else tempfile.mkdtemp()))
