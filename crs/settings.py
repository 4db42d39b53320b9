"""Typed settings, loaded from TOML, YAML or JSON. Unknown keys are errors, never ignored."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, SecretStr, ValidationError, field_validator

from crs.graphs.postgres import CheckpointURLError, check_url
from crs.language.llm.config import LLMSettings, TokenBudget
from crs.language.nlu import MAX_CHARS
from crs.language.personas import Persona
from crs.memory.config import MemorySettings, ProfileSettings, RerankerSettings
from crs.reasoning.policy import PolicySettings

__all__ = ["ServeSettings", "Settings", "SettingsError", "TelegramSettings", "default_state_dir", "load_settings"]

def default_state_dir() -> Path:
    """Where conversations and memories live: ``$CRS_HOME``, else ``~/.local/share/crs``."""
    env = os.environ.get("CRS_HOME")
    return Path(env) if env else Path.home() / ".local" / "share" / "crs"


class SettingsError(ValueError):
    """A settings file or value that cannot be used; the message names the file, line and key."""


class TelegramSettings(BaseModel):
    """The Telegram bot behind ``crs serve --telegram`` (env: CRS_TELEGRAM_TOKEN, CRS_TELEGRAM_SECRET)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = Field(None, description="the bot token from @BotFather")
    secret_token: SecretStr | None = Field(
        None, description="the secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (set with setWebhook)")
    tenant: str = Field("telegram", description="the tenant the bot's users belong to")
    base_url: str = Field("https://api.telegram.org/bot", description="the Bot API; tests point it at loopback")


class ServeSettings(BaseModel):
    """The HTTP API for bots (``crs serve``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description="tenant -> bearer token (also CRS_API_TOKENS=tenant:token,...)")
    max_body_bytes: int = Field(65536, ge=256, description="larger request bodies get 413")
    turn_threads: int = Field(
        4, ge=1, le=256, description="chat turns run at once per worker; more wait their turn in order. A turn "
        "is mostly Python, so threads beyond a few only share the interpreter lock and stretch every reply")
    cpu: NonNegativeInt | Literal["auto", "off"] = Field(
        "auto", description="the CPU a one-process server keeps its threads on, its memory store's process "
        "running on the others (auto: the last CPU, when there are two or more and nothing of the server "
        "computes on several cores; off: the kernel places the threads)")
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> object:
        # one message naming every form, not one per member of the union
        if value in ("auto", "off") or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f'expected a CPU number (0, 1, ...), "auto" or "off", got {value!r}')


class Settings(BaseModel):
    # inputs stay out of error texts: a checkpoints_url may hold a password
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    catalog: Path | None = Field(None, description="JSONL or CSV catalog; default: the bundled albums")
    vocabulary: Path | None = Field(None, description="facet vocabulary; default: <catalog>.vocab.json")
    interactions: Path | None = Field(None, description="user,item[,timestamp] rows (CSV or JSONL)")
    dataset: Literal["lastfm", "lastfm_star"] | None = Field(None, description="an SCPR benchmark instead")
    data_dir: Path | None = Field(None, description="folder holding the benchmark datasets")
    state_dir: Path = Field(default_factory=default_state_dir)
    checkpoints: Path | None = Field(None, description="SQLite checkpoint file; default state_dir/...")
    checkpoints_url: str | None = Field(
        None, description="postgresql://user@host:port/db: conversations in PostgreSQL, shared by every worker "
        "of `crs serve --workers N` (needs crs[postgres]); default: the SQLite file")
    policy: PolicySettings = Field(default_factory=PolicySettings)
    strategy: str | None = Field(
        None, description="a registered policy (`crs eval mcr --list-policies`) whose scorer ranks items; "
        "default: popularity, or 'best' when a model is given")
    model: Path | None = Field(None, description="a trained FM scorer file (`crs train scorer`)")
    memory: bool = Field(True, description="long-term memory of each user across sessions (Chroma)")
    memory_host: str | None = Field(None, description="a Chroma server (`chroma run`) instead of the embedded store")
    memory_port: int = Field(8000, ge=1, le=65535)
    memory_process: bool = Field(
        False, description="run the embedded memory store in a process of its own, so its writes (each "
        "holds Python's interpreter lock for much of its ~4 ms) never stall other turns; `crs serve` and "
        "`crs demo` turn it on unless it is set")
    memory_settings: MemorySettings = Field(
        default_factory=MemorySettings,
        description="reflection, reranker and profile knobs; tune `profile` on your catalog's valid split")
    max_message_chars: int = Field(MAX_CHARS, ge=1, description="longer messages are refused; all of it is read")
    embeddings: bool = Field(True, description="map free text to attributes with offline embeddings")
    persona: str | Persona = Field("default", description="a bundled persona's name, a .yaml file, or a table")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="optional chat model; default: none")
    serve: ServeSettings = Field(default_factory=ServeSettings, description="`crs serve`: tenants, tokens, limits")

    @field_validator("checkpoints_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            return str(check_url(url))
        except CheckpointURLError as exc:
            raise ValueError(str(exc)) from None

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoints or self.state_dir / "checkpoints.sqlite"


def load_settings(path: str | Path, **overrides: Any) -> Settings:
    """Read settings from a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"{path}: no such settings file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise SettingsError(f"{path}: unsupported settings format; use .toml, .yaml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{path}: cannot parse: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a table of settings at the top level")
    base = path.parent
    for key in ("catalog", "vocabulary", "interactions", "data_dir", "state_dir", "checkpoints", "model"):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str(base / data[key])  # relative paths are relative to the file
    persona = data.get("persona")
    if isinstance(persona, str) and persona.endswith((".yaml", ".yml")) and not Path(persona).is_absolute():
        data["persona"] = str(base / persona)
    try:
        return Settings.model_validate({**data, **overrides})
    except ValidationError as exc:
        raise SettingsError(_describe(exc, path, text)) from None


def _describe(exc: ValidationError, path: Path, text: str) -> str:
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc)
    line = _line_of(text, loc[-1]) if loc else None
    where = f"{path}, line {line}" if line else str(path)
    if error["type"] == "extra_forbidden":
        model: type[BaseModel] = _SUBMODELS.get(tuple(loc[:-1]), Settings)
        close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown setting {key!r}{hint}"
    return f"{where}: {key}: {str(error['msg']).removeprefix('Value error, ')}"


_SUBMODELS: dict[tuple[str, ...], type[BaseModel]] = {
    ("policy",): PolicySettings, ("llm",): LLMSettings, ("llm", "budget"): TokenBudget,
    ("memory_settings",): MemorySettings, ("memory_settings", "profile"): ProfileSettings,
    ("memory_settings", "reranker"): RerankerSettings,
    ("serve",): ServeSettings, ("serve", "telegram"): TelegramSettings,
}


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[:=]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None
