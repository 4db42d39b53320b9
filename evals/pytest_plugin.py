"""A pytest plugin: every ``*.dialogue.yaml`` under the collected paths is a test, with no code.

Registered through the ``pytest11`` entry point ``crs-dialogues``, so a project that installs
crs collects its own scripts by running ``pytest``. A failing script reports the diff of its
first failing turn; scripts sharing a configuration share one recommender for the session.
Each script is marked ``dialogue`` (``pytest -m dialogue`` runs only them) plus its own tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crs.evals.dialogues import RecommenderPool, ScriptResult, format_failure, run_script
from crs.evals.script import SCRIPT_SUFFIX, ScriptError, load_script

__all__ = ["DialogueFile", "DialogueItem"]

_POOL = pytest.StashKey[RecommenderPool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dialogue: a scripted dialogue (*.dialogue.yaml) run against crs")


def pytest_unconfigure(config: pytest.Config) -> None:
    pool = config.stash.get(_POOL, None)
    if pool is not None:
        pool.close()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(SCRIPT_SUFFIX):
        return DialogueFile.from_parent(parent, path=file_path)
    return None


class DialogueFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class DialogueFile(pytest.File):
    def collect(self) -> Any:
        try:
            script = load_script(self.path)
        except ScriptError as exc:  # a broken script is a failing test that says why, not a crash
            yield DialogueItem.from_parent(self, name=self.path.name.removesuffix(SCRIPT_SUFFIX), error=str(exc))
            return
        item = DialogueItem.from_parent(self, name=script.title, script=script)
        item.add_marker(pytest.mark.dialogue)
        yield item


class DialogueItem(pytest.Item):
    def __init__(self, *, script: Any = None, error: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.error = error

    def runtest(self) -> None:
        if self.error is not None:
            raise DialogueFailed(self.error)
        pool = self.config.stash.get(_POOL, None)
        if pool is None:
            pool = self.config.stash[_POOL] = RecommenderPool()
        result: ScriptResult = run_script(self.script, pool)
        if not result.passed:
            raise DialogueFailed(format_failure(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, DialogueFailed):
            return excinfo.value.text
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"dialogue: {self.name}"
