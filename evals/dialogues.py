"""Running dialogue scripts against the public API, one :class:`Recommender` per configuration.

Scripts with the same catalog, persona, settings and memory switch share one recommender
(and its graph, understander and memory store); each script's users get their own ids, so
scripts never see each other's conversations or memories.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crs.api import InvalidInput, Recommender
from crs.evals.expect import Mismatch, check_memory, check_reply, quick_reply_labels
from crs.evals.script import DialogueScript, ScriptError, Turn, find_scripts, load_script
from crs.language.reply import Reply
from crs.memory.clock import OffsetClock
from crs.settings import Settings

__all__ = ["RecommenderPool", "ScriptResult", "TurnResult", "format_failure", "run_paths", "run_script"]


@dataclass
class TurnResult:
    index: int  # 1-based
    line: int | None
    kind: str  # say | do | session | wait | memory
    user: str
    said: str  # the text, the action, or what was checked
    reply: dict[str, Any] | None = None  # Reply.to_json() plus quick replies
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"turn": self.index, "line": self.line, "kind": self.kind, "user": self.user, "said": self.said,
                "reply": self.reply, "passed": self.passed, "mismatches": [m.to_dict() for m in self.mismatches]}


@dataclass
class ScriptResult:
    path: str
    title: str
    turns: list[TurnResult] = field(default_factory=list)
    error: str | None = None  # the script could not be loaded or run
    seconds: float = 0.0
    tags: list[str] = field(default_factory=list)

    @property
    def failure(self) -> TurnResult | None:
        return next((t for t in self.turns if not t.passed), None)

    @property
    def passed(self) -> bool:
        return self.error is None and self.failure is None

    def to_dict(self) -> dict[str, Any]:
        failure = self.failure
        return {"path": self.path, "name": self.title, "passed": self.passed, "error": self.error,
                "first_failure": failure.to_dict() if failure else None, "seconds": round(self.seconds, 3),
                "tags": self.tags, "turns": [t.to_dict() for t in self.turns]}


class RecommenderPool:
    """Recommenders built once per (catalog, persona, settings, memory) and reused."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._tmp = None if state_dir is not None else tempfile.TemporaryDirectory(prefix="crs-dialogues-")
        self.state_dir = Path(state_dir) if state_dir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self._built: dict[str, Recommender] = {}
        #: the memories' "now": a script's ``wait: 3 days`` moves it forward instead of sleeping
        self.clock = OffsetClock()

    def settings_for(self, script: DialogueScript) -> Settings:
        data: dict[str, Any] = {"embeddings": True, **script.settings,
                                "persona": _persona(script), "memory": script.memory}
        if script.catalog != "bundled":
            catalog = Path(script.catalog)
            data["catalog"] = catalog if catalog.is_absolute() else Path(script.path).parent / catalog
        key = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]
        data["state_dir"] = self.state_dir / key
        try:
            return Settings.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise ScriptError(f"{script.path}: settings: {first[1].strip() if len(first) > 1 else first[0]}: "
                              f"{first[-1].strip()}") from None

    def get(self, script: DialogueScript) -> Recommender:
        settings = self.settings_for(script)
        key = str(settings.state_dir)
        if key not in self._built:
            try:
                self._built[key] = Recommender.from_settings(settings, clock=self.clock)
            except (InvalidInput, ValueError) as exc:
                raise ScriptError(f"{script.path}: cannot build the recommender: {exc}") from None
        return self._built[key]

    def close(self) -> None:
        self._built.clear()
        if self._tmp is not None:
            self._tmp.cleanup()


def _persona(script: DialogueScript) -> str:
    p = script.persona
    if p.endswith((".yaml", ".yml")) and not Path(p).is_absolute():
        return str(Path(script.path).parent / p)
    return p


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:60] or "script"


def _reply_dict(reply: Reply) -> dict[str, Any]:
    return {**reply.to_json(), "quick_replies": quick_reply_labels(reply)}


