"""Memory writes off the reply path: a few worker threads per memory, each user's writes in order.

A reflection writes to the store (embeddings, an upsert, the profile file): tens of
milliseconds that the person waiting for a reply should not pay. A user's tasks run one at a
time, in the order their turns happened; different users' run side by side, so one user's
reader never waits behind a backlog of other users' writes. Readers of a user's memory
call :meth:`Reflector.settle` first and so always see what earlier turns wrote; forget-me calls
:meth:`cancel`, which drops the user's queued tasks and waits for the one running. At
interpreter exit the queue is drained (see :func:`atexit.register`), so a session ending with
the process keeps what was said in it.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["Reflector"]

log = logging.getLogger(__name__)

_EXIT_WAIT_SECONDS = 30.0
T = TypeVar("T")


class Reflector:
    """Background writes for one memory: each user's tasks run in order, one at a time; different
    users' tasks run on a small pool of threads (started on the first task)."""

    def __init__(self, name: str = "crs-memory-write", workers: int = 4) -> None:
        self._name = name
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._queues: dict[str, deque[tuple[int, Callable[[], None]]]] = {}  # users with tasks left
        self._pending: Counter[str] = Counter()  # user -> tasks queued or running
        self._generation: Counter[str] = Counter()  # bumped by cancel: older tasks of the user are dropped
        self._running: set[str] = set()  # users whose queue a thread is draining now
        self._cond = threading.Condition()
        self._local = threading.local()

    def submit(self, user_id: str, task: Callable[[], None]) -> None:
        with self._cond:
            self._pending[user_id] += 1
            queue = self._queues.get(user_id)
            start = queue is None  # else a thread is already draining this user's queue
            if queue is None:
                queue = self._queues[user_id] = deque()
            queue.append((self._generation[user_id], task))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=self._name)
                _at_exit(self)
            pool = self._pool
        if start:
            pool.submit(self._drain, user_id)

    def on_worker(self) -> bool:
        return bool(getattr(self._local, "on", False))

    def pending(self, user_id: str | None = None) -> int:
        with self._cond:
            return self._pending[user_id] if user_id is not None else sum(self._pending.values())

    def settle(self, user_id: str | None = None, timeout: float | None = None) -> bool:
        """Wait until the user's tasks (all tasks, without a user) are done; False on timeout.
        A task that reads memory does not wait for itself."""
        if self.on_worker():
            return True
        with self._cond:
            # Writes not started yet (the threads busy with other users') are run here, now:
            # a reader waits for this user's writes only, never for a backlog of others'.
            steal = user_id is not None and user_id in self._queues and user_id not in self._running
            if steal and user_id is not None:
                self._running.add(user_id)
        if steal and user_id is not None:
            self._run_queue(user_id)
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
        """Run ``fn`` in order with the user's writes (after those queued) and return its result."""
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

    def _drain(self, user_id: str) -> None:
        with self._cond:
            if user_id in self._running or user_id not in self._queues:
                return  # a reader took these writes over, or another thread drains them
            self._running.add(user_id)
        self._run_queue(user_id)

    def _run_queue(self, user_id: str) -> None:
        """Run the user's queued tasks in order (the caller put the user in ``_running``)."""
        was = getattr(self._local, "on", False)
        self._local.on = True
        try:
            while True:
                with self._cond:
                    queue = self._queues.get(user_id)
                    if not queue:
                        self._queues.pop(user_id, None)
                        self._running.discard(user_id)
                        return
                    generation, task = queue.popleft()
                    current = self._generation[user_id] == generation
                try:
                    if current:
                        task()
                except Exception:  # a failed write must not stop the others; the turn already replied
                    log.exception("a background memory write for user %r failed", user_id)
                finally:
                    with self._cond:
                        self._pending[user_id] -= 1
                        if self._pending[user_id] <= 0:
                            del self._pending[user_id]
                        self._cond.notify_all()
        finally:
            self._local.on = was


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
