"""Prometheus metrics of webhookfast itself.

Correct with several Granian workers: ``webhookfast serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
private directory before the workers start, and /metrics then merges every worker's values.
Label values are bounded (routes, status codes, reason codes), never taken from the request.
"""

from __future__ import annotations

import os
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ALERT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

requests_total = Counter(
    "webhookfast_http_requests", "HTTP requests answered, by route and status code.", ["route", "status"]
)
request_seconds = Histogram(
    "webhookfast_http_request_duration_seconds",
    "Time from request start to answer, by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
alerts_received = Counter(
    "webhookfast_alerts_received", "Alerts accepted, by payload format and status.", ["format", "status"]
)
payload_errors = Counter(
    "webhookfast_payload_errors", "Rejected payloads, by reason code.", ["reason"]
)
fingerprint_mismatches = Counter(
    "webhookfast_fingerprint_mismatches",
    "Alerts whose sender-supplied fingerprint differs from the computed one.",
)
nul_replaced = Counter(
    "webhookfast_nul_replaced_alerts",
    "Alerts with a NUL character in a stored string (replaced by U+FFFD).",
)
rejected = Counter(
    "webhookfast_ingest_rejected",
    "Batches answered 503, by reason (queue_full, deadline, store_unavailable, rate_limited).",
    ["reason"],
)
auth_failures = Counter("webhookfast_auth_failures", "Requests refused by authentication, by reason.", ["reason"])
queue_alerts = Gauge(
    "webhookfast_queue_alerts",
    "Alerts queued or being flushed, after the last flush.",
    multiprocess_mode="livesum",
)
flush_seconds = Histogram(
    "webhookfast_flush_duration_seconds", "Duration of one flush transaction.", buckets=_LATENCY_BUCKETS
)
flush_alerts = Histogram("webhookfast_flush_alerts", "Alerts per flush transaction.", buckets=_ALERT_BUCKETS)
flush_requests = Histogram(
    "webhookfast_flush_requests", "Requests sharing one flush transaction (group commit).", buckets=_ALERT_BUCKETS
)
store_errors = Counter("webhookfast_store_errors", "Flushes that failed with a database error.")
store_up = Gauge(
    "webhookfast_store_up", "Whether the database answered the last readiness check.", multiprocess_mode="min"
)


@lru_cache(maxsize=256)
def request_children(route: str, status: int) -> tuple[Counter, Histogram]:
    """Labelled children cached: ``labels()`` costs a lock and a dict lookup per call."""
    return requests_total.labels(route, str(status)), request_seconds.labels(route)


def observe_request(route: str, status: int, seconds: float) -> None:
    counter, histogram = request_children(route, status)
    counter.inc()
    histogram.observe(seconds)


@lru_cache(maxsize=16)
def alert_children(fmt: str) -> tuple[Counter, Counter]:
    return alerts_received.labels(fmt, "firing"), alerts_received.labels(fmt, "resolved")


def render() -> tuple[bytes, str]:
    """The exposition for /metrics (all workers merged when running multi-process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
