"""The strict type check covers the whole installed package, and passes.

The folders kb/ memory/ graphs/ ui/ evals/ install as crs.kb, crs.memory, ... (setuptools
``package-dir``); mypy cannot follow that mapping in an editable install, so a run in the
checkout sees crs/ alone. The check runs on an installed copy instead, where every module has
the import name users see.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _fresh_sources(dest: Path) -> Path:
    """What a build reads, copied: setuptools keeps every file it ever copied in ./build, so
    installing the checkout itself can bring back a module deleted since."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {name.split(".")[0] for name in config["packages"]} | set(config["package-dir"].values())
    for folder in sorted(folders):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    return dest


def _checked_files(summary: str) -> int:
    """The file count of mypy's last line ("Success: no issues found in 107 source files",
    "Found 2 errors in 1 file (checked 107 source files)")."""
    found = re.search(r"(\d+) source files?\)?$", summary)
    assert found is not None, f"no summary line from mypy: {summary!r}"
    return int(found.group(1))


@pytest.mark.slow
def test_mypy_strict_passes_on_the_installed_package(tmp_path: Path) -> None:
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-compile", "--target", str(target), str(_fresh_sources(tmp_path / "src"))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    modules = sorted(p.relative_to(target).as_posix() for p in (target / "crs").rglob("*.py"))
    for folder in ("kb", "memory", "graphs", "ui", "evals", "reasoning", "language"):
        assert any(m.startswith(f"crs/{folder}/") for m in modules), f"crs.{folder} was not installed"

    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
                           "--cache-dir", str(tmp_path / "mypy-cache"), "-p", "crs"],
                          cwd=target, env=env, capture_output=True, text=True, timeout=240)
    lines = done.stdout.strip().splitlines()
    assert lines, f"mypy printed nothing: {done.stderr}"
    if done.returncode != 0:
        pytest.fail("mypy --strict on the installed crs:\n" + "\n".join(lines) + done.stderr, pytrace=False)
    # not vacuous: as many sources as installed modules, or more (a data folder counts as a namespace package)
    assert _checked_files(lines[-1]) >= len(modules) >= 100, (lines[-1], len(modules))
