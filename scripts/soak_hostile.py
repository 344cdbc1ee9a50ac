#!/usr/bin/env python3
"""A soak under hostile traffic: one real ``webhookfast serve`` on loopback, for a bounded time.

While it runs, these run at once (asyncio, raw HTTP/1.1 over 127.0.0.1 sockets):

- storm:      concurrent Alertmanager bodies of 20–200 alerts (answers: 200, or 503 back-pressure);
- oversized:  huge receiver / groupKey / label values near the body cap, one value over the label
              limit, one body over the cap (answers: 200, 413, 422, 503 overloaded);
- slow:       connections that say nothing, send their headers byte by byte, or send a body slowly;
              each must be closed (or answered 408) within the idle / body timeout plus a slack;
- poison:     a ~3 KB random alertname, times out of range, endsAt before startsAt (answers: 200, 422,
              503 overloaded; a store_unavailable would make Alertmanager send it again forever);
- queries:    pathological history queries: catastrophic and huge-repetition regexes, deep groups,
              NUL, ``\\ud800`` (answers: 200, 400, 422, 503 query_timeout; never a hang);
- a monitor:  every second, the workers' RSS and open file descriptors (/proc) and a /healthz probe;
- a sender:   well-behaved, distinct alerts at a steady rate on one keep-alive connection, retrying
              503s as Alertmanager does; its answers must be 200 or documented 503s, and every alert
              it got a 200 for must then be in the database.

It prints a summary (``--json [PATH]``: JSON on stdout or to PATH) and exits 1 on any violation:

    python scripts/soak_hostile.py                       # SQLite in a temp dir, 180 s
    python scripts/soak_hostile.py --postgres-temp       # a throw-away PostgreSQL (scripts/load/pgtemp.py)
    python scripts/soak_hostile.py --postgres-url postgresql://…  --duration 600

Hard bounds: --duration ≤ 3600 s, --max-requests (all scenarios together), every request's timeout,
and a watchdog that ends the run at duration + 120 s whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import string
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(ROOT / "scripts" / "load"))

# benches/ and scripts/load/ are on sys.path only from here.
from payloads import alert as bench_alert  # noqa: E402
from payloads import payload as bench_payload  # noqa: E402
from pgtemp import TempPostgres, free_port  # noqa: E402
from run import Server as LoadServer  # noqa: E402
from run import group_pids, rss_mb  # noqa: E402

SENDER_ALERTNAME = "SoakWellBehaved"
RESERVED_FDS = 128  # webhookfast.connections.RESERVED_FDS: descriptors besides connections
DOCUMENTED_INGEST_503 = {"overloaded", "store_unavailable"}
# A request that can never be stored must not get store_unavailable while the database is up:
# Alertmanager would send it again forever (and it fails the alerts batched with it).
BUSY_503 = {"overloaded"}
ZERO_TIME = "0001-01-01T00:00:00Z"

# Every check, and what it means (the summary prints both).
CHECKS = {
    "server_alive": "the server and its workers stay up; no worker is replaced",
    "healthz": "every /healthz probe answers 200 within --healthz-timeout-s",
    "slow_connections_closed": "silent, slow-header and slow-body connections are closed (or answered 408) in time",
    "fd_bound": "a worker's open file descriptors stay within WEBHOOKFAST_MAX_CONNECTIONS + reserve, and fall back after the run",
    "rss_bound": "a worker's RSS stays under --max-rss-mb",
    "storm_answers": "valid storms get 200 or a documented 503, in time",
    "oversized_answers": "oversized fields get 200, 413, 422 or 503 overloaded, in time",
    "poison_answers": "poison alerts get 200, 422 or 503 overloaded (never store_unavailable), in time",
    "query_answers": "pathological history queries get 200, 400, 422 or 503 query_timeout, in time",
    "sender_answers": "the well-behaved sender gets only 200 or documented 503s",
    "sender_progress": "the well-behaved sender gets (nearly) every alert acknowledged",
    "nothing_lost": "every alert acknowledged to the sender is in the database",
}


# The checks that only a scenario feeds (reported as skipped when it is left out).
SCENARIO_OF = {
    "storm_answers": "storm",
    "oversized_answers": "oversized",
    "slow_connections_closed": "slow",
    "poison_answers": "poison",
    "query_answers": "queries",
}


def now_rfc3339(offset_s: float = 0.0) -> str:
    t = time.time() + offset_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1e6) % 1_000_000:06d}Z"


# -- raw HTTP/1.1 -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no answer (error says why)
    body: bytes = b""
    elapsed: float = 0.0
    error: str = ""

    def code(self) -> str:
        try:
            return str(json.loads(self.body)["error"]["code"])
        except (ValueError, KeyError, TypeError):
            return ""

    def describe(self) -> str:
        if self.status == 0:
            return f"no answer ({self.error}) after {self.elapsed:.1f} s"
        code = self.code()
        return f"{self.status}{' ' + code if code else ''} after {self.elapsed:.1f} s"


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server keeps the connection) of one answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        body = await reader.read()
        return status, body, False
    return status, body, headers.get("connection", "").lower() != "close"


class Conn:
    """A keep-alive HTTP/1.1 client connection (reconnects as needed, like Go's transport)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 15.0
    ) -> Answer:
        started = time.monotonic()
        for attempt in (1, 2):
            reused = self.writer is not None
            try:
                return await asyncio.wait_for(self._once(method, target, body, headers or {}, started), timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                self.close()
                # A kept-alive connection the server closed while idle: send again on a new one
                # (Go does so too: errServerClosedIdle).
                if reused and attempt == 1 and isinstance(exc, (asyncio.IncompleteReadError, ConnectionError)):
                    continue
                return Answer(0, elapsed=time.monotonic() - started, error=repr(exc)[:200])
            except asyncio.TimeoutError:
                self.close()
                return Answer(0, elapsed=time.monotonic() - started, error=f"timeout {timeout:.0f} s")
        raise AssertionError("unreachable")

    async def _once(self, method: str, target: str, body: bytes, headers: dict[str, str], started: float) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        assert self.reader is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: soak_hostile"]
        if body or method == "POST":
            lines += [f"Content-Length: {len(body)}", "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            await self.writer.drain()
        except ConnectionError as write_error:
            # The server may answer before it reads the body (413 from Content-Length alone) and
            # close: the answer is already here. Read it, as Go's transport (Alertmanager) does.
            try:
                status, data, _ = await read_answer(self.reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                raise write_error from None
            self.close()
            return Answer(status, data, time.monotonic() - started)
        status, data, keep = await read_answer(self.reader)
        if not keep:
            self.close()
        return Answer(status, data, time.monotonic() - started)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def one_request(
    host: str, port: int, method: str, target: str, body: bytes = b"", timeout: float = 15.0
) -> Answer:
    conn = Conn(host, port)
    try:
        return await conn.request(method, target, body, timeout=timeout)
    finally:
        conn.close()


# -- bookkeeping ------------------------------------------------------------------------------------


@dataclass
class Check:
    violations: int = 0
    examples: list[str] = field(default_factory=list)
    xfail_reason: str = ""

    def fail(self, message: str) -> None:
        self.violations += 1
        if len(self.examples) < 8:
            self.examples.append(message)


class Report:
    def __init__(self) -> None:
        self.checks = {name: Check() for name in CHECKS}
        self.statuses: dict[str, Counter[str]] = {}
        self.max_latency: dict[str, float] = {}
        self.samples: list[dict[str, float]] = []
        self.notes: dict[str, Any] = {}

    def count(self, scenario: str, answer: Answer) -> None:
        key = str(answer.status) if answer.status else "no answer"
        code = answer.code()
        if code:
            key += f" {code}"
        self.statuses.setdefault(scenario, Counter())[key] += 1
        self.max_latency[scenario] = max(self.max_latency.get(scenario, 0.0), answer.elapsed)

    def judge(
        self, check: str, scenario: str, what: str, answer: Answer, allowed: set[int], allowed_503: set[str]
    ) -> None:
        self.count(scenario, answer)
        ok = answer.status in allowed and (answer.status != 503 or answer.code() in allowed_503)
        if not ok:
            self.checks[check].fail(f"{what}: {answer.describe()}")

    @property
    def violations(self) -> int:
        return sum(c.violations for c in self.checks.values())


class Budget:
    """The run's hard bounds: a deadline and a number of requests for all scenarios together."""

    def __init__(self, duration_s: float, max_requests: int) -> None:
        self.deadline = time.monotonic() + duration_s
        self.left = max_requests

    def take(self) -> bool:
        if time.monotonic() >= self.deadline or self.left <= 0:
            return False
        self.left -= 1
        return True

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


# -- the server -------------------------------------------------------------------------------------


class Server(LoadServer):
    """``webhookfast serve`` with the soak's settings (run.py's Server: own process group, log file)."""

    def __init__(self, args: argparse.Namespace, database_url: str, work: Path) -> None:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKFAST_")}
        (work / "tmp").mkdir(exist_ok=True)
        env.update(
            TMPDIR=str(work / "tmp"),
            PYTHONUNBUFFERED="1",
            WEBHOOKFAST_ACCESS_LOG="false",
            WEBHOOKFAST_IDLE_TIMEOUT_S=str(args.idle_timeout_s),
            WEBHOOKFAST_BODY_TIMEOUT_S=str(args.body_timeout_s),
            WEBHOOKFAST_MAX_BODY_BYTES=str(args.max_body_bytes),
            WEBHOOKFAST_MAX_CONNECTIONS=str(args.max_connections),
        )
        argv = [
            sys.executable,
            "-m",
            "webhookfast",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--database-url",
            database_url,
        ]
        super().__init__("webhookfast", argv, port, "/healthz", work / "webhookfast.log", env)
        self.workers: set[int] = set()

    def start(self, timeout_s: float = 60.0) -> None:
        super().start(timeout_s)
        self.workers = set(self.worker_pids())

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [pid for pid in group_pids(self.proc.pid) if pid != self.proc.pid]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# -- the scenarios ----------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, server: Server, report: Report) -> None:
        self.args = args
        self.server = server
        self.report = report
        self.host, self.port = "127.0.0.1", server.port
        self.budget = Budget(args.duration, args.max_requests)
        self.rng = random.Random(args.seed)
        self.run_id = f"{os.getpid()}-{int(time.time())}"
        self.acked: set[int] = set()
        self.sent = 0
        self.baseline_fds = 0

    async def post(self, body: bytes, path: str = "/webhook") -> Answer:
        return await one_request(self.host, self.port, "POST", path, body, timeout=self.args.request_timeout_s)

    # storms of valid bodies
    async def storm(self, worker: int) -> None:
        seed = 1_000_000 * (worker + 1)
        while self.budget.take():
            seed += 1
            body = json.dumps(bench_payload(self.rng.randint(20, 200), seed)).encode()
            answer = await self.post(body)
            self.report.judge("storm_answers", "storm", "storm body", answer, {200, 503}, DOCUMENTED_INGEST_503)

    # oversized fields, near the body cap
    def oversized_bodies(self) -> list[tuple[str, bytes]]:
        cap = self.args.max_body_bytes
        near = max(1024, cap - 16 * 1024)
        base = bench_payload(3, seed=self.rng.randint(1, 1 << 30))
        out = []
        for key in ("receiver", "groupKey"):
            p = dict(base)
            p[key] = "r" * near
            out.append((f"huge {key} ({near} B)", json.dumps(p).encode()))
        p = dict(base)
        p["commonLabels"] = {f"l{i}": "v" * 60_000 for i in range(max(1, near // 60_100))}
        out.append(("huge commonLabels", json.dumps(p).encode()))
        alerts = []
        for i in range(max(1, near // 66_000)):
            a = bench_alert(i, seed=self.rng.randint(1, 1 << 30))
            a["labels"] = {**a["labels"], "big": "x" * 65_000}  # type: ignore[dict-item]
            a.pop("fingerprint", None)
            alerts.append(a)
        p = dict(base, alerts=alerts)
        out.append(("label values at the limit", json.dumps(p).encode()))
        a = bench_alert(0, seed=self.rng.randint(1, 1 << 30))
        a["labels"] = {**a["labels"], "big": "x" * 70_000}  # type: ignore[dict-item]
        a.pop("fingerprint", None)
        out.append(("a label value over the limit", json.dumps(dict(base, alerts=[a])).encode()))
        out.append(("a body over the cap", json.dumps(dict(base, receiver="r" * (cap + 1))).encode()))
        return out

    async def oversized(self) -> None:
        while self.budget.remaining() > 0:
            for what, body in self.oversized_bodies():
                if not self.budget.take():
                    return
                answer = await self.post(body)
                self.report.judge("oversized_answers", "oversized", what, answer, {200, 413, 422, 503}, BUSY_503)
                await asyncio.sleep(self.args.hostile_pause_s)

    # poison alerts
    def poison_bodies(self) -> list[tuple[str, bytes]]:
        def one(**changes: Any) -> bytes:
            a = bench_alert(0, seed=self.rng.randint(1, 1 << 30))
            labels = changes.pop("labels", None)
            if labels:
                a["labels"] = {**a["labels"], **labels}  # type: ignore[dict-item]
            a.pop("fingerprint", None)
            a.update(changes)
            return json.dumps(dict(bench_payload(0), alerts=[a])).encode()

        name = "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(3000))
        return [
            ("a 3 KB random alertname", one(labels={"alertname": name})),
            ("startsAt in year 9999", one(startsAt="9999-12-31T23:59:59.999999999Z")),
            ("startsAt in year 10000", one(startsAt="10000-01-01T00:00:00Z")),
            ("startsAt at Go's zero time", one(startsAt=ZERO_TIME)),
            ("startsAt before 1677", one(startsAt="1066-10-14T09:00:00Z")),
            ("endsAt before startsAt", one(status="resolved", startsAt=now_rfc3339(), endsAt=now_rfc3339(-3600))),
        ]

    async def poison(self) -> None:
        while self.budget.remaining() > 0:
            for what, body in self.poison_bodies():
                if not self.budget.take():
                    return
                answer = await self.post(body)
                self.report.judge("poison_answers", "poison", what, answer, {200, 422, 503}, BUSY_503)
                await asyncio.sleep(self.args.hostile_pause_s)

    # pathological history queries
    QUERIES: ClassVar[list[tuple[str, str, dict[str, str]]]] = [
        ("catastrophic regex", "/api/v1/alerts", {"match": '{alertname=~"(.*.*)*#"}'}),
        ("catastrophic regex (stats)", "/api/v1/stats", {"match": '{alertname=~"(.*.*)*#"}'}),
        ("huge repetition", "/api/v1/alerts", {"match": '{alertname=~"((a{1000}){1000}){1000}"}'}),
        ("huge repetition count", "/api/v1/alerts", {"match": '{alertname=~"a{4294967295}"}'}),
        ("deep groups", "/api/v1/alerts", {"match": '{alertname=~"' + "(" * 5000 + "a" + ")" * 5000 + '"}'}),
        ("NUL in a matcher", "/api/v1/alerts", {"match": '{alertname="a\x00b"}'}),
        ("\\ud800 escape in a matcher", "/api/v1/alerts", {"match": '{alertname="\\ud800"}'}),
        ("NUL in text search", "/api/v1/alerts", {"q": "a\x00b"}),
    ]

    async def queries(self) -> None:
        raw = [("lone surrogate bytes", "/api/v1/alerts?match=%7Balertname%3D%22%ED%A0%80%22%7D")]
        targets = [(w, p + "?" + urllib.parse.urlencode(q)) for w, p, q in self.QUERIES] + raw
        while self.budget.remaining() > 0:
            for what, target in targets:
                if not self.budget.take():
                    return
                answer = await one_request(self.host, self.port, "GET", target, timeout=self.args.request_timeout_s)
                ok_503 = {"query_timeout", "overloaded"}
                self.report.judge("query_answers", "queries", what, answer, {200, 400, 422, 503}, ok_503)
                await asyncio.sleep(self.args.hostile_pause_s)

    # slow and silent connections
    async def slow(self, worker: int) -> None:
        kinds = [self.silent, self.slow_header, self.slow_body]
        n = worker
        while self.budget.remaining() > 0 and self.budget.take():
            kind = kinds[n % len(kinds)]
            n += 1
            try:
                await kind()
            except OSError as exc:
                self.report.checks["slow_connections_closed"].fail(f"{kind.__name__}: could not connect: {exc!r}")
                await asyncio.sleep(1)

    async def _closed_within(self, reader: asyncio.StreamReader, limit: float) -> float | None:
        started = time.monotonic()
        try:
            while await asyncio.wait_for(reader.read(65536), max(0.01, limit - (time.monotonic() - started))):
                pass
        except asyncio.TimeoutError:
            return None
        except OSError:
            pass
        return time.monotonic() - started

    async def _held(
        self,
        what: str,
        limit: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        trickle: bytes = b"",
        every: float = 0.5,
    ) -> None:
        async def send_slowly() -> None:
            try:
                for byte in trickle:
                    await asyncio.sleep(every)
                    writer.write(bytes([byte]))
                    await writer.drain()
            except OSError:  # the server closed it: what is measured
                pass

        sender = asyncio.create_task(send_slowly())
        try:
            elapsed = await self._closed_within(reader, limit)
        finally:
            sender.cancel()
            writer.close()
        key = f"{what} closed"
        self.report.statuses.setdefault("slow", Counter())[key if elapsed is not None else f"{what} still open"] += 1
        if elapsed is None:
            self.report.checks["slow_connections_closed"].fail(f"{what}: still open after {limit:.0f} s")
        else:
            self.report.max_latency[f"slow: {what}"] = max(self.report.max_latency.get(f"slow: {what}", 0.0), elapsed)

    async def silent(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
        await self._held("silent", self.args.idle_timeout_s + self.args.slack_s, reader, writer)

    async def slow_header(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
        head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + b"s" * 4096
        await self._held("header byte by byte", self.args.idle_timeout_s + self.args.slack_s, reader, writer, head)

    async def slow_body(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
        writer.write(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
        )
        limit = self.args.body_timeout_s + self.args.idle_timeout_s + self.args.slack_s
        await self._held("body byte by byte", limit, reader, writer, b'{"alerts": [' + b" " * 4000, every=1.0)

    # the well-behaved sender
    def sender_body(self, seq: int) -> bytes:
        labels = {"alertname": SENDER_ALERTNAME, "run": self.run_id, "seq": str(seq), "severity": "warning"}
        alert = {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": f"soak {seq}"},
            "startsAt": now_rfc3339(),
            "endsAt": ZERO_TIME,
            "generatorURL": "http://soak.invalid/",
        }
        return json.dumps(
            {
                "version": "4",
                "receiver": "soak",
                "status": "firing",
                "alerts": [alert],
                "groupLabels": {},
                "commonLabels": labels,
                "commonAnnotations": {},
                "externalURL": "http://soak.invalid",
                "groupKey": f"{{}}:{{seq={seq}}}",
                "truncatedAlerts": 0,
            }
        ).encode()

    async def sender(self) -> None:
        conn = Conn(self.host, self.port)
        interval = 1.0 / self.args.sender_rate
        seq = 0
        next_at = time.monotonic()
        try:
            while self.budget.take():
                seq += 1
                self.sent += 1
                body = self.sender_body(seq)
                # Alertmanager retries a 5xx or a connection error with back-off, for about 10 s.
                retry_until = time.monotonic() + 10
                while True:
                    answer = await conn.request("POST", "/webhook", body, timeout=self.args.request_timeout_s)
                    self.report.judge(
                        "sender_answers", "sender", f"alert {seq}", answer, {200, 503}, DOCUMENTED_INGEST_503
                    )
                    if answer.status == 200:
                        self.acked.add(seq)
                        break
                    if answer.status not in (0, 503) or time.monotonic() > retry_until:
                        break
                    await asyncio.sleep(0.5)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            conn.close()

    # the monitor
    async def monitor(self) -> None:
        started = time.monotonic()
        while self.budget.remaining() > 0:
            await self.sample(time.monotonic() - started)
            await asyncio.sleep(1.0)

    async def sample(self, t: float) -> None:
        if not self.server.alive():
            self.report.checks["server_alive"].fail(f"the server exited at {t:.0f} s:\n{self.server.tail(15)}")
            raise RuntimeError("server exited")
        workers = self.server.worker_pids()
        if set(workers) != self.server.workers:
            self.report.checks["server_alive"].fail(
                f"workers {sorted(self.server.workers)} became {sorted(workers)} at {t:.0f} s"
            )
            self.server.workers = set(workers)
        rss = max((rss_mb(p) for p in workers), default=0.0)
        fds = max((open_fds(p) for p in workers), default=0)
        probe = await one_request(self.host, self.port, "GET", "/healthz", timeout=self.args.healthz_timeout_s)
        self.report.count("healthz", probe)
        if probe.status != 200:
            self.report.checks["healthz"].fail(f"at {t:.0f} s: {probe.describe()}")
        self.report.samples.append(
            {"t": round(t, 1), "rss_mb": round(rss, 1), "fds": fds, "healthz_ms": round(probe.elapsed * 1000, 1)}
        )
        if rss > self.args.max_rss_mb:
            self.report.checks["rss_bound"].fail(f"RSS {rss:.0f} MB at {t:.0f} s")
        if fds > self.args.max_connections + RESERVED_FDS:
            self.report.checks["fd_bound"].fail(f"{fds} open descriptors at {t:.0f} s")

    async def run(self) -> None:
        self.baseline_fds = max((open_fds(p) for p in self.server.worker_pids()), default=0)
        skip = self.args.skip
        tasks: list[Awaitable[None]] = [self.monitor(), self.sender()]
        tasks += [getattr(self, name)() for name in ("oversized", "poison", "queries") if name not in skip]
        if "storm" not in skip:
            tasks += [self.storm(i) for i in range(self.args.storm_concurrency)]
        if "slow" not in skip:
            tasks += [self.slow(i) for i in range(self.args.slow_connections)]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, RuntimeError):
                self.report.notes.setdefault("errors", []).append(repr(result)[:300])
        await self.after()

    async def after(self) -> None:
        """Once the traffic has stopped: the descriptors fall back, the sender's alerts are all stored."""
        if not self.server.alive():
            return
        wait = self.args.idle_timeout_s + self.args.body_timeout_s + self.args.slack_s
        deadline = time.monotonic() + wait
        final = 0
        while time.monotonic() < deadline:
            final = max((open_fds(p) for p in self.server.worker_pids()), default=0)
            if final <= self.baseline_fds + 16:
                break
            await asyncio.sleep(0.5)
        self.report.notes["fds_baseline_final"] = [self.baseline_fds, final]
        if final > self.baseline_fds + 16:
            self.report.checks["fd_bound"].fail(
                f"{final} descriptors {wait:.0f} s after the run (baseline {self.baseline_fds})"
            )


# -- the database check -----------------------------------------------------------------------------


def stored_seqs(database_url: str, run_id: str) -> set[int]:
    """The sender's alerts that have an instance in the database."""
    if database_url.startswith("sqlite:"):
        path = database_url.removeprefix("sqlite:///").removeprefix("sqlite://")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute(
                "SELECT json_extract(ls.labels, '$.seq') FROM label_sets ls JOIN alerts a ON a.fingerprint = ls.fingerprint "
                "WHERE ls.alertname = ? AND json_extract(ls.labels, '$.run') = ?",
                (SENDER_ALERTNAME, run_id),
            ).fetchall()
        finally:
            db.close()
    else:
        import psycopg

        with psycopg.connect(database_url, connect_timeout=10) as pg:
            rows = pg.execute(
                "SELECT ls.labels->>'seq' FROM label_sets ls JOIN alerts a ON a.fingerprint = ls.fingerprint "
                "WHERE ls.alertname = %s AND ls.labels->>'run' = %s",
                (SENDER_ALERTNAME, run_id),
            ).fetchall()
    return {int(seq) for (seq,) in rows}


def check_sender(soak: Soak, report: Report, database_url: str) -> None:
    stored = stored_seqs(database_url, soak.run_id)
    lost = sorted(soak.acked - stored)
    report.notes["sender"] = {
        "sent": soak.sent,
        "acknowledged": len(soak.acked),
        "stored": len(stored),
        "lost": len(lost),
    }
    if lost:
        report.checks["nothing_lost"].fail(f"{len(lost)} acknowledged alerts are not stored, e.g. seq {lost[:10]}")
    if soak.sent == 0:
        report.checks["sender_progress"].fail("the sender sent nothing")
    elif len(soak.acked) < soak.sent * (1 - soak.args.max_unacked_share):
        report.checks["sender_progress"].fail(f"only {len(soak.acked)} of {soak.sent} alerts acknowledged")


# -- output -----------------------------------------------------------------------------------------


def summary(report: Report, args: argparse.Namespace, database_url: str, elapsed: float) -> dict[str, Any]:
    samples = report.samples
    return {
        "config": {
            "duration_s": args.duration,
            "skipped": sorted(args.skip),
            "database": database_url.split(":", 1)[0],
            "workers": args.workers,
            "idle_timeout_s": args.idle_timeout_s,
            "body_timeout_s": args.body_timeout_s,
            "max_body_bytes": args.max_body_bytes,
            "max_connections": args.max_connections,
        },
        "elapsed_s": round(elapsed, 1),
        "ok": report.violations == 0,
        "violations": report.violations,
        "checks": {
            name: {
                "ok": c.violations == 0,
                "violations": c.violations,
                "meaning": CHECKS[name],
                "skipped": SCENARIO_OF.get(name) in args.skip,
                "examples": c.examples,
            }
            for name, c in report.checks.items()
        },
        "answers": {k: dict(v) for k, v in report.statuses.items()},
        "max_latency_s": {k: round(v, 2) for k, v in report.max_latency.items()},
        "worker": {
            "rss_mb": {
                "first": samples[0]["rss_mb"],
                "max": max(s["rss_mb"] for s in samples),
                "last": samples[-1]["rss_mb"],
            }
            if samples
            else {},
            "fds": {"first": samples[0]["fds"], "max": max(s["fds"] for s in samples), "last": samples[-1]["fds"]}
            if samples
            else {},
            "healthz_max_ms": max((s["healthz_ms"] for s in samples), default=None),
        },
        "samples": samples,
        "notes": report.notes,
    }


def print_summary(result: dict[str, Any]) -> None:
    out = sys.stderr
    cfg = result["config"]
    print(
        f"\nsoak_hostile: {result['elapsed_s']} s on {cfg['database']}, {cfg['workers']} worker(s), "
        f"idle timeout {cfg['idle_timeout_s']} s, body cap {cfg['max_body_bytes']} B",
        file=out,
    )
    print("answers:", file=out)
    for scenario, counts in result["answers"].items():
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        lat = result["max_latency_s"].get(scenario)
        print(f"  {scenario:<10} {shown}{f'  (slowest {lat} s)' if lat is not None else ''}", file=out)
    w = result["worker"]
    print(
        f"worker: RSS MB {w.get('rss_mb')}, open fds {w.get('fds')}, slowest /healthz {w.get('healthz_max_ms')} ms",
        file=out,
    )
    if "sender" in result["notes"]:
        print(f"sender: {result['notes']['sender']}", file=out)
    print("checks:", file=out)
    for name, c in result["checks"].items():
        verdict = "skip" if c["skipped"] else "ok  " if c["ok"] else "FAIL"
        count = "" if c["ok"] else f" — {c['violations']} violation(s)"
        print(f"  {verdict} {name:<24} {c['meaning']}{count}", file=out)
        for example in c["examples"]:
            print(f"         {example.splitlines()[0][:160]}", file=out)
    print(f"{'OK' if result['ok'] else 'VIOLATIONS: ' + str(result['violations'])}", file=out)


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def bounded(lo: float, hi: float, kind: Callable[[str], Any] = float) -> Callable[[str], Any]:
        def parse(text: str) -> Any:
            value = kind(text)
            if not lo <= value <= hi:
                raise argparse.ArgumentTypeError(f"must be within [{lo}, {hi}]")
            return value

        return parse

    p.add_argument("--duration", type=bounded(5, 3600), default=180.0, help="seconds of traffic (≤ 3600)")
    p.add_argument(
        "--max-requests",
        type=bounded(1, 10_000_000, int),
        default=200_000,
        help="requests and connections of all scenarios together",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--database-url", help="default: SQLite in a temp dir")
    g.add_argument("--postgres-url", help="an existing PostgreSQL database (migrated by the server)")
    g.add_argument("--postgres-temp", action="store_true", help="a throw-away PostgreSQL cluster")
    p.add_argument("--workers", type=bounded(1, 8, int), default=1)
    p.add_argument("--storm-concurrency", type=bounded(0, 256, int), default=16)
    p.add_argument("--slow-connections", type=bounded(0, 4096, int), default=60)
    p.add_argument("--sender-rate", type=bounded(0.1, 1000), default=20.0, help="well-behaved alerts per second")
    p.add_argument(
        "--hostile-pause-s", type=bounded(0, 60), default=0.2, help="pause between oversized/poison/query requests"
    )
    p.add_argument(
        "--idle-timeout-s", type=bounded(0.5, 3600), default=10.0, help="the server's WEBHOOKFAST_IDLE_TIMEOUT_S"
    )
    p.add_argument(
        "--body-timeout-s", type=bounded(0.5, 600), default=5.0, help="the server's WEBHOOKFAST_BODY_TIMEOUT_S"
    )
    p.add_argument(
        "--max-body-bytes",
        type=bounded(64 * 1024, 64 << 20, int),
        default=4 << 20,
        help="the server's WEBHOOKFAST_MAX_BODY_BYTES (oversized bodies are built near it)",
    )
    p.add_argument(
        "--max-connections",
        type=bounded(1, 100_000, int),
        default=1024,
        help="the server's WEBHOOKFAST_MAX_CONNECTIONS",
    )
    p.add_argument("--request-timeout-s", type=bounded(1, 120), default=15.0)
    p.add_argument("--healthz-timeout-s", type=bounded(0.5, 60), default=5.0)
    p.add_argument("--slack-s", type=bounded(0, 60), default=5.0, help="allowed lateness of a timeout (busy machine)")
    p.add_argument("--max-rss-mb", type=bounded(16, 65536), default=1024.0)
    p.add_argument(
        "--max-unacked-share",
        type=bounded(0, 1),
        default=0.01,
        help="share of the sender's alerts that may stay unacknowledged (503 for 10 s)",
    )
    p.add_argument(
        "--skip",
        type=lambda t: set(filter(None, t.split(","))),
        default=set(),
        help="scenarios left out, comma-separated: storm, oversized, slow, poison, queries",
    )
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--json", nargs="?", const="-", metavar="PATH", help="write the result as JSON (stdout: -)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, server log)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = args.skip - {"storm", "oversized", "slow", "poison", "queries"}
    if unknown:
        raise SystemExit(f"--skip: unknown scenarios {sorted(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="webhookfast-soak-"))
    pg: TempPostgres | None = None
    server: Server | None = None
    report = Report()
    started = time.monotonic()
    try:
        if args.postgres_temp:
            pg = TempPostgres().start()
            database_url = pg.url
        else:
            database_url = args.postgres_url or args.database_url or f"sqlite:///{work}/soak.db"
        server = Server(args, database_url, work)
        server.start()
        soak = Soak(args, server, report)
        watchdog = args.duration + 120
        try:
            asyncio.run(asyncio.wait_for(soak.run(), watchdog))
        except asyncio.TimeoutError:
            report.checks["server_alive"].fail(f"the run did not end within its watchdog ({watchdog:.0f} s)")
        if server.alive():
            check_sender(soak, report, database_url)
        else:
            report.checks["server_alive"].fail(f"the server is not running at the end:\n{server.tail(15)}")
        result = summary(report, args, database_url, time.monotonic() - started)
        result["server_log_tail"] = server.tail(40)
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(result)
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
