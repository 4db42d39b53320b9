"""``crs eval mcr --nl``: structured and natural-language SR@k side by side, for the same episodes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from tqdm import tqdm

__all__ = ["NL_COLUMNS", "run_nl_command"]

NL_COLUMNS = ("dataset", "policy", "mode", "no_rule", "SR@5", "SR@10", "SR@15", "AT", "hDCG", "misread_rate",
              "episodes", "seed")


def _rephraser(spec: str | None) -> Any:
    if spec is None:
        return None
    from crs.evals.nl_user import ChatRephraser
    from crs.language.llm import load_chat_model
    from crs.language.llm.config import LLMSettings

    provider, _, model = spec.partition(":")
    try:
        return ChatRephraser(load_chat_model(LLMSettings.model_validate({"provider": provider,
                                                                         "model": model or None})))
    except Exception as exc:  # pydantic or a missing extra: say which, and stop
        typer.echo(f"error: --nl-llm {spec!r}: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(2) from None


def run_nl_command(data: Any, names: list[str], *, fm: Any, episodes: int, seed: int, no_rule: str, max_turns: int,
                   topk: int, split: str, json_out: Path | None, table: Path | None, plot: Path | None,
                   llm: str | None, embeddings: bool) -> None:
    from crs.evals.nl_mcr import run_nl_benchmark
    from crs.evals.report import markdown_table, plot_success_curves
    from crs.kb.embeddings import default_embedder
    from crs.reasoning.policies import build_policy

    rephraser = _rephraser(llm)
    embedder = default_embedder() if embeddings else None
    rows: list[dict[str, Any]] = []
    for name in names:
        built = build_policy(name, data.graph, model=fm, top_k=topk, max_turns=max_turns,
                             no_rule=no_rule)  # type: ignore[arg-type]
        pairs = data.splits[split]
        with tqdm(total=min(episodes, len(pairs)), desc=f"{data.name}/{name} nl", file=sys.stderr,
                  mininterval=0.5) as bar:
            run = run_nl_benchmark(built.engine(data.graph), pairs, episodes=episodes, seed=seed,
                                   max_turns=max_turns, enumerate_facets=data.enumerate_facets, embedder=embedder,
                                   rephraser=rephraser, progress=bar.update, transcripts=3)
        base = {"dataset": data.name, "policy": name, "no_rule": no_rule, "episodes": len(run.episodes),
                "seed": seed, "max_turns": max_turns, "topk": topk, "split": split,
                "rejection_use": built.rejection_use, "embeddings": embeddings, "rephraser": llm}
        rows.append({**base, "mode": "structured", **run.structured})
        rows.append({**base, "mode": "nl", **run.nl, "gap_points": run.gap,
                     "examples": [e.transcript for _, e in run.episodes[:3]]})
    typer.echo(markdown_table(rows, NL_COLUMNS), nl=False)
    for row in rows[1::2]:
        key = f"SR@{max_turns}"
        typer.echo(f"{row['dataset']}/{row['policy']}: {key} through natural language {row[key]:.3f}, structured "
                   f"{row[key] + row['gap_points'] / 100:.3f} (gap {row['gap_points']:.2f} points; {row['episodes']} "
                   f"episodes, seed {seed}, no_rule={no_rule}, top-{topk}, {max_turns} turns)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"rows": rows}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if table is not None:
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(markdown_table(rows, NL_COLUMNS), encoding="utf-8")
    if plot is not None:
        labelled = [{**r, "policy": f"{r['policy']} {r['mode']}"} for r in rows]
        plot_success_curves(labelled, plot, title=f"{data.name}: structured vs natural language, "
                            f"no_rule={no_rule}, {rows[0]['episodes']} episodes, seed {seed}")
