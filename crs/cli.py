"""The ``crs`` command line: chat in the terminal, run the web demo, evaluate, train."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from crs.memory.allocator import ensure_private_allocator
from crs.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="crs",
    help="A conversational recommender that asks good questions and explains its picks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CatalogOpt = Annotated[Path | None, typer.Option(help="catalog file (.jsonl or .csv); default: bundled albums")]
DatasetOpt = Annotated[str | None, typer.Option(help="an SCPR benchmark instead: lastfm or lastfm_star")]
DataDirOpt = Annotated[Path | None, typer.Option(help="folder holding the benchmark datasets")]
SettingsOpt = Annotated[Path | None, typer.Option("--settings", help="settings file (.toml, .yaml, .json)")]
StateDirOpt = Annotated[Path | None, typer.Option(help="where conversations are kept (default $CRS_HOME)")]
PersonaOpt = Annotated[str | None, typer.Option(help="the bot's persona: a name from `crs personas`, or a .yaml file")]
InteractionsOpt = Annotated[Path | None, typer.Option(help="user,item[,timestamp] rows for --catalog (CSV/JSONL)")]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="a trained scorer (`crs train scorer`); default: "
                                                "trained on first use when the catalog has interactions")]
PolicyOpt = Annotated[str | None, typer.Option("--policy", help="a registered policy (`crs eval mcr --list-policies`); "
                                                "default: best with interactions, else popularity")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"crs: error: {message}", err=True)
    return typer.Exit(code=2)


_DATASETS = ("lastfm", "lastfm_star")


def _settings(
    settings_file: Path | None, catalog: Path | None, dataset: str | None, data_dir: Path | None,
    state_dir: Path | None, **extra: Any,
) -> Settings:
    if dataset is not None and dataset not in _DATASETS:
        raise _fail(f"--dataset must be one of {', '.join(_DATASETS)}; got {dataset!r}")
    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    for key, value in (("catalog", catalog), ("dataset", dataset), ("data_dir", data_dir),
                       ("state_dir", state_dir)):
        if value is not None:
            overrides[key] = value
    if catalog is not None and dataset is not None:
        raise _fail("give either --catalog or --dataset, not both")
    try:
        if settings_file is not None:
            return load_settings(settings_file, **overrides)
        return Settings.model_validate(overrides)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    except ValidationError as exc:  # command-line values
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise _fail(f"{where}: {str(error['msg']).removeprefix('Value error, ')}") from None


def _serving(settings: Settings) -> Settings:
    """A server's settings: the embedded memory store in a process of its own unless set, so one
    person's memory write never stalls another's reply (see crs.memory.process_store)."""
    if "memory_process" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"memory_process": True})


def _recommender(settings: Settings) -> Any:
    from tqdm import tqdm

    from crs.api import CheckpointError, InvalidInput, Recommender
    from crs.graphs.postgres import ConversationStoreUnavailable
    from crs.kb import KBError
    from crs.language.llm import MissingExtraError
    from crs.memory.store import MemoryStoreError

    bar: Any = None

    def notice(line: str) -> None:
        typer.echo(f"crs: {line}", err=True)

    def progress(epoch: int, epochs: int, loss: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=epochs, desc="training", unit="epoch", file=sys.stderr)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.update(1)

    try:
        rec = Recommender.from_settings(settings, training_progress=progress, training_notice=notice)
    except (KBError, InvalidInput, MissingExtraError, CheckpointError, MemoryStoreError,
            ConversationStoreUnavailable) as exc:
        raise _fail(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    return rec


def _engine_line(rec: Any) -> str:
    """Which policy ranks the items, and with what settings (one line for the start of a chat)."""
    if rec.policy_name == "popularity":
        if rec.graph.popularity.any():
            return "engine: popularity (items ranked by their interactions)"
        return "engine: popularity (the catalog has no interactions: every item scores the same)"
    policy = rec.settings.policy
    return f"engine: {rec.policy_name} (trained scorer; temperature {policy.temperature:g})"


def _check_persona(persona: str | None) -> None:
    """Fail early (before the catalog loads) on an unknown persona, listing the known ones."""
    from crs.language.personas import PersonaError, resolve_persona

    if persona is not None:
        try:
            resolve_persona(persona)
        except PersonaError as exc:
            raise _fail(str(exc)) from None


@app.command()
def personas() -> None:
    """List the bundled personas (use one with --persona NAME)."""
    from crs.language.personas import bundled_personas, load_persona

    for name in bundled_personas():
        persona = load_persona(name)
        typer.echo(f"{name:<10} {persona.title}: {persona.description}")


@app.command()
def chat(
    catalog: CatalogOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    user: Annotated[str, typer.Option(help="who is chatting (memory is per user)")] = "local",
    session: Annotated[str | None, typer.Option(help="continue this session (default: a new one)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object per reply")] = False,
    settings_file: SettingsOpt = None,
    state_dir: StateDirOpt = None,
    persona: PersonaOpt = None,
    interactions: InteractionsOpt = None,
    model: ModelOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Chat in the terminal. Without a TTY, reads one message per line from stdin."""
    if not user.strip():
        raise _fail("--user must not be empty")
    _check_persona(persona)
    rec = _recommender(_settings(settings_file, catalog, dataset, data_dir, state_dir, persona=persona,
                                 interactions=interactions, model=model, strategy=policy))
    from crs.api import CheckpointError

    session_id = session or uuid.uuid4().hex[:12]
    interactive = sys.stdin.isatty() and not as_json
    failed = False
    if interactive:
        typer.echo(f"crs: {_engine_line(rec)}", err=True)
        typer.echo(f"crs: session {session_id}. Say what you're looking for; Ctrl-D quits.")
    while True:
        if interactive:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo()
                break
        else:
            raw = sys.stdin.readline()
            if not raw:
                break
            line = raw.rstrip("\n")
        try:
            reply = rec.chat(user, session_id, line)
        except CheckpointError as exc:  # e.g. a full disk: this turn is lost, the conversation is not
            typer.echo(f"crs: error: {exc}", err=True)
            failed = True
            continue
        if as_json:
            sys.stdout.write(json.dumps(reply.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            typer.echo(("bot> " if interactive else "") + reply.text)
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(
    catalog: CatalogOpt = None,
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 7860,
    settings_file: SettingsOpt = None,
    state_dir: StateDirOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    persona: PersonaOpt = None,
    user: Annotated[str | None, typer.Option(
        help="one user for every visitor (default: each browser is its own user)")] = None,
    interactions: InteractionsOpt = None,
    model: ModelOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Start the Gradio chat demo on http://127.0.0.1:PORT."""
    from crs.ui.web import launch

    _check_free_port("127.0.0.1", port)
    _check_persona(persona)
    rec = _recommender(_serving(_settings(settings_file, catalog, dataset, data_dir, state_dir, persona=persona,
                                          interactions=interactions, model=model, strategy=policy)))
    typer.echo(f"crs: {_engine_line(rec)}", err=True)
    launch(rec, port=port, user_id=user)


@app.command()
def forget(
    user: Annotated[str, typer.Option(help="the user to forget")],
    settings_file: SettingsOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Forget a user: their memories, derived profile and every conversation."""
    rec = _recommender(_settings(settings_file, None, None, None, state_dir))
    report = rec.forget(user)
    left = report.pop("not_deleted", [])
    for what in report.pop("not_scrubbed", []):
        typer.echo(f"note: not scrubbed here: {what}", err=True)
    if not left and "memories" in report and not any(report.values()):  # with memory off, it cannot tell
        raise _fail(f"no user {user!r} is known here (nothing is stored about them); nothing was forgotten")
    typer.echo(f"forgot {user!r}: " + ", ".join(f"{n} {what}" for what, n in sorted(report.items())))
    if left:
        for what in left:
            typer.echo(f"error: not deleted: {what}", err=True)
        raise typer.Exit(1)


def _check_free_port(host: str, port: int) -> None:
    from crs.ui.server import PortInUse, bind

    try:
        bind(host, port).close()
    except PortInUse as exc:
        raise _fail(str(exc)) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    settings_file: SettingsOpt = None,
    catalog: CatalogOpt = None,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    state_dir: StateDirOpt = None,
    persona: PersonaOpt = None,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", help="serve without tokens (one tenant, 'default'); only for a trusted network")] = False,
    telegram: Annotated[bool, typer.Option(
        "--telegram", help="also serve the Telegram webhook at /telegram/webhook (CRS_TELEGRAM_TOKEN, "
        "CRS_TELEGRAM_SECRET)")] = False,
    workers: Annotated[int, typer.Option(
        help="worker processes behind the one port; more than 1 needs checkpoints_url (PostgreSQL) and "
        "memory_host (a Chroma server)")] = 1,
    checkpoints_url: Annotated[str | None, typer.Option(
        envvar="CRS_CHECKPOINTS_URL", help="conversations in PostgreSQL: postgresql://user@host:port/db "
        "(needs crs[postgres])")] = None,
    memory_host: Annotated[str | None, typer.Option(help="memories in a Chroma server (`chroma run`) at this "
                                                    "host")] = None,
    memory_port: Annotated[int | None, typer.Option(help="the Chroma server's port")] = None,
) -> None:
    """Serve the HTTP API for bots on http://HOST:PORT (tokens from CRS_API_TOKENS=tenant:token,...)."""
    try:
        from crs.ui.cpus import keep_on_cpu, serving_cpu
        from crs.ui.server import (
            NoTokens,
            PortInUse,
            WorkersNeedSharedStores,
            bind,
            check_workers,
            resolve_tokens,
            run,
            run_workers,
        )
        from crs.ui.tenants import TenantError
    except ImportError as exc:
        raise _fail(f"crs serve needs the serve extra: pip install 'crs[serve]' ({exc.name} is missing)") from None
    _check_persona(persona)
    settings = _serving(_settings(settings_file, catalog, dataset, data_dir, state_dir, persona=persona,
                                  checkpoints_url=checkpoints_url, memory_host=memory_host, memory_port=memory_port))
    try:
        check_workers(settings, workers)
        tokens = resolve_tokens(settings, insecure=insecure_no_auth)
        if telegram:
            settings = _telegram_settings(settings)
        sock = bind(host, port, reuse_port=workers > 1)
    except (NoTokens, TenantError, PortInUse, WorkersNeedSharedStores) as exc:
        raise _fail(str(exc)) from None
    # Before anything starts threads or the memory store's process: they inherit where this runs.
    try:
        cpu = serving_cpu(settings, workers)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if cpu is not None:
        keep_on_cpu(cpu)
    # A catalog, persona or store that cannot be used fails here, in one line (a model trained on
    # first use is trained and cached here once, not by every worker).
    rec = _recommender(settings)
    if tokens is None and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"crs serve: warning: no authentication, and {host} is reachable from other machines", err=True)
    auth = "no authentication" if tokens is None else f"tenants {', '.join(tokens.tenants)}"
    shape = f"{workers} workers; " if workers > 1 else ("" if cpu is None else f"on CPU {cpu}; ")
    typer.echo(f"crs serve: http://{host}:{port}/ ({shape}{auth}; API docs at /docs). Ctrl-C stops it.", err=True)
    if workers == 1:
        run(settings, sock=sock, tokens=tokens, recommender=rec, telegram=telegram)
        return
    del rec  # each worker builds its own from the same settings
    run_workers(settings, sock=sock, tokens=tokens, workers=workers, telegram=telegram)


def _telegram_settings(settings: Settings) -> Settings:
    try:
        from crs.ui.telegram import TelegramConfigError, check_bot, with_env
    except ImportError as exc:
        raise _fail(f"--telegram needs the telegram extra: pip install 'crs[telegram]' ({exc.name} is missing)") \
            from None
    try:
        settings = with_env(settings)
        typer.echo(f"crs serve: Telegram bot @{check_bot(settings.serve.telegram)}", err=True)
    except TelegramConfigError as exc:
        raise _fail(str(exc)) from None
    return settings


def _mount_optional() -> None:
    """Sub-commands whose modules may not exist in a partial install are mounted if present."""
    try:
        from crs.evals.cli import data_app, eval_app, train_app
    except ImportError:
        return
    try:
        from crs.evals.memory import memory_command
    except ImportError:
        pass
    else:
        eval_app.command("memory", help="Simulate returning users over several sessions.")(memory_command)
    app.add_typer(eval_app, name="eval", help="Run benchmark evaluations.")
    app.add_typer(train_app, name="train", help="Train models (e.g. the FM scorer).")
    app.add_typer(data_app, name="data", help="Make data sets (e.g. a synthetic catalog).")


_mount_optional()


def main() -> None:
    ensure_private_allocator()  # first: glibc reads it only at start (see crs.memory.allocator)
    app()


if __name__ == "__main__":
    main()
