"""The ``crs`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOY_ITEMS


def crs(*args: str, stdin: str = "", env_home: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(env_home), "CRS_HOME": str(env_home / "crs")}
    return subprocess.run([sys.executable, "-m", "crs.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "albums.jsonl"
    path.write_text("".join(i.model_dump_json() + "\n" for i in TOY_ITEMS), "utf-8")
    return path


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = crs("--help", env_home=tmp_path)
    assert out.returncode == 0
    for command in ("chat", "demo"):
        assert command in out.stdout


@pytest.mark.slow
def test_json_chat_prints_one_object_per_reply_and_a_new_process_continues(tmp_path: Path, catalog_file: Path) -> None:
    settings = tmp_path / "crs.yaml"
    settings.write_text(f"catalog: {catalog_file}\npolicy:\n  top_k: 1\n  confidence: 0.99\n", "utf-8")
    args = ("chat", "--settings", str(settings), "--json", "--user", "ann", "--session", "s1")
    first = crs(*args, stdin="jazz\n\nno\n", env_home=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 3
    for obj in lines:
        assert set(obj) == {"text", "action", "question", "recommendations", "candidates", "turn", "pending"}
    assert lines[0]["action"] == "ask" and lines[0]["candidates"] == 3
    assert set(lines[0]["question"]) == {"facet", "value", "options"}
    assert lines[1]["action"] == "error"
    second = crs(*args, stdin="just recommend something\n", env_home=tmp_path)
    assert second.returncode == 0, second.stderr
    (rec,) = [json.loads(line) for line in second.stdout.splitlines()]
    assert rec["action"] == "recommend" and rec["turn"] == 3  # the session went on
    assert all(r["id"] in {"kind-of-blue", "a-love-supreme", "blue-train"} for r in rec["recommendations"])


def test_missing_or_malformed_catalog_is_a_clear_error(tmp_path: Path) -> None:
    out = crs("chat", "--catalog", str(tmp_path / "nope.jsonl"), env_home=tmp_path)
    assert out.returncode == 2
    assert "crs: error:" in out.stderr and "nope.jsonl: no such file" in out.stderr
    assert "Traceback" not in out.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "name": "A", "attributes": {"g": ["x"]}}\n{"id": "a"\n', "utf-8")
    out = crs("chat", "--catalog", str(bad), env_home=tmp_path)
    assert out.returncode == 2 and "bad.jsonl, line 2: bad JSON" in out.stderr


def test_settings_typo_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "crs.toml"
    path.write_text('max_message_chars = 500\n\n[policy]\ntop_k = 3\ntemprature = 0.5\n', "utf-8")
    out = crs("chat", "--settings", str(path), env_home=tmp_path)
    assert out.returncode == 2
    assert f"{path}, line 5: unknown setting 'policy.temprature' (did you mean 'temperature'?)" in out.stderr


def test_crs_forget_exits_non_zero_when_the_memory_store_is_down(tmp_path: Path, catalog_file: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: the Chroma server is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = tmp_path / "crs.yaml"
    settings.write_text(f"catalog: {catalog_file}\nembeddings: false\nmemory: false\n", "utf-8")
    chat = crs("chat", "--settings", str(settings), "--json", "--user", "ann", "--session", "s1",
               "--state-dir", str(tmp_path / "state"), stdin="some jazz\n", env_home=tmp_path)
    assert chat.returncode == 0, chat.stderr
    down = tmp_path / "down.yaml"
    down.write_text(f"catalog: {catalog_file}\nembeddings: false\nmemory_host: 127.0.0.1\nmemory_port: {port}\n",
                    "utf-8")
    out = crs("forget", "--user", "ann", "--settings", str(down), "--state-dir", str(tmp_path / "state"),
              env_home=tmp_path)
    assert out.returncode == 1
    assert "1 threads" in out.stdout and "not deleted" in out.stderr and str(port) in out.stderr
    ok = crs("forget", "--user", "ann", "--settings", str(settings), "--state-dir", str(tmp_path / "state"),
             env_home=tmp_path)
    assert ok.returncode == 0 and "0 threads" in ok.stdout
