"""Memory writes off the reply path: one worker thread per memory, run in submission order.

A reflection writes to the store (embeddings, an upsert, the profile file): tens of
milliseconds that the person waiting for a reply should not pay. Tasks run one at a time, in
order, so a user's writes stay in the order their turns happened. Readers of a user's memory
call :meth:`Reflector.settle` first and so always see what earlier turns wrote; forget-me calls
:meth:`cancel`, which drops the user's queued tasks and waits for the one running. At
interpreter exit the queue is drained (see :func:`atexit.register`), so a session ending with
the process keeps what was said in it.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

__all__ = ["Reflector"]

log = logging.getLogger(__name__)

_EXIT_WAIT_SECONDS = 30.0
T = TypeVar("T")


class Reflector:
    """A background worker for one memory's writes, started on the first task."""

    def __init__(self, name: str = "crs-memory-reflect") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[tuple[str, int, Callable[[], None]]] = queue.SimpleQueue()
        self._pending: Counter[str] = Counter()  # user -> tasks queued or running
        self._generation: Counter[str] = Counter()  # bumped by cancel: older tasks of the user are dropped
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, user_id: str, task: Callable[[], None]) -> None:
        with self._cond:
            self._pending[user_id] += 1
            self._queue.put((user_id, self._generation[user_id], task))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
                _at_exit(self)

    def on_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def pending(self, user_id: str | None = None) -> int:
        with self._cond:
            return self._pending[user_id] if user_id is not None else sum(self._pending.values())

    def settle(self, user_id: str | None = None, timeout: float | None = None) -> bool:
        """Wait until the user's tasks (all tasks, without a user) are done; False on timeout.
        A task that reads its own user's memory does not wait for itself."""
        if self.on_worker():
            return True
        with self._cond:
            if user_id is None:
                return self._cond.wait_for(lambda: not self._pending, timeout)
            return self._cond.wait_for(lambda: not self._pending[user_id], timeout)

    def cancel(self, user_id: str, timeout: float | None = None) -> bool:
        """Drop the user's queued tasks and wait for the running one: nothing of theirs is written after."""
        with self._cond:
            self._generation[user_id] += 1
        return self.settle(user_id, timeout)

    def call(self, user_id: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker, between other writes (none runs beside it), and return its result."""
        if self.on_worker():
            return fn()
        done = Future[T]()

        def task() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self.submit(user_id, task)
        return done.result()

    def _run(self) -> None:
        while True:
            user_id, generation, task = self._queue.get()
            try:
                with self._cond:
                    current = self._generation[user_id] == generation
                if current:
                    task()
            except Exception:  # a failed write must not stop the worker; the turn already replied
                log.exception("a background memory write for user %r failed", user_id)
            finally:
                with self._cond:
                    self._pending[user_id] -= 1
                    if self._pending[user_id] <= 0:
                        del self._pending[user_id]
                    self._cond.notify_all()


_LIVE: weakref.WeakSet[Reflector] = weakref.WeakSet()
_REGISTERED = threading.Lock()


def _at_exit(reflector: Reflector) -> None:
    with _REGISTERED:
        if not getattr(_at_exit, "done", False):
            atexit.register(_drain_all)
            _at_exit.done = True  # type: ignore[attr-defined]
        _LIVE.add(reflector)


def _drain_all() -> None:
    for reflector in list(_LIVE):
        if not reflector.settle(timeout=_EXIT_WAIT_SECONDS):
            log.warning("exiting with %d memory writes still queued", reflector.pending())
