"""Reports of dialogue-script runs (JSON and markdown), and the comparison of two runs.

``compare_runs`` reads any two JSON outputs of ``crs eval`` (dialogue runs, MCR rows, natural-
language MCR runs) and lists what changed: per script (pass → fail and back), and per metric.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crs.evals.dialogues import ScriptResult, format_failure

__all__ = ["compare_runs", "load_run", "markdown_report", "summarise"]


def summarise(results: Sequence[ScriptResult], *, judge: dict[str, Any] | None = None,
              command: str | None = None) -> dict[str, Any]:
    """The JSON of ``crs eval dialogues``: counts, per-tag pass rates and per-script details."""
    passed = sum(r.passed for r in results)
    tags: dict[str, dict[str, int]] = {}
    for r in results:
        for tag in r.tags or ["untagged"]:
            t = tags.setdefault(tag, {"scripts": 0, "passed": 0})
            t["scripts"] += 1
            t["passed"] += int(r.passed)
    out: dict[str, Any] = {
        "scripts": len(results), "passed": passed, "failed": len(results) - passed,
        "pass_rate": round(passed / len(results), 4) if results else 0.0,
        "turns": sum(len(r.turns) for r in results),
        "seconds": round(sum(r.seconds for r in results), 2),
        "tags": dict(sorted(tags.items())),
        "details": [r.to_dict() for r in results],
    }
    if judge is not None:
        out["judge"] = judge
    if command:
        out["command"] = command
    return out


def markdown_report(summary: dict[str, Any]) -> str:
    lines = ["# Dialogue scripts", ""]
    if summary.get("command"):
        lines += [f"`{summary['command']}`", ""]
    lines += [f"**{summary['passed']} / {summary['scripts']} passed** ({summary['turns']} turns, "
              f"{summary['seconds']:.1f} s)", "", "| tag | scripts | passed |", "|---|---|---|"]
    lines += [f"| {tag} | {t['scripts']} | {t['passed']} |" for tag, t in summary["tags"].items()]
    judge = summary.get("judge")
    if judge:
        lines += ["", "## Judge (1–5, mean over scored replies)", "", "| criterion | score |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in judge.get("means", {}).items()]
    failed = [d for d in summary["details"] if not d["passed"]]
    if failed:
        lines += ["", "## Failures", ""]
        for d in failed:
            lines += ["```", _failure_text(d), "```"]
    lines += ["", "## Scripts", "", "| script | result | turns | seconds |", "|---|---|---|---|"]
    lines += [f"| {d['name']} | {'pass' if d['passed'] else 'FAIL'} | {len(d['turns'])} | {d['seconds']:.2f} |"
              for d in summary["details"]]
    return "\n".join(lines) + "\n"


def _failure_text(detail: dict[str, Any]) -> str:
    from crs.evals.dialogues import TurnResult
    from crs.evals.expect import Mismatch

    result = ScriptResult(detail["path"], detail["name"], error=detail.get("error"))
    first = detail.get("first_failure")
    if first:
        result.turns.append(TurnResult(first["turn"], first["line"], first["kind"], first["user"], first["said"],
                                       first["reply"], [Mismatch(**m) for m in first["mismatches"]]))
    return format_failure(result)


def load_run(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None


def _metrics(run: Any) -> dict[str, float]:
    """Flat numeric metrics of any crs eval output, keyed by a readable name."""
    rows = run if isinstance(run, list) else run.get("rows", [run]) if isinstance(run, dict) else []
    out: dict[str, float] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        prefix = "/".join(str(row[k]) for k in ("dataset", "policy", "mode") if k in row)
        for key, value in row.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or key in ("seed",):
                continue
            out[f"{prefix}/{key}" if prefix else key] = float(value)
        judge = row.get("judge", {}).get("means", {}) if isinstance(row.get("judge"), dict) else {}
        for key, value in judge.items():
            out[f"judge/{key}"] = float(value)
    return out


def compare_runs(a: Any, b: Any, *, names: tuple[str, str] = ("A", "B")) -> tuple[str, dict[str, Any]]:
    """A markdown comparison of two runs and its data: per script, then per metric."""
    lines: list[str] = [f"# {names[0]} → {names[1]}", ""]
    data: dict[str, Any] = {"scripts": [], "metrics": []}
    if isinstance(a, dict) and isinstance(b, dict) and "details" in a and "details" in b:
        before = {d["path"]: d for d in a["details"]}
        after = {d["path"]: d for d in b["details"]}
        changed = []
        for path in sorted(set(before) | set(after)):
            x, y = before.get(path), after.get(path)
            sx = "absent" if x is None else "pass" if x["passed"] else "FAIL"
            sy = "absent" if y is None else "pass" if y["passed"] else "FAIL"
            if sx != sy:
                changed.append((path, sx, sy))
            data["scripts"].append({"path": path, names[0]: sx, names[1]: sy})
        lines += ["## Scripts", ""]
        if changed:
            lines += ["| script | " + " | ".join(names) + " |", "|---|---|---|"]
            lines += [f"| {p} | {sx} | {sy} |" for p, sx, sy in changed]
        else:
            lines.append(f"No script changed result ({len(data['scripts'])} compared).")
        lines.append("")
    ma, mb = _metrics(a), _metrics(b)
    keys = [k for k in ma if k in mb] + [k for k in mb if k not in ma]
    lines += ["## Metrics", "", f"| metric | {names[0]} | {names[1]} | change |", "|---|---|---|---|"]
    for k in keys:
        x, y = ma.get(k), mb.get(k)
        delta = "" if x is None or y is None else f"{y - x:+.4g}"
        lines.append(f"| {k} | {'' if x is None else f'{x:.4g}'} | {'' if y is None else f'{y:.4g}'} | {delta} |")
        data["metrics"].append({"metric": k, names[0]: x, names[1]: y})
    return "\n".join(lines) + "\n", data