class _Run:
    """One script's conversation: its users' ids and sessions."""

    def __init__(self, script: DialogueScript, rec: Recommender, clock: OffsetClock) -> None:
        self.script, self.rec, self.clock = script, rec, clock
        stamp = hashlib.sha256(f"{script.path}{time.time_ns()}".encode()).hexdigest()[:8]
        self.ids = {u: f"{_slug(script.title)}.{u}.{stamp}" for u in script.users}
        self.sessions = dict.fromkeys(script.users, 1)

    def session(self, user: str) -> str:
        return f"s{self.sessions[user]}"

    def turn(self, n: int, turn: Turn) -> TurnResult:
        user = turn.user or (turn.memory.user if turn.memory and turn.memory.user else None) or self.script.users[0]
        uid, line = self.ids[user], (self.script.lines[n - 1] if n - 1 < len(self.script.lines) else None)
        result = TurnResult(n, line, turn.kind, user, "")
        if turn.session is not None or turn.wait is not None:
            result.said = "new session" if turn.session else f"wait {turn.wait}"
            for u in self.script.users:  # every user's session ends: a break in the script is a break for all
                self.rec.end_session(self.ids[u], self.session(u))
                self.sessions[u] += 1
            if turn.wait is not None:
                self.clock.advance(turn.wait_seconds)
            return result
        if turn.memory is not None:
            result.said = "memory check"
            result.mismatches = check_memory(turn.memory, self.rec.memories(uid))
            return result
        try:
            if turn.say is not None:
                result.said = turn.say
                reply = self.rec.chat(uid, self.session(user), turn.say)
            else:
                result.said = json.dumps(turn.do)
                reply = self.rec.act(uid, self.session(user), turn.do or {})
        except InvalidInput as exc:
            wanted = turn.expect.refused if turn.expect is not None else None
            result.reply = {"refused": str(exc)}
            if wanted is None or re.search(wanted, str(exc), re.IGNORECASE) is None:
                result.mismatches = [Mismatch("the call", f"refused with /{wanted}/" if wanted else "a reply",
                                              f"refused: {exc}")]
            return result
        result.reply = _reply_dict(reply)
        if turn.expect is not None and turn.expect.refused is not None:
            result.mismatches = [Mismatch("the call", f"refused with /{turn.expect.refused}/",
                                          f"a {reply.action} reply")]
        result.mismatches += check_reply(turn.expect, reply)
        return result


def run_script(script: DialogueScript, pool: RecommenderPool, *, stop_at_failure: bool = True) -> ScriptResult:
    """Play a script's turns; by default stop at the first failing turn (later turns depend on it)."""
    started = time.perf_counter()
    out = ScriptResult(script.path, script.title, tags=list(script.tags))
    try:
        run = _Run(script, pool.get(script), pool.clock)
        for n, turn in enumerate(script.turns, start=1):
            result = run.turn(n, turn)
            out.turns.append(result)
            if not result.passed and stop_at_failure:
                break
    except ScriptError as exc:
        out.error = str(exc)
    out.seconds = time.perf_counter() - started
    return out


def run_paths(paths: Iterable[Path | str], pool: RecommenderPool,
              progress: Callable[[ScriptResult], None] | None = None) -> list[ScriptResult]:
    """Load and run every script under ``paths``; a script that does not load fails with its error."""
    results = []
    for path in find_scripts(list(paths)):
        try:
            script = load_script(path)
        except ScriptError as exc:
            result = ScriptResult(str(path), path.name, error=str(exc))
        else:
            result = run_script(script, pool)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def _quote(text: str, limit: int = 300) -> str:
    text = text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"
    return json.dumps(text, ensure_ascii=False)


def format_failure(result: ScriptResult) -> str:
    """A readable diff of the first failing turn: what was expected against what came back."""
    if result.error is not None:
        return f"FAIL {result.path}\n  {result.error}"
    turn = result.failure
    if turn is None:
        return f"ok   {result.path}"
    where = f"turn {turn.index}" + (f" (line {turn.line})" if turn.line else "")
    lines = [f"FAIL {result.path}: {result.title}", f"  {where}, {turn.user}: {turn.kind} {_quote(turn.said)}"]
    reply = turn.reply or {}
    if "text" in reply:
        lines.append(f"  reply [{reply['action']}]: {_quote(reply['text'])}")
        if reply.get("quick_replies"):
            lines.append(f"  quick replies: {', '.join(reply['quick_replies'])}")
    elif "refused" in reply:
        lines.append(f"  refused: {reply['refused']}")
    for m in turn.mismatches:
        lines.append(f"  - expected {m.what}: {m.expected}")
        lines.append(f"  + got      {m.what}: {m.got}")
    return "\n".join(lines)
