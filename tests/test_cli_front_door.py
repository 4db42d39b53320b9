"""The command line's front door: each mistake gets one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.test_cli import crs


def one_clear_line(out: object, *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)  # type: ignore[attr-defined]
    lines = [line for line in out.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("crs: error: "), out.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0]


def test_empty_user(tmp_path: Path) -> None:
    one_clear_line(crs("chat", "--user", "", env_home=tmp_path), "--user must not be empty")


def test_unknown_dataset_lists_the_allowed_values(tmp_path: Path) -> None:
    out = crs("chat", "--dataset", "lastfm_starr", env_home=tmp_path)
    one_clear_line(out, "--dataset", "lastfm, lastfm_star", "'lastfm_starr'")


def test_port_out_of_range(tmp_path: Path) -> None:
    one_clear_line(crs("demo", "--port", "99999", env_home=tmp_path), "--port", "99999")
    one_clear_line(crs("serve", "--insecure-no-auth", "--port", "0", env_home=tmp_path), "--port")


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_port_in_use_names_the_option(tmp_path: Path, command: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = crs(command, "--port", str(port), "--insecure-no-auth" if command == "serve" else "--user=x",
                  env_home=tmp_path)
    one_clear_line(out, f"port {port}", "already in use", "--port")


def test_forgetting_a_user_never_seen_says_so(tmp_path: Path) -> None:
    one_clear_line(crs("forget", "--user", "nobody", env_home=tmp_path), "'nobody'", "nothing was forgotten")


def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    one_clear_line(crs("serve", env_home=tmp_path), "CRS_API_TOKENS", "--insecure-no-auth")


def test_serve_names_a_bad_token_entry_without_echoing_it(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOME": str(tmp_path), "CRS_HOME": str(tmp_path / "crs"),
           "CRS_API_TOKENS": "acme:long-enough-token,SECRETVALUE99"}
    out = subprocess.run([sys.executable, "-m", "crs.cli", "serve"], capture_output=True, text=True, env=env,
                         timeout=120)
    one_clear_line(out, "entry 2 is not tenant:token")
    assert "SECRETVALUE99" not in out.stderr
