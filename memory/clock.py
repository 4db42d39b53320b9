"""The memory's clock: what "now" is when a memory is written and when evidence is weighed.

Real time by default. A dialogue script's ``wait: 30 days`` or a test moves an
:class:`OffsetClock` forward instead of sleeping, so decay and "last time" behave as they
would after a real break.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from crs.memory.entry import utcnow

__all__ = ["Clock", "OffsetClock", "utcnow"]

#: returns the current time, timezone-aware (UTC)
Clock = Callable[[], datetime]


class OffsetClock:
    """Real time moved forward by everything waited so far (time keeps running in between,
    so memories written one after another still have distinct, ordered times).

    >>> clock = OffsetClock()
    >>> before = clock()
    >>> (clock.advance(timedelta(days=3)) - before) >= timedelta(days=3)
    True
    """

    def __init__(self, base: Clock = utcnow) -> None:
        self._base = base
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._base() + self._offset

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by ``by`` (a timedelta or seconds); returns the new now."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            raise ValueError(f"a clock only moves forward, got {step}")
        with self._lock:
            self._offset += step
        return self()
