"""Optional per-client rate limit (token bucket per peer address). Over the limit the answer is
503 with Retry-After — never 429, which Alertmanager treats as permanent and does not retry.

Memory is bounded by ``max_clients`` buckets without ever forgetting a throttled client: only
buckets that have refilled are evicted (a full bucket is exactly what an unknown client starts
with, so forgetting it changes nothing), least recently seen first. When every bucket is still
refilling, a new client is refused (503) until the oldest one has refilled: spraying source
addresses can crowd new clients out for a moment, never reset a throttled client. IPv6 peers are
counted per /64, the block one host usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict

from webhookfast import metrics
from webhookfast.errors import overloaded
from webhookfast.http import Context

MAX_CLIENTS = 10_000


def client_key(peer: str) -> str:
    """The bucket of a peer ``host:port``: the IPv4 address, or the /64 of an IPv6 address."""
    # "1.2.3.4:p", "[v6]:p" or "v6:p". One slice, not rsplit's list of two: a new object per
    # request instead of three.
    port_at = peer.rfind(":")
    host = (peer[:port_at] if port_at >= 0 else peer).strip("[]")
    if ":" not in host:
        return host
    try:
        addr = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, 64), strict=False))


class RateLimit:
    def __init__(self, rate_per_s: float, burst: int, max_clients: int = MAX_CLIENTS) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_clients = max(1, max_clients)
        # client -> (tokens, time of the last update), least recently seen first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # peer -> client_key(peer): a kept-alive connection's requests share the key instead of
        # slicing it out of the peer each time (one object per request). Cleared when full.
        self._keys: dict[str, str] = {}

    def allow(self, client: str, now: float) -> float:
        """0 when admitted, else the seconds until a token is available."""
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients and not self._evict_full(now):
                # Every known client is still refilling: wait until the oldest has.
                tokens, last = next(iter(self._buckets.values()))
                return max((self.burst - tokens) / self.rate - (now - last), 1e-3)
            tokens = self.burst
        else:
            tokens, last = bucket
            refilled = tokens + (now - last) * self.rate
            tokens = refilled if refilled < self.burst else self.burst  # min() would pack a tuple (3.11)
            self._buckets.move_to_end(client)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _evict_full(self, now: float) -> bool:
        """Forget the least recently seen buckets that have refilled; whether any was."""
        buckets = self._buckets
        evicted = False
        while buckets:
            tokens, last = buckets[next(iter(buckets))]
            if tokens + (now - last) * self.rate < self.burst:
                break
            buckets.popitem(last=False)
            evicted = True
        return evicted

    def __len__(self) -> int:
        return len(self._buckets)

    def admit(self, ctx: Context) -> None:
        """Raise the 503 when this request's client has used its burst."""
        peer = ctx.scope.client
        key = self._keys.get(peer)
        if key is None:
            if len(self._keys) >= self.max_clients:
                self._keys.clear()
            key = self._keys[peer] = client_key(peer)
        wait = self.allow(key, time.monotonic())
        if wait > 0:
            metrics.rejected.labels("rate_limited").inc()
            raise overloaded(max(1, math.ceil(wait)), "rate limit exceeded for this client, retry later")
