"""``crs serve --workers N`` on the test stores, and which process is which."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.services import free_port, stop_process


@contextmanager
def serve_workers(home: Path, postgres_url: str, chroma: tuple[str, int] | None, *, workers: int = 2,
                  timeout: float = 180.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yield (base url, supervisor process) once every worker has started; stopped after."""
    port = free_port()
    settings = home / "crs.toml"
    lines = [f'checkpoints_url = "{postgres_url}"', "embeddings = false"]
    lines += [f'memory_host = "{chroma[0]}"', f"memory_port = {chroma[1]}"] if chroma else ["memory = false"]
    settings.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "HOME": str(home), "CRS_HOME": str(home / "crs"), "ANONYMIZED_TELEMETRY": "False"}
    log_path = home / f"serve-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "crs.cli", "serve", "--port", str(port), "--workers",
                                 str(workers), "--insecure-no-auth", "--settings", str(settings)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, log_path, workers, timeout)
            yield url, proc
        finally:
            stop_process(proc, timeout=30)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"crs serve exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
        started = log_path.read_text(errors="replace").count("Application startup complete")
        try:
            if started >= workers and httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"crs serve did not start {workers} workers in time: {log_path.read_text()[-3000:]}")
        time.sleep(0.3)


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of a ``crs serve --workers N`` supervisor (its children that serve)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == supervisor and b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def process_with_local_port(pids: list[int], port: int) -> int | None:
    """Which of ``pids`` owns the TCP socket whose local port is ``port`` (from /proc, no psutil)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None
