"""Token budgets with tiktoken, offline (bundled BPE files, cache under $CRS_HOME)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crs.memory import fit_to_budget, prepare_offline_tiktoken, token_count


def test_encodings_load_offline_into_a_cache_outside_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    code = (
        "import os, socket\n"
        "def no_net(*a, **k): raise OSError('network disabled in this test')\n"
        "socket.socket.connect = no_net\n"
        "from memory.tokens import encoding, prepare_offline_tiktoken\n"
        "print(prepare_offline_tiktoken())\n"
        "print(len(encoding('cl100k_base').encode('hello world')), len(encoding('o200k_base').encode('hello')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    env["CRS_HOME"] = str(tmp_path / "crs")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    cache, counts = out.stdout.strip().splitlines()
    assert Path(cache).is_relative_to(tmp_path) and counts == "2 1"
    assert len(list(Path(cache).iterdir())) == 2


def test_prepare_respects_an_explicit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tk"))
    assert prepare_offline_tiktoken() == tmp_path / "tk"
    assert prepare_offline_tiktoken() == tmp_path / "tk"  # idempotent


def test_fit_to_budget_keeps_the_most_relevant_first() -> None:
    texts = ["Likes 80s synth-pop.", "Has two kids and a dog called Rex.", "Is vegetarian.", "Prefers short replies."]
    assert fit_to_budget(texts, 10_000) == texts
    kept = fit_to_budget(texts, 12)
    assert kept[0] == texts[0]
    assert sum(token_count(t) for t in kept) + len(kept) - 1 <= 12
    assert "Has two kids and a dog called Rex." not in kept and "Is vegetarian." in kept  # a shorter one fits
    assert fit_to_budget(texts, 0) == []


def test_an_oversized_first_memory_is_cut_not_lost() -> None:
    long = "jazz " * 100
    kept = fit_to_budget([long, "Is vegetarian."], 5)
    assert len(kept) == 1 and token_count(kept[0]) <= 5 and kept[0].startswith("jazz")
