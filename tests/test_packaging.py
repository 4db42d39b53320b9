"""One importable namespace: everything installs under ``crs``, and every doctest runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["crs", "crs.kb", "crs.memory", "crs.graphs", "crs.ui", "crs.evals"]


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
    return sorted(set(names))


MODULES = _modules()


def test_every_folder_of_the_layout_is_a_crs_subpackage() -> None:
    for folder in ("kb", "memory", "graphs", "ui", "evals"):
        module = importlib.import_module(f"crs.{folder}")
        assert Path(module.__file__).parent == REPO / folder


@pytest.mark.parametrize("name", [m for m in MODULES if doctest.DocTestFinder().find(importlib.import_module(m))
                                  and any(t.examples for t in doctest.DocTestFinder().find(
                                      importlib.import_module(m)))])
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_doctests_cover_every_layer() -> None:
    with_examples = {m.split(".")[1] if m.count(".") else "crs" for m in MODULES
                     if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(m)))}
    assert {"kb", "memory", "evals"} <= with_examples


def test_crs_imports_from_a_folder_with_its_own_memory_ui_kb_graphs_and_evals(tmp_path: Path) -> None:
    (tmp_path / "memory.py").write_text("raise ImportError('the user\\'s own memory.py was imported')\n")
    (tmp_path / "kb.py").write_text("raise ImportError('the user\\'s own kb.py was imported')\n")
    for folder in ("ui", "graphs", "evals"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text(f"raise ImportError('the user\\'s own {folder}/')\n")
    code = ("from crs import Recommender\n"
            "import crs.memory, crs.kb, crs.ui.web, crs.graphs, crs.evals.cli\n"
            "from crs.memory import ChromaMemoryStore\n"
            "print(crs.memory.__file__)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path) not in done.stdout


@pytest.mark.slow
def test_the_wheel_installs_only_crs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("crs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"crs", next(t for t in tops if t.endswith(".dist-info"))}
    for expected in ("crs/memory/reflective.py", "crs/kb/data/albums.jsonl", "crs/graphs/steps.py",
                     "crs/language/personas/default.yaml", "crs/reasoning/engine.py", "crs/py.typed"):
        assert expected in names
