"""Chat models named in settings: one explicit registry, lazy imports, clear errors.

==========  ==========================================  =====================================
provider    class                                       install
==========  ==========================================  =====================================
openai      ``langchain_openai.ChatOpenAI`` (any         ``pip install 'crs[openai]'``
            OpenAI-compatible endpoint via base_url)
ollama      ``langchain_ollama.ChatOllama``              ``pip install 'crs[ollama]'``
anthropic   ``langchain_anthropic.ChatAnthropic``        ``pip install 'crs[anthropic]'``
local       :class:`crs.language.llm.local.ChatLlamaCpp`          ``pip install 'crs[local]'``
            (SmolLM2-135M-Instruct GGUF by default)
==========  ==========================================  =====================================

Any other langchain-core ``BaseChatModel`` can be passed in code instead
(``Recommender(graph, llm=model)``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from langchain_core.language_models import BaseChatModel

from crs.language.llm.config import PROVIDER_NAMES, LLMSettings

__all__ = ["PROVIDERS", "MissingExtraError", "load_chat_model", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, provider: str) -> ModuleType:
    """Import ``module`` or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"the {provider!r} LLM provider needs the optional dependency {module!r}: "
            f"install it with: pip install 'crs[{extra}]' ({exc})"
        ) from None


def _need_model(settings: LLMSettings) -> str:
    if not settings.model:
        raise ValueError(f"llm.model is required for the {settings.provider!r} provider")
    return settings.model


def _api_key(settings: LLMSettings) -> dict[str, Any]:
    if settings.api_key_env is None:
        return {}
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise ValueError(f"llm.api_key_env names ${settings.api_key_env}, which is not set")
    return {"api_key": key}


def _client(settings: LLMSettings, module: str, provider: str, cls: str, *, hosted: bool,
            **options: Any) -> BaseChatModel:
    """``module.cls`` for the settings' model and ``options``, with ``base_url`` when set.

    Checked in this order: the extra is installed, a model is named, the API key is set.
    """
    imported = require(module, provider, provider)
    kwargs: dict[str, Any] = {"model": _need_model(settings), "temperature": settings.temperature, **options}
    if hosted:  # a hosted API: the same token, timeout, retry and key options for every provider
        kwargs.update(max_tokens=settings.max_tokens, timeout=settings.timeout, max_retries=1,
                      **_api_key(settings))
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    return getattr(imported, cls)(**kwargs)  # type: ignore[no-any-return]


def _openai(settings: LLMSettings) -> BaseChatModel:
    return _client(settings, "langchain_openai", "openai", "ChatOpenAI", hosted=True)


def _ollama(settings: LLMSettings) -> BaseChatModel:
    return _client(settings, "langchain_ollama", "ollama", "ChatOllama", hosted=False,
                   num_predict=settings.max_tokens, seed=settings.seed)


def _anthropic(settings: LLMSettings) -> BaseChatModel:
    return _client(settings, "langchain_anthropic", "anthropic", "ChatAnthropic", hosted=True)


def _local(settings: LLMSettings) -> BaseChatModel:
    from crs.language.llm.local import ChatLlamaCpp, default_model_path

    require("llama_cpp", "local", "local")
    path = settings.model_path or default_model_path()
    return ChatLlamaCpp(model_path=str(path), n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                        temperature=settings.temperature, max_tokens=settings.max_tokens, seed=settings.seed)


PROVIDERS: dict[str, Callable[[LLMSettings], BaseChatModel]] = {
    "openai": _openai,
    "ollama": _ollama,
    "anthropic": _anthropic,
    "local": _local,
}
assert tuple(PROVIDERS) == PROVIDER_NAMES


def load_chat_model(settings: LLMSettings) -> BaseChatModel | None:
    """The chat model the settings name, or None when they name none."""
    if settings.provider is None:
        return None
    try:
        factory = PROVIDERS[settings.provider]
    except KeyError:
        raise ValueError(f"unknown LLM provider {settings.provider!r}; known: {', '.join(PROVIDERS)}") from None
    return factory(settings)
