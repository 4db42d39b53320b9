"""``crs eval mcr`` and ``crs train scorer``: the MCR benchmark and FM training from the shell.

The lead's ``crs/cli.py`` mounts ``eval_app`` as ``crs eval`` and ``train_app`` as
``crs train``; ``python -m evals.cli eval mcr ...`` works on its own too.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from crs.evals._blas import single_thread_blas
from crs.evals.dialogue_cli import compare_command, dialogues_command

__all__ = ["app", "data_app", "eval_app", "run_mcr", "train_app"]

eval_app = typer.Typer(help="Evaluate policies on the MCR benchmark.", no_args_is_help=True)
train_app = typer.Typer(help="Train models used by the policies.", no_args_is_help=True)
data_app = typer.Typer(help="Make data sets (synthetic catalogs).", no_args_is_help=True)
app = typer.Typer(no_args_is_help=True, add_completion=False)
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")

DEFAULT_DATA = Path("../shared/data")


@eval_app.callback()
def _eval() -> None:
    """Evaluate policies on the MCR benchmark."""


@train_app.callback()
def _train() -> None:
    """Train models used by the policies."""


@data_app.callback()
def _data() -> None:
    """Make data sets (synthetic catalogs)."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _load(dataset: str | None, data_dir: Path, catalog: Path | None, interactions: Path | None,
          questions: str | None = None) -> Any:
    """The benchmark data; ``questions`` (binary | enumerated) overrides how questions are answered."""
    from dataclasses import replace

    from crs.evals.data import load_benchmark_data
    from crs.kb import KBError

    if questions not in (None, "binary", "enumerated"):
        raise _fail(f"--questions must be binary or enumerated, not {questions!r}")
    try:
        data = load_benchmark_data(dataset, data_dir, catalog=catalog, interactions=interactions)
    except (KBError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if questions is not None:
        data = replace(data, enumerate_facets=questions == "enumerated")
    return data


def run_mcr(
    data: Any, policy: str, *, episodes: int, seed: int, no_rule: str, max_turns: int, topk: int,
    split: str, model: Any = None, show_progress: bool = True,
) -> dict[str, Any]:
    """Run one policy and return the result row (the JSON of ``crs eval mcr``)."""
    from crs.evals.runner import run_benchmark
    from crs.reasoning.policies import BEST, build_policy

    built = build_policy(policy, data.graph, model=model, top_k=topk, max_turns=max_turns,
                         no_rule=no_rule)  # type: ignore[arg-type]
    engine = built.engine(data.graph)
    pairs = data.splits[split]
    total = min(episodes, len(pairs))
    with tqdm(total=total, desc=f"{data.name}/{policy}", file=sys.stderr, disable=not show_progress,
              mininterval=0.5) as bar:
        run = run_benchmark(engine, pairs, episodes=episodes, seed=seed, max_turns=max_turns,
                            enumerate_facets=data.enumerate_facets, progress=bar.update)
    n = max(len(run.episodes), 1)
    row: dict[str, Any] = {
        "dataset": data.name, "policy": policy,
        "resolves_to": BEST if policy == "best" else built.name,
        "no_rule": no_rule, "episodes": len(run.episodes), "seed": seed, "max_turns": max_turns,
        "topk": topk, "split": split, "rejection_use": built.rejection_use,
        "questions": "enumerated" if data.enumerate_facets else "binary",
        "settings": built.described_settings(),
        "tuned": built.tuned,
    }
    row.update(run.metrics)
    row.update({
        "episodes_per_sec": round(run.episodes_per_sec, 1),
        "episodes_per_sec_wall": round(run.episodes_per_sec_wall, 1),
        "train_seconds": round(built.train_seconds, 2),
        "questions_per_episode": sum(e.questions for e in run.episodes) / n,
        "lists_per_episode": sum(e.lists for e in run.episodes) / n,
    })
    return row


OptPath = Path | None
OptStr = str | None


@eval_app.command("mcr")
def mcr(
    dataset: Annotated[OptStr, typer.Option("--dataset", help="lastfm | lastfm_star")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="folder holding lastfm/, lastfm_star/")] = DEFAULT_DATA,
    catalog: Annotated[OptPath, typer.Option("--catalog", help="a catalog in the project's format")] = None,
    interactions: Annotated[OptPath, typer.Option("--interactions", help="user,item rows for --catalog")] = None,
    policy: Annotated[str, typer.Option("--policy", help="a policy name (see --list-policies)")] = "best",
    episodes: Annotated[int, typer.Option("--episodes", min=1)] = 4000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    no_rule: Annotated[str, typer.Option("--no-rule", help="strict (a 'no' removes nothing) | prune")] = "strict",
    json_out: Annotated[OptPath, typer.Option("--json", help="write the results as JSON here")] = None,
    max_turns: Annotated[int, typer.Option("--max-turns", min=1, help="agent turns after the opening")] = 15,
    topk: Annotated[int, typer.Option("--topk", min=1, max=100, help="items per recommended list")] = 10,
    model: Annotated[OptPath, typer.Option("--model", help="a trained scorer; else one is trained now")] = None,
    split: Annotated[str, typer.Option("--split", help="test | valid")] = "test",
    list_policies: Annotated[bool, typer.Option("--list-policies", help="list the policies and exit")] = False,
    compare: Annotated[OptStr, typer.Option("--compare", help="p1,p2,...: run each; table + plot")] = None,
    table: Annotated[OptPath, typer.Option("--table", help="--compare: markdown table path")] = None,
    plot: Annotated[OptPath, typer.Option("--plot", help="--compare: PNG plot path")] = None,
    nl: Annotated[bool, typer.Option(
        "--nl", help="also run the same episodes through natural language (simulated messages, NLU, replies)")] = False,
    nl_llm: Annotated[OptStr, typer.Option(
        "--nl-llm", help="--nl: let a chat model reword each message, e.g. ollama:llama3.2")] = None,
    nl_embeddings: Annotated[bool, typer.Option(
        "--nl-embeddings/--no-nl-embeddings", help="--nl: the understander's offline embeddings")] = True,
    questions: Annotated[OptStr, typer.Option(
        "--questions", help="binary (yes/no about one attribute, as LastFM) | enumerated (all of a facet's "
        "values); default: enumerated for own catalogs with several facets, else binary")] = None,
) -> None:
    """Run simulated conversations (CPR / SCPR / UNICORN protocol) and report SR@k, AT, hDCG."""
    from crs.evals.report import markdown_table, plot_success_curves
    from crs.reasoning.fm import FMModel, ModelVersionError, load_fm, train_fm
    from crs.reasoning.policies import BEST, POLICIES, graph_pairs, policy_names

    if list_policies:
        for name in policy_names():
            spec = POLICIES[name]
            alias = f" (alias of {BEST})" if name == "best" else ""
            typer.echo(f"{name:12s} rejection_use={spec.rejection_use:15s} {spec.description}{alias}")
        return
    if no_rule not in ("strict", "prune"):
        raise _fail(f"--no-rule must be strict or prune, not {no_rule!r}")
    if split not in ("test", "valid"):
        raise _fail(f"--split must be test or valid, not {split!r}")
    names = [p.strip() for p in compare.split(",") if p.strip()] if compare else [policy]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise _fail(f"unknown policy {unknown[0]!r}; known policies: {', '.join(policy_names())}")
    single_thread_blas()
    data = _load(dataset, data_dir, catalog, interactions, questions)
    fm: FMModel | None = None
    train_seconds = 0.0
    if any(POLICIES[n].uses_model for n in names):
        if model is not None:
            try:
                fm = load_fm(model, data.graph)
            except (ModelVersionError, FileNotFoundError) as exc:
                raise _fail(str(exc)) from None
            # what training this model cost (CPU seconds, recorded by `crs train scorer`)
            recorded = fm.meta.get("train_cpu_seconds", fm.meta.get("train_seconds", 0.0))
            train_seconds = float(recorded) if isinstance(recorded, int | float) else 0.0
        else:
            typer.echo("no --model given: training the FM scorer on the train split", err=True)
            started = time.process_time()
            fm = train_fm(data.graph, graph_pairs(data.graph))
            train_seconds = time.process_time() - started
    if nl:
        from crs.evals.nl_cli import run_nl_command

        run_nl_command(data, names, fm=fm, episodes=episodes, seed=seed, no_rule=no_rule, max_turns=max_turns,
                       topk=topk, split=split, json_out=json_out, table=table, plot=plot, llm=nl_llm,
                       embeddings=nl_embeddings)
        return
    rows = []
    for name in names:
        row = run_mcr(data, name, episodes=episodes, seed=seed, no_rule=no_rule, max_turns=max_turns,
                      topk=topk, split=split, model=fm)
        if POLICIES[name].uses_model:
            row["train_seconds"] = round(train_seconds, 2)
            row["model"] = str(model) if model is not None else None
        rows.append(row)
    for row in rows:
        if row.get("tuned"):
            settings = ", ".join(f"{k} {v:g}" for k, v in row["settings"].items())
            typer.echo(f"{row['policy']}: settings tuned on the valid split, stored with the model ({settings})",
                       err=True)
    typer.echo(markdown_table(rows), nl=False)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(rows if compare else rows[0], indent=2) + "\n", encoding="utf-8")
    if compare:
        stem = f"mcr_{data.name}_{no_rule}"
        table_path = table or Path(f"{stem}.md")
        table_path.parent.mkdir(parents=True, exist_ok=True)
        table_path.write_text(markdown_table(rows), encoding="utf-8")
        plot_path = plot_success_curves(rows, plot or Path(f"{stem}.png"))
        typer.echo(f"wrote {table_path} and {plot_path}", err=True)


