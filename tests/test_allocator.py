"""The process settings that keep a forgotten user's freed bytes out of other users' files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crs.memory.allocator import TUNABLES, allocator_is_private, private_allocator_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables are Linux-only")


def _without_tunables() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "CRS_ALLOCATOR_REEXEC")}
    assert not allocator_is_private(env)
    return env


def test_the_tests_themselves_run_with_the_tunables() -> None:
    assert allocator_is_private()
    assert set(TUNABLES) <= set(os.environ["GLIBC_TUNABLES"].split(":"))


def test_a_program_restarts_itself_once_with_them_keeping_its_own() -> None:
    env = _without_tunables()
    env["GLIBC_TUNABLES"] = "glibc.malloc.arena_max=2"
    code = ("import os; from crs.memory.allocator import ensure_private_allocator; ensure_private_allocator(); "
            "print(os.environ['GLIBC_TUNABLES'], os.getpid())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    tunables, _pid = out.stdout.split()
    assert tunables.split(":") == ["glibc.malloc.arena_max=2", *TUNABLES]
    assert out.stdout.count("\n") == 1  # printed once: the program went on in the restarted process only


def test_the_crs_command_runs_with_them(tmp_path: Path) -> None:
    """A person's ``crs chat`` is the restarted process: its environment has the tunables."""
    crs = shutil.which("crs") or str(Path(sys.executable).with_name("crs"))
    env = {**_without_tunables(), "CRS_HOME": str(tmp_path)}
    chat = subprocess.Popen([crs, "chat", "--user", "ann"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        environ = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"GLIBC_TUNABLES=" not in environ:
            environ = Path(f"/proc/{chat.pid}/environ").read_bytes()
            time.sleep(0.1)
        variables = dict(v.split("=", 1) for v in environ.decode().split("\0") if "=" in v)
        # the restart's mark, and the tunables (glibc may rewrite their text in place as it reads them)
        assert variables.get("CRS_ALLOCATOR_REEXEC") == "1"
        assert TUNABLES[0] in variables.get("GLIBC_TUNABLES", "")
    finally:
        chat.communicate(b"", timeout=60)


def test_the_settings_are_added_to_an_environment() -> None:
    env = private_allocator_env({"PATH": "/bin"})
    assert env["PATH"] == "/bin" and allocator_is_private(env)
