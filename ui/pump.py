"""A blocking generator run on one thread of its own, its items handed to the event loop.

The event loop must never block on a turn, so the turn's replies are produced on a thread and
awaited here; a consumer that goes away sets ``stop`` and the producer closes the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

__all__ = ["ThreadPump"]

Kind = Literal["item", "end", "error"]


class ThreadPump:
    """``await get()`` gives ``("item", x)`` per item, then ``("end", None)`` or ``("error", exc)``.

    Setting :attr:`stop` makes the thread close the generator (on that same thread) after the
    item it is producing, so a consumer that goes away leaves nothing locked.
    """

    def __init__(self, make: Callable[[], Iterator[Any]]) -> None:
        self.stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[Kind, Any]] = asyncio.Queue()
        threading.Thread(target=self._run, args=(make,), daemon=True, name="crs-stream").start()

    async def get(self) -> tuple[Kind, Any]:
        return await self._queue.get()

    def _put(self, kind: Kind, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (shutting down): nobody listens
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def _run(self, make: Callable[[], Iterator[Any]]) -> None:
        try:
            items = make()
            try:
                for item in items:
                    self._put("item", item)
                    if self.stop.is_set():
                        break
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:
            self._put("error", exc)
            return
        self._put("end", None)
