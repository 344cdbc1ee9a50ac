"""One JSON line per request (method, path, status, duration, sizes, alerts, request id, peer) and
the request metrics. Never the body, headers or query string: they may carry secrets.

Lines go to stderr in one write at most every ``flush_interval_s`` (or every ``max_records``
requests), not through ``logging``: a logging record, its formatting and a write per request cost
about as much as handling a 1-alert request.
"""

from __future__ import annotations

import asyncio
import os
import time

from webhookfast import metrics
from webhookfast._core import AccessRecords
from webhookfast.http import Context


class LineSink:
    """Writes blocks of lines to a file descriptor, whole (a short write is continued)."""

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            pass  # stderr closed: nothing useful to do with the lines


class AccessLog:
    """Keeps each answered request in ``_core.AccessRecords``; every ``flush_interval_s`` (or
    ``max_records`` requests) it turns them into the log's lines and the request metrics in one
    call. A line and a metric observation per request, in Python, cost about a tenth of a 1-alert
    request (benches/test_handler.py, stack ``access_log``)."""

    def __init__(
        self,
        *,
        log: bool = True,
        observe_metrics: bool = True,
        sink: LineSink | None = None,
        flush_interval_s: float = 0.2,
        max_records: int = 1024,
    ) -> None:
        self.log = log
        self.observe_metrics = observe_metrics
        self.sink = sink if sink is not None else LineSink()
        self.flush_interval_s = flush_interval_s
        self.max_records = max_records
        self._records = AccessRecords(max_records)
        self._timer: asyncio.TimerHandle | None = None
        self._bounds = metrics.request_observer.bounds

    def record(self, ctx: Context, status: int, body: bytes) -> None:
        """Log and count one answered request (when the records are next written)."""
        scope = ctx.scope
        route = ctx.route
        if self._records.add(
            scope.method,
            scope.path,
            route.name if route is not None else "unmatched",
            status,
            ctx.started,
            time.perf_counter(),
            ctx.bytes_in,
            len(body),
            ctx.alerts,
            ctx.request_id,
            scope.client,
        ):
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.flush_interval_s, self.flush)
            except RuntimeError:  # no loop (a synchronous caller): at once
                self.flush()

    def flush(self) -> None:
        """Write the lines and fold the metrics of every request recorded so far."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._records:
            return
        lines, stats = self._records.drain(
            time.time() - time.perf_counter(), self._bounds, self.log, self.observe_metrics
        )
        for route, status, count, seconds, buckets in stats:
            metrics.request_observer.observe_many(route, status, count, seconds, buckets)
        if lines:
            self.sink.write(lines)
