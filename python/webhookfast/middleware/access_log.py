"""One JSON line per request (method, path, status, duration, sizes, alerts, request id, peer) and
the request metrics. Never the body, headers or query string: they may carry secrets."""

from __future__ import annotations

import logging
import time

import orjson

from webhookfast import metrics
from webhookfast.http import Context, Handler, Response

access_logger = logging.getLogger("webhookfast.access")


class AccessLog:
    def __init__(self, *, log: bool = True, observe_metrics: bool = True) -> None:
        self.log = log
        self.observe_metrics = observe_metrics

    def wrap(self, inner: Handler) -> Handler:
        log_enabled = self.log
        observe = metrics.observe_request if self.observe_metrics else None
        clock = time.perf_counter
        emit = access_logger.info

        async def access_log(ctx: Context) -> Response:
            response = await inner(ctx)
            elapsed = clock() - ctx.started
            route = ctx.route.name if ctx.route is not None else "unmatched"
            if observe is not None:
                observe(route, response.status, elapsed)
            if log_enabled:
                scope = ctx.scope
                emit(
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
                    ).decode()
                )
            return response

        return access_log
