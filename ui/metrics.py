"""Prometheus metrics of one API app: turns, turn latency, errors and requests.

Each app has its own registry (no process-global collectors), so two apps in one process, as
in tests, never count each other's traffic.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "ApiMetrics"]

# Turn latencies: an offline turn takes milliseconds; an LLM's, seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter("crs_turns", "Conversation turns answered.", ["tenant", "kind"],
                             registry=self.registry)
        self.turn_seconds = Histogram("crs_turn_seconds", "Time to answer one turn (the whole reply).",
                                      ["kind"], buckets=_BUCKETS, registry=self.registry)
        self.errors = Counter("crs_errors", "Requests answered with an error, by error code.", ["code"],
                              registry=self.registry)
        self.requests = Counter("crs_http_requests", "HTTP requests, by route template and status.",
                                ["method", "route", "status"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
