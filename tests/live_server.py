"""Start a real ``crs serve`` process on a free loopback port and wait until it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.services import stop_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def crs_serve(home: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 90.0) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Yield (base url, process); the process is stopped (and its log kept in ``home``) after."""
    port = free_port()
    full_env = {**os.environ, "HOME": str(home), "CRS_HOME": str(home / "crs"), **(env or {})}
    log = (home / f"serve-{port}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "crs.cli", "serve", "--port", str(port), *args],
                            env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"crs serve exited with {proc.returncode}: "
                                   f"{(home / f'serve-{port}.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("crs serve did not answer in time")
            time.sleep(0.2)
        yield url, proc
    finally:
        stop_process(proc, timeout=20)
        log.close()
