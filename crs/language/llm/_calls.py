"""Calls with a deadline: a model that hangs must not hang the conversation."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

__all__ = ["LLMTimeout", "call_with_timeout", "iterate_with_deadline"]

T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="crs-llm")
_DONE = object()


class LLMTimeout(TimeoutError):
    """The model did not answer in time (the call may still finish in the background)."""


def call_with_timeout(fn: Callable[[], T], timeout: float) -> T:
    future = _POOL.submit(fn)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()
        raise LLMTimeout(f"no answer within {timeout:g} s") from None


def iterate_with_deadline(make: Callable[[], Iterable[T]], timeout: float) -> Iterator[T]:
    """Items of ``make()`` produced in a worker thread; :class:`LLMTimeout` past the deadline."""
    out: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in make():
                if stop.is_set():
                    return
                out.put(item)
        except BaseException as exc:  # handed to the consumer
            out.put(exc)
        finally:
            out.put(_DONE)

    _POOL.submit(pump)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LLMTimeout(f"the stream did not finish within {timeout:g} s")
            try:
                item = out.get(timeout=left)
            except queue.Empty:
                raise LLMTimeout(f"the stream did not finish within {timeout:g} s") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
