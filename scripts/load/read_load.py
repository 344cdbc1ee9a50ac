"""A history-API read load for ``run.py --scenarios reads``: one client on one keep-alive
connection, cycling through a mix of every endpoint (lists with filters, a 1,000-row page, one
alert's timeline, stats over 24 h and 1 h), either paced at ``rate`` requests per second (open
loop: a late request is sent at once, never skipped) or back to back (``rate`` 0).

It records each request's latency (paced: from its scheduled send, so that falling behind counts)
and status; anything but 200 counts as an error.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote


def read_paths(port: int) -> list[str]:
    """The request mix, with fingerprints taken from what the server holds now (no single-alert
    requests when it holds nothing yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/v1/alerts?limit=100")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"GET /api/v1/alerts answered {resp.status}: {body}")
        fps = [a["fingerprint"] for a in body["alerts"]]
    finally:
        conn.close()
    match = quote('{severity="critical"}')
    regex = quote('{alertname=~"High.*",severity!="info"}')
    one_alert = [f"/api/v1/alerts/{fps[0]}", f"/api/v1/alerts/{fps[len(fps) // 2]}"] if fps else []
    return [
        "/api/v1/alerts",
        "/api/v1/alerts?status=firing",
        "/api/v1/alerts?since=2h",
        f"/api/v1/alerts?match={match}",
        "/api/v1/alerts?sort=last_seen",
        f"/api/v1/alerts?match={regex}&since=24h",
        "/api/v1/alerts?limit=1000",
        *one_alert,
        "/api/v1/stats",
        "/api/v1/stats?since=1h",
    ]


@dataclass
class ReadStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    @classmethod
    def merged(cls, parts: list[ReadStats]) -> ReadStats:
        return cls(
            [v for st in parts for v in st.latencies_ms],
            sum(st.errors for st in parts),
            sum(st.seconds for st in parts),
        )

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p50(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    def pct(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    def summary(self) -> str:
        if not self.latencies_ms:
            return f"reads: {self.requests} requests, {self.errors} errors"
        return (
            f"reads: {self.requests} ({self.rate:.1f}/s), p50 {self.p50():.1f} ms, "
            f"p99 {self.pct(0.99):.1f} ms, errors {self.errors}"
        )


class ReadLoad:
    """Runs in a thread between ``start()`` and ``stop()``."""

    def __init__(self, port: int, paths: list[str], rate: float) -> None:
        self.port = port
        self.paths = paths
        self.rate = rate
        self.stats = ReadStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-load", daemon=True)

    def start(self) -> ReadLoad:
        self._thread.start()
        return self

    def stop(self) -> ReadStats:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.stats

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        t0 = time.monotonic()
        i = 0
        try:
            while not self._stop.is_set():
                t = time.monotonic()
                if self.rate > 0:
                    # Latency counts from the scheduled send: time spent behind schedule (the
                    # previous read was slow) is part of what a paced client waits.
                    t = t0 + i / self.rate
                    wait = t - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        break
                path = self.paths[i % len(self.paths)]
                i += 1
                try:
                    conn.request("GET", path)
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if ok:
                    self.stats.latencies_ms.append((time.monotonic() - t) * 1000)
                else:
                    self.stats.errors += 1
        finally:
            self.stats.seconds = time.monotonic() - t0
            conn.close()
