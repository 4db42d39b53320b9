"""``crs eval dialogues`` and ``crs eval compare``: scripted dialogues and run comparisons from the shell."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["compare_command", "dialogues_command"]


def _judge(spec: str | None) -> Any:
    """``provider:model`` (e.g. ``openai:gpt-4o-mini``, ``ollama:llama3.2``, ``local``) → an LLMJudge."""
    if spec is None:
        return None
    from crs.evals.judge import LLMJudge
    from crs.language.llm import load_chat_model
    from crs.language.llm.config import LLMSettings

    provider, _, model = spec.partition(":")
    try:
        chat = load_chat_model(LLMSettings.model_validate({"provider": provider, "model": model or None}))
    except Exception as exc:  # pydantic or a missing extra: say which, and stop
        raise typer.BadParameter(f"--judge {spec!r}: {str(exc).splitlines()[0]}") from None
    if chat is None:
        raise typer.BadParameter(f"--judge {spec!r}: names no chat model")
    return LLMJudge(chat)


def _judge_run(judge: Any, results: list[Any], limit: int) -> dict[str, Any]:
    from crs.evals.judge import JudgeScore, mean_scores

    scores: list[JudgeScore] = []
    per_turn: list[dict[str, Any]] = []
    for result in results:
        history: list[tuple[str, str]] = []
        for turn in result.turns:
            reply = turn.reply or {}
            if "text" not in reply:
                continue
            if len(scores) < limit:
                score = judge.score(history, reply["text"])
                scores.append(score)
                per_turn.append({"path": result.path, "turn": turn.index, **score.to_dict()})
            history += [("user", turn.said), ("assistant", reply["text"])]
    return {"means": mean_scores(scores), "replies": per_turn}


def dialogues_command(
    paths: Annotated[list[Path], typer.Argument(help="script files or folders of *.dialogue.yaml")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results as JSON here")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write a markdown report here")] = None,
    judge: Annotated[str | None, typer.Option(
        "--judge", help="score replies with a chat model, e.g. openai:gpt-4o-mini (off by default)")] = None,
    judge_limit: Annotated[int, typer.Option("--judge-limit", min=1, help="replies judged at most")] = 200,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
) -> None:
    """Run dialogue scripts; show the first failing turn of each failed script; exit 1 on any failure."""
    from crs.evals.dialogue_report import markdown_report, summarise
    from crs.evals.dialogues import RecommenderPool, format_failure, run_paths
    from crs.evals.script import ScriptError, find_scripts

    try:
        total = len(find_scripts(paths))
    except ScriptError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if total == 0:
        typer.echo("error: no *.dialogue.yaml scripts under " + ", ".join(map(str, paths)), err=True)
        raise typer.Exit(2)
    judged = _judge(judge)
    done = 0

    def progress(result: Any) -> None:
        nonlocal done
        done += 1
        if not quiet:
            status = "ok  " if result.passed else "FAIL"
            typer.echo(f"[{done}/{total}] {status} {result.path} ({result.seconds:.2f} s)", err=True)

    pool = RecommenderPool()
    try:
        results = run_paths(paths, pool, progress)
    finally:
        pool.close()
    failed = [r for r in results if not r.passed]
    for r in failed:
        typer.echo(format_failure(r))
        typer.echo("")
    verdict = judge_results = None
    if judged is not None:
        judge_results = _judge_run(judged, results, judge_limit)
    summary = summarise(results, judge=judge_results,
                        command="crs eval dialogues " + " ".join(shlex.quote(str(p)) for p in paths))
    verdict = f"{summary['passed']} passed, {summary['failed']} failed, {summary['scripts']} scripts"
    typer.echo(verdict)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(markdown_report(summary), encoding="utf-8")
    if failed:
        raise typer.Exit(1)


def compare_command(
    a: Annotated[Path, typer.Argument(help="the first run's JSON (crs eval ... --json)")],
    b: Annotated[Path, typer.Argument(help="the second run's JSON")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the comparison as JSON here")] = None,
) -> None:
    """Show what changed between two runs: per script and per metric."""
    from crs.evals.dialogue_report import compare_runs, load_run

    try:
        first, second = load_run(a), load_run(b)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    text, data = compare_runs(first, second, names=(a.name, b.name))
    typer.echo(text, nl=False)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
