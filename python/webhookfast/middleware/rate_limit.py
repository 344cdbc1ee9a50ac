"""Optional per-client rate limit (token bucket per peer address). Over the limit the answer is
503 with Retry-After — never 429, which Alertmanager treats as permanent and does not retry."""

from __future__ import annotations

import math
import time

from webhookfast import metrics
from webhookfast.errors import overloaded
from webhookfast.http import Context, Handler, Response

_MAX_CLIENTS = 10_000  # bounds memory when addresses churn


class RateLimit:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str, now: float) -> float:
        """0 when admitted, else the seconds until a token is available."""
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= _MAX_CLIENTS and client not in self._buckets:
                self._buckets.clear()
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def wrap(self, inner: Handler) -> Handler:
        async def rate_limit(ctx: Context) -> Response:
            host = ctx.scope.client.rsplit(":", 1)[0]
            wait = self.allow(host, time.monotonic())
            if wait > 0:
                metrics.rejected.labels("rate_limited").inc()
                raise overloaded(max(1, math.ceil(wait)), "rate limit exceeded for this client, retry later")
            return await inner(ctx)

        return rate_limit
