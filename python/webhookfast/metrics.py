"""Prometheus metrics of webhookfast itself.

Correct with several Granian workers: ``webhookfast serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
private directory before the workers start, and /metrics then merges every worker's values.
Label values are bounded (routes, status codes, reason codes), never taken from the request.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

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
payload_errors = Counter("webhookfast_payload_errors", "Rejected payloads, by reason code.", ["reason"])
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
    "Batches answered 503, by reason (queue_full, spool_full, deadline, store_unavailable, rate_limited, unverified_bytes).",
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
store_refused_requests = Counter(
    "webhookfast_store_refused_requests",
    "Requests the database refused for their content, each on its own (answered 422 `unstorable`; "
    "with ack=enqueue logged and dropped).",
)
store_refused_alerts = Counter("webhookfast_store_refused_alerts", "Alerts of the requests the database refused.")
store_up = Gauge(
    "webhookfast_store_up", "Whether the database answered the last readiness check.", multiprocess_mode="min"
)

# The durable local spool (webhookfast.ingest.spool).
spool_appended_alerts = Counter("webhookfast_spool_appended_alerts", "Alerts written to the local spool.")
spool_refused = Counter(
    "webhookfast_spool_refused", "Requests the spool could not take (full, or the disk refused): answered 503."
)
spool_bytes = Gauge("webhookfast_spool_bytes", "Bytes in the spool's segment files.", multiprocess_mode="livesum")
spool_oldest_age = Gauge(
    "webhookfast_spool_oldest_record_age_seconds",
    "Age of the oldest record not yet replayed into the database (0: nothing waits).",
    multiprocess_mode="livemax",
)
spool_replayed_alerts = Counter("webhookfast_spool_replayed_alerts", "Alerts replayed from the spool and committed.")
spool_replay_errors = Counter("webhookfast_spool_replay_errors", "Replay transactions that failed (retried).")
spool_write_seconds = Histogram(
    "webhookfast_spool_write_duration_seconds", "Duration of one spool append and fsync.", buckets=_LATENCY_BUCKETS
)
spool_corrupt_records = Counter(
    "webhookfast_spool_corrupt_records", "Damaged spool records moved aside to quarantine/."
)
spool_torn_records = Counter(
    "webhookfast_spool_torn_records", "Unfinished last records cut off when a spool was opened."
)


# Values a histogram keeps between folds at most (a fold comes sooner if they reach it).
MAX_PENDING_VALUES = 1024
# Amounts a counter keeps at most before it adds them up: a length up to 256 is one of CPython's
# cached small ints, so checking it makes no object.
MAX_PENDING_AMOUNTS = 256


class RequestObserver:
    """Request counts and latencies (and other per-request or per-flush counters, histograms and
    gauges: ``add``, ``observe_value``, ``set_gauge``) gathered in plain Python, folded into the
    prometheus-client metrics at most every ``fold_interval_s`` and before each scrape.

    In multi-process mode every ``inc``/``observe`` takes a lock and writes an mmap'd file (about
    9 µs for the pair, measured): a tenth of a 1-alert request. Folding writes once per route and
    status per interval instead. A scrape may miss up to one interval of other workers' requests.
    """

    def __init__(self, fold_interval_s: float = 1.0) -> None:
        self.fold_interval_s = fold_interval_s
        self.bounds: list[float] = request_seconds._upper_bounds  # the histogram's own buckets, +Inf last
        self._pending: dict[tuple[str, int], list[float]] = {}
        self._counts: dict[Counter, list[float]] = {}  # the amounts added since the fold
        self._histograms: dict[Histogram, list[float]] = {}  # the values observed since the fold
        self._gauges: dict[Gauge, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, counter: Counter, amount: float) -> None:
        """``counter.inc(amount)``, deferred to the next fold."""
        # Kept, not summed at once, as observe_value keeps its values: a total past 256 is a new
        # int object at every add (once per request for the alert counters), where appending a
        # (small, cached) amount costs nothing.
        amounts = self._counts.get(counter)
        if amounts is None:
            amounts = self._counts[counter] = []
        amounts.append(amount)
        if len(amounts) >= MAX_PENDING_AMOUNTS:
            total = sum(amounts)
            amounts.clear()
            amounts.append(total)
        self._arm()

    def observe_value(self, histogram: Histogram, value: float) -> None:
        """``histogram.observe(value)`` (a histogram without labels), deferred to the next fold."""
        # The value is kept, not counted: a count past 256 is a new int object at every update, two
        # per observation, where an append costs nothing (benches/test_allocations.py).
        values = self._histograms.get(histogram)
        if values is None:
            values = self._histograms[histogram] = []
        values.append(value)
        if len(values) >= MAX_PENDING_VALUES:
            self.fold()
        else:
            self._arm()

    def set_gauge(self, gauge: Gauge, value: float) -> None:
        """``gauge.set(value)``, deferred to the next fold (only the last value is written)."""
        self._gauges[gauge] = value
        self._arm()

    def observe_many(self, route: str, status: int, count: int, seconds: float, buckets: list[int]) -> None:
        """``count`` requests to ``route`` answered ``status`` in ``seconds`` in all, ``buckets``
        counting them per bucket of the request histogram (middleware/access_log.py)."""
        key = (route, status)
        slot = self._pending.get(key)
        if slot is None:
            # [count, sum, then one count per bucket]
            slot = self._pending[key] = [0, 0.0] + [0] * len(self.bounds)
        slot[0] += count
        slot[1] += seconds
        for i, n in enumerate(buckets):
            slot[2 + i] += n
        self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.fold_interval_s, self.fold)
            except RuntimeError:  # no loop (a synchronous caller): fold at once
                self.fold()

    def fold(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self._counts = self._counts, {}
        for counter, amounts in counts.items():
            counter.inc(sum(amounts))
        gauges, self._gauges = self._gauges, {}
        for gauge, value in gauges.items():
            gauge.set(value)
        histograms, self._histograms = self._histograms, {}
        for histogram, values in histograms.items():
            bounds = histogram._upper_bounds
            slot = [len(values), 0.0] + [0] * len(bounds)
            for value in values:
                # Added one at a time, as observe() adds them (sum() rounds differently from 3.12).
                slot[1] += value
                slot[2 + bisect_left(bounds, value)] += 1
            _add_observations(histogram, slot)
        pending, self._pending = self._pending, {}
        for (route, status), slot in pending.items():
            requests_total.labels(route, str(status)).inc(slot[0])
            _add_observations(request_seconds.labels(route), slot)


def _add_observations(child: Histogram, slot: list[float]) -> None:
    """Add ``slot`` ([count, sum, then one count per bucket]) to a histogram's values:
    prometheus-client keeps per-bucket (non-cumulative) values and a sum, so adding to them is
    exactly what ``observe`` would have done slot[0] times."""
    child._sum.inc(slot[1])
    for i, n in enumerate(slot[2:]):
        if n:
            child._buckets[i].inc(n)


request_observer = RequestObserver()
count = request_observer.add
observe_value = request_observer.observe_value
set_gauge = request_observer.set_gauge


@lru_cache(maxsize=16)
def alert_children(fmt: str) -> tuple[Counter, Counter]:
    return alerts_received.labels(fmt, "firing"), alerts_received.labels(fmt, "resolved")


def render() -> tuple[bytes, str]:
    """The exposition for /metrics (all workers merged when running multi-process)."""
    request_observer.fold()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