eval_app.command("dialogues")(dialogues_command)
eval_app.command("compare")(compare_command)


@train_app.command("scorer")
def scorer(
    out: Annotated[Path, typer.Option("--out", help="where to write the model (.npz)")],
    dataset: Annotated[OptStr, typer.Option("--dataset", help="lastfm | lastfm_star")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir")] = DEFAULT_DATA,
    catalog: Annotated[OptPath, typer.Option("--catalog")] = None,
    interactions: Annotated[OptPath, typer.Option("--interactions")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    dim: Annotated[int | None, typer.Option("--dim", min=2)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    max_rejected: Annotated[int | None, typer.Option("--max-rejected", min=0, help="rejected attributes per "
                            "training pair: learns the vectors policy fm-learned needs (default 0)")] = None,
    tune: Annotated[bool, typer.Option("--tune/--no-tune", help="tune the policy's settings on the valid "
                                       "split and store them with the model")] = True,
    tune_episodes: Annotated[int, typer.Option("--tune-episodes", min=1)] = 1000,
    questions: Annotated[OptStr, typer.Option("--questions", help="the protocol to tune for: binary | "
                                              "enumerated (default as `crs eval mcr`)")] = None,
    json_out: Annotated[OptPath, typer.Option("--json", help="write the training and tuning report here")] = None,
) -> None:
    """Train the FM scorer with BPR on the train split, tune ``best``'s settings on the valid split, save."""
    from dataclasses import replace

    from crs.reasoning.fm import FMConfig, train_fm
    from crs.reasoning.policies import graph_pairs

    single_thread_blas()
    data = _load(dataset, data_dir, catalog, interactions, questions)
    config = FMConfig.for_graph(data.graph, seed=seed)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if dim is not None:
        config = replace(config, dim=dim)
    if max_rejected is not None:
        config = replace(config, max_rejected=max_rejected)
    started = time.process_time()
    with tqdm(total=config.epochs, desc=f"train {data.name}", unit="epoch", file=sys.stderr) as bar:
        def progress(epoch: int, total: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)

        model = train_fm(data.graph, graph_pairs(data.graph), config, progress=progress)
    seconds = time.process_time() - started
    model.meta["train_cpu_seconds"] = round(seconds, 2)
    report: dict[str, Any] = {"dataset": data.name, "train_pairs": model.meta["train_pairs"],
                              "n_items": data.graph.n_items, "n_attributes": data.graph.n_attributes,
                              "train_cpu_seconds": round(seconds, 2), "config": model.meta["config"]}
    if tune:
        from crs.evals.tuning import grid_size, tune_policy

        started = time.process_time()
        with tqdm(total=grid_size(), desc="tune on valid", file=sys.stderr) as bar:
            try:
                tuned = tune_policy(data, model, episodes=tune_episodes, seed=seed, progress=bar.update)
            except ValueError as exc:
                raise _fail(str(exc)) from None
        tuned["tune_cpu_seconds"] = round(time.process_time() - started, 2)
        model.meta["tuned"] = tuned
        report["tuned"] = tuned
        chosen = ", ".join(f"{k} {v:g}" for k, v in tuned["settings"].items())
        typer.echo(f"tuned {tuned['policy']} on {tuned['episodes']} valid episodes: {chosen} "
                   f"(valid SR@15 {tuned['valid']['SR@15']:.3f}, AT {tuned['valid']['AT']:.2f})")
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    typer.echo(f"wrote {out} ({model.meta['train_pairs']} train pairs, {seconds:.1f} s CPU)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


@data_app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", help="folder for <name>.jsonl and <name>.interactions.csv")],
    items: Annotated[int, typer.Option("--items", min=1)] = 2000,
    attributes: Annotated[int, typer.Option("--attributes", min=1)] = 200,
    users: Annotated[int, typer.Option("--users", min=1)] = 1000,
    interactions: Annotated[int, typer.Option("--interactions", min=3)] = 20000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    attrs_per_item: Annotated[int, typer.Option("--attrs-per-item", min=1, help="mean attributes per item")] = 8,
    skew: Annotated[float, typer.Option("--skew", min=0.0, help="popularity power-law exponent (0: flat)")] = 1.0,
    facets: Annotated[int, typer.Option("--facets", min=1, help="facets the attributes are spread over")] = 1,
    name: Annotated[str, typer.Option("--name")] = "synth",
) -> None:
    """Write a seeded synthetic catalog and its interactions in the project's own formats."""
    from crs.kb.synth import synth_catalog, write_synth

    try:
        made = synth_catalog(items=items, attributes=attributes, users=users, interactions=interactions, seed=seed,
                             attrs_per_item=attrs_per_item, skew=skew, facets=facets)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    catalog_path, inter_path = write_synth(made, out, name)
    typer.echo(f"wrote {catalog_path} ({len(made.items)} items) and {inter_path} "
               f"({len(made.interactions)} interactions)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
