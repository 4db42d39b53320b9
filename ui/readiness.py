"""Is the recommender ready to serve: do its stores answer?"""

from __future__ import annotations

from crs import Recommender

__all__ = ["readiness"]


def readiness(rec: Recommender) -> dict[str, str]:
    """One word per store: ``ok``, ``off (...)`` when not configured, else what failed.

    The conversation store is asked for a checkpoint that does not exist (a real read); the
    memory store for its heartbeat.
    """
    checks: dict[str, str] = {}
    try:
        rec.checkpointer.get_tuple({"configurable": {"thread_id": "readyz", "checkpoint_ns": ""}})
        checks["conversations"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is the answer
        checks["conversations"] = f"failed: {exc}"
    if not rec.settings.memory:
        checks["memory"] = "off (memory = false in the settings)"
        return checks
    store = getattr(rec.memory, "store", None)
    if store is None:
        reason = getattr(rec.memory, "disabled_reason", None) or "no store"
        checks["memory"] = f"failed: {reason}"
        return checks
    try:
        heartbeat = getattr(store, "heartbeat", None)
        if heartbeat is not None:
            heartbeat()
        checks["memory"] = "ok"
    except Exception as exc:
        checks["memory"] = f"failed: {exc}"
    return checks
