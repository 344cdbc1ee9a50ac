"""One JSON line per request (method, path, status, duration, sizes, alerts, request id, peer) and
the request metrics. Never the body, headers or query string: they may carry secrets.

Lines go to stderr through a small buffer written at most every ``flush_interval_s`` (or when 64 KiB
gather), not through ``logging``: a logging record, its formatting and a write per request cost
about as much as handling a 1-alert request.
"""

from __future__ import annotations

import asyncio
import os
import time

import orjson

from webhookfast import metrics
from webhookfast.http import Context, Response


class LineSink:
    """Byte lines gathered in memory and written to a file descriptor in one write per flush."""

    def __init__(self, fd: int = 2, max_bytes: int = 64 * 1024, flush_interval_s: float = 0.2) -> None:
        self.fd = fd
        self.max_bytes = max_bytes
        self.flush_interval_s = flush_interval_s
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: bytes) -> None:
        buffer = self._buffer
        buffer += line
        buffer += b"\n"
        if len(buffer) >= self.max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        data = memoryview(self._buffer)
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            pass  # stderr closed: nothing useful to do with the lines
        finally:
            data.release()
            self._buffer.clear()


class AccessLog:
    def __init__(self, *, log: bool = True, observe_metrics: bool = True, sink: LineSink | None = None) -> None:
        self.log = log
        self.observe_metrics = observe_metrics
        self.sink = sink if sink is not None else LineSink()

    def record(self, ctx: Context, response: Response) -> None:
        """Log and count one answered request."""
        elapsed = time.perf_counter() - ctx.started
        route = ctx.route.name if ctx.route is not None else "unmatched"
        if self.observe_metrics:
            metrics.observe_request(route, response.status, elapsed)
        if self.log:
            scope = ctx.scope
            self.sink.add(
                orjson.dumps(
                    {
                        "ts": time.time(),
                        "method": scope.method,
                        "path": scope.path[:256],
                        "route": route,
                        "status": response.status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "bytes_in": ctx.bytes_in,
                        "bytes_out": len(response.body),
                        "alerts": ctx.alerts,
                        "request_id": ctx.request_id,
                        "peer": scope.client,
                    }
                )
            )
