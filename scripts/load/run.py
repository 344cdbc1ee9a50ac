#!/usr/bin/env python3
"""Load scenarios against a real ``webhookfast serve`` on 127.0.0.1, with a bare Granian app
(scripts/load/bare_app.py, same worker count) measured in the same run as the reference.

    python scripts/load/run.py                       # default run (< 5 minutes), SQLite in a temp dir
    python scripts/load/run.py --quick               # every scenario, ~1 minute, for checking the script
    python scripts/load/run.py --postgres-temp       # a throw-away PostgreSQL cluster (fsync on)
    python scripts/load/run.py --database-url postgresql://user@host:5432/db
    python scripts/load/run.py --scenarios max,steady --alerts 1,100 -d 20 --workers 2 --repeated
    python scripts/load/run.py --postgres-temp --history-rows 1000000 --scenarios reads --no-bare
    python scripts/load/run.py --postgres-temp --pg-flush-only events   # an experiment (below)

Scenarios (each bounded in time by -d / its own duration option; every subprocess has a timeout):

- ``max``    maximum throughput: wrk (closed loop, ``-c`` connections) posting the payloads with a
             Lua script; latency percentiles from wrk are NOT corrected for coordinated omission.
- ``steady`` a fixed request rate (``--rate``) with oha ``-q RATE --latency-correction`` (latency
             measured from each request's scheduled start: corrected for coordinated omission).
- ``stress`` rising rate (×``--stress-factor`` each ``--step`` seconds) until errors or
             p99 > ``--stress-p99-ms``: reports the knee (the highest rate that passed).
- ``spike``  ``--spike-low`` req/s, then ``--spike-rate`` (default: 2× the knee, else 5,000), then
             back to low in 1-s slices: spike errors and seconds until p99 recovers.
- ``soak``   a fixed rate for ``--soak-duration`` seconds: worker RSS sampled, drift reported.
- ``reads``  ingest throughput (wrk, ``--read-alerts`` per request) alone and with a history-API
             read load beside it (read_load.py: ``--read-rate`` requests/s, 0 = back to back),
             alternating ABBA over ``--read-rounds`` rounds; reports the change in ingest req/s.
             Use with ``--history-rows`` so that the reads run over a realistic history.

Payloads are Alertmanager v4 bodies (benches/payloads.py). ``--unique`` (default) sends distinct
label sets per request (wrk's Lua script and ``oha -Z`` cycle through a ring of pre-generated bodies,
one per line; the ring size is printed and a note says when a run sent more requests than the ring
holds) so that the database does real inserts; ``--repeated`` sends one body over and over, which
the store collapses to one row per alert (upserts). The ``mode`` column says which was used.

On PostgreSQL, ``max`` also measures the plain-Python reference receiver (``../shared/reference``,
run from there with ack after commit, writing to a database of its own on the same server) between
the bare app and webhookfast (``--no-reference`` to skip it), and, for bodies of 10 alerts or more,
PostgreSQL alone taking one jsonb row per alert by binary COPY into one table with a unique index
(``pg_reference.py``'s ``onetable`` mode, 1 and 10 requests per transaction, the faster one kept:
issue #12's ceiling for big bodies; ``--no-pg-ceiling`` to skip it), so that the ratio is one run's.

Output: one table (scenario, target, alerts per request, mode, req/s, alerts/s, p50/p99/p99.9 ms,
errors = non-2xx answers + socket errors, RSS per worker process, CPU per request of the whole
server and of its busiest thread — from /proc/PID/task/*/stat before and after each wrk run; the
busiest thread of a Granian worker is its event loop's —, PostgreSQL's CPU per request (its
processes under their own system user, as ``--postgres-temp`` runs them, for the servers that write
to it), each CPU's share of time left idle during the run (/proc/stat, CPU 0 first: with
``--pin`` the servers' CPU, then the load generator's; a server that leaves its CPU idle is
waiting, not computing), and the ratios to the bare app and the reference).
``--json FILE`` also writes every row. Before fixed-rate scenarios (steady, stress, spike, soak)
the disk's own sync latency is measured for ``--disk-probe`` seconds (fsync_probe.py) and printed
under the table: a server that acknowledges after commit waits for such syncs, so their tail is
part of its own.

``--pg-flush-only events|events_wide|instances[_keyed|_nogin]|commit|journal`` is an experiment,
not a measurement of webhookfast: on the throw-away cluster only, the flush function is replaced by
one that writes only alert_events (``events_wide``: with each alert's labels and name), only one
row per alert instance that also holds its labels and events (``instances``; ``_keyed`` without
its time and status indexes, ``_nogin`` without its labels' index), nothing but a logged commit, or
the flush's arrays into a journal that a thread of this script folds into the tables afterwards
(flush_variants.py), to show what the ingest path would reach if its transaction did less. The
table's header and every webhookfast row's note say so; with ``journal`` the note also gives the
alerts still in the journal when the run ended and how long they took to fold (the next run starts
only then).

Tools: wrk (``apt-get install -y wrk``) and oha (``cargo install oha --locked``) are installed when
missing unless ``--no-install``. Servers run in their own process groups and are always stopped
(SIGTERM, then SIGKILL), temp files removed, including on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOAD_DIR = Path(__file__).resolve().parent
# Bodies from this size on are measured against PostgreSQL alone (issue #12's target 5: 100 alerts).
PG_CEILING_MIN_ALERTS = 10
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(LOAD_DIR))

import flush_variants  # noqa: E402
import payloads  # noqa: E402
import pgtemp  # noqa: E402
from read_load import ReadLoad, ReadStats, read_paths  # noqa: E402

# Per payload size, loaded by each wrk thread: a 10-s run of the shipped server at full speed sends
# no body twice (--ring-mb for faster servers or longer runs).
UNIQUE_RING_MB = 192
UNIQUE_RING_MAX = 200_000


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# tools


def find_tool(name: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    cargo_bin = Path.home() / ".cargo" / "bin" / name
    return str(cargo_bin) if cargo_bin.exists() else None


def ensure_wrk(install: bool) -> str:
    path = find_tool("wrk")
    if path is None and install:
        log("wrk missing: apt-get install -y wrk")
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=False)
        path = find_tool("wrk")
    if path is None:
        raise SystemExit("wrk not found (Debian: apt-get install -y wrk)")
    return path


def ensure_oha(install: bool) -> str | None:
    path = find_tool("oha")
    if path is None and install and shutil.which("cargo"):
        log("oha missing: cargo install oha --locked (a few minutes, once)")
        subprocess.run(["cargo", "install", "oha", "--locked"], check=False)
        path = find_tool("oha")
    if path is None:
        log("oha not available: fixed-rate scenarios (steady, stress, spike, soak) are skipped")
    return path


# ------------------------------------------------------------------------------------------------
# processes


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 first), [] once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        return stat[stat.rindex(")") + 2 :].split()
    except (OSError, ValueError):
        return []


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        fields = proc_stat(int(entry)) if entry.isdigit() else []
        if len(fields) > 2 and fields[2] == str(pgid):  # field 5: process group
            pids.append(int(entry))
    return pids


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Server:
    """A server in its own process group (so that stop() reaches Granian's workers)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        health_path: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        *,
        uses_database: bool = True,
    ) -> None:
        self.name = name
        # Whether the database's CPU during its runs is this server's doing (not the bare app's).
        self.uses_database = uses_database
        self.argv = argv
        self.port = port
        self.health_path = health_path
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        log(f"starting {self.name}: {' '.join(self.argv)}")
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, cwd=ROOT
        )
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        time.sleep(0.5)  # let every worker come up
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout_s:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def worker_rss_mb(self) -> float:
        """The largest RSS among the worker processes (the Granian main process left out)."""
        if self.proc is None:
            return 0.0
        pids = group_pids(self.proc.pid)
        workers = [p for p in pids if p != self.proc.pid] or pids
        return max((rss_mb(p) for p in workers), default=0.0)

    def worker_pid(self) -> int:
        """The worker with the largest RSS (the Granian main process if it has none)."""
        assert self.proc is not None
        pids = group_pids(self.proc.pid)
        workers = [p for p in pids if p != self.proc.pid] or pids
        return max(workers, key=rss_mb)

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of the server's group."""
        if self.proc is None:
            return 0.0
        return sum(cpu_ticks(pid) for pid in group_pids(self.proc.pid)) / os.sysconf("SC_CLK_TCK")

    def thread_ticks(self) -> dict[tuple[int, int], int]:
        """utime + stime of every thread of every process of the server's group, by (pid, tid)."""
        out: dict[tuple[int, int], int] = {}
        if self.proc is None:
            return out
        for pid in group_pids(self.proc.pid):
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                        fields = fh.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                out[(pid, int(tid))] = int(fields[11]) + int(fields[12])
        return out

    def settle(self, max_wait_s: float = 60.0, idle_share: float = 0.1) -> float:
        """Wait until the server is idle (it may still be working through requests a load generator
        left behind, e.g. big bodies queued at the end of a wrk run). Returns the seconds waited."""
        started = time.monotonic()
        prev = self.cpu_seconds()
        while time.monotonic() - started < max_wait_s:
            time.sleep(0.5)
            cur = self.cpu_seconds()
            if (cur - prev) / 0.5 < idle_share:
                break
            prev = cur
        waited = time.monotonic() - started
        if waited > 1.0:
            log(f"{self.name}: waited {waited:.1f} s for the server to go idle")
        return waited

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop in 20 s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        proc.wait(timeout=10)
        self._log.close()


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process (fields 14 and 15 of /proc/PID/stat), 0 once it is gone."""
    fields = proc_stat(pid)
    return int(fields[11]) + int(fields[12]) if len(fields) > 12 else 0


def postgres_cpu_seconds() -> float | None:
    """CPU time used so far by the live processes of the ``postgres`` system user (the cluster of
    ``--postgres-temp`` under root; any other cluster of that user counts too, and backends that
    exited meanwhile do not); None when PostgreSQL does not run under a user of its own."""
    import pwd

    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return None
    if uid == os.getuid():
        return None
    total = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                total += cpu_ticks(int(entry))
        except OSError:  # gone meanwhile
            continue
    return total / os.sysconf("SC_CLK_TCK")


def cpu_times() -> list[list[int]]:
    """Each CPU's time so far by state (user, nice, system, idle, iowait, ...: /proc/stat's cpuN lines)."""
    with open("/proc/stat") as fh:
        return [[int(x) for x in line.split()[1:]] for line in fh if line.startswith("cpu") and line[3].isdigit()]


def idle_percent(before: list[list[int]], after: list[list[int]]) -> list[float]:
    """Each CPU's share of time spent idle or waiting for I/O between two ``cpu_times()``."""
    shares = []
    for old, new in zip(before, after, strict=True):
        spent = [b - a for a, b in zip(old, new, strict=True)]
        total = sum(spent)
        shares.append(100.0 * (spent[3] + spent[4]) / total if total > 0 else 0.0)
    return shares


class Usage:
    """What the machine and the database use from its creation to ``per_request``."""

    def __init__(self, server: Server, on_postgres: bool) -> None:
        self.db = on_postgres and server.uses_database
        self.times = cpu_times()
        self.db_seconds = postgres_cpu_seconds() if self.db else None

    def per_request(self, requests: int) -> tuple[float | None, list[float]]:
        """(the database's CPU µs per request or None, each CPU's idle share in %)"""
        idle = idle_percent(self.times, cpu_times())
        db_seconds = postgres_cpu_seconds() if self.db else None
        if requests <= 0 or self.db_seconds is None or db_seconds is None:
            return None, idle
        return (db_seconds - self.db_seconds) * 1e6 / requests, idle


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# payload files


@dataclass
class PayloadSet:
    alerts: int
    unique: bool
    lines_file: Path  # one body per line (wrk's Lua script cycles through them)
    single_file: Path  # the first body alone (oha)
    count: int
    bytes_each: int


def make_payloads(tmp: Path, alerts: int, unique: bool, seed_base: int, ring_mb: int = UNIQUE_RING_MB) -> PayloadSet:
    first = payloads.body(alerts, seed_base)
    single = tmp / f"body-{alerts}.json"
    _write_durably(single, [first])  # as it is: oha sends the file's bytes
    if not unique:
        return PayloadSet(alerts, False, single, single, 1, len(first))
    count = max(1, min(UNIQUE_RING_MAX, ring_mb * 1024 * 1024 // len(first)))
    lines = tmp / f"bodies-{alerts}.jsonl"
    t0 = time.monotonic()

    def ring() -> Iterator[bytes]:
        yield first + b"\n"
        for k in range(1, count):
            b = payloads.body(alerts, seed_base + k * 10_007)
            assert b"\n" not in b
            yield b + b"\n"

    _write_durably(lines, ring())
    log(f"generated {count} unique {alerts}-alert bodies ({len(first)} B each) in {time.monotonic() - t0:.1f} s")
    return PayloadSet(alerts, True, lines, single, count, len(first))


def _write_durably(path: Path, chunks: Iterable[bytes]) -> None:
    """``chunks`` written to ``path``, on the disk before this returns. Left dirty, the ring's
    ~200 MB were written back by the kernel half a minute later, in the middle of a measurement:
    every fsync of the server under test (SQLite's WAL, PostgreSQL's) then waited 30-120 ms
    behind them."""
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())


WRK_LUA = r"""
-- generated by scripts/load/run.py: POST the bodies of BODIES_FILE in turn (thread t sends bodies
-- t, t+T, t+2T, ...), and print a JSON summary with p99.9 at the end.
local bodies_file = "__FILE__"
local nthreads = __THREADS__
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(bodies_file) do bodies[#bodies + 1] = line end
  counter = tid
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  local body = bodies[(counter % #bodies) + 1]
  counter = counter + nthreads
  return wrk.format("POST", "/webhook", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


# ------------------------------------------------------------------------------------------------
# load generators


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    errors: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    # CPU per completed request during the run (µs): the server's whole process group, and its
    # busiest thread (the event loop's, for Granian's Python workers).
    cpu_us: float | None = None
    thread_us: float | None = None
    db_us: float | None = None  # PostgreSQL's CPU per completed request (see Usage)
    idle_pct: list[float] | None = None  # each CPU's time left idle during the run, in %


def slow_windows(record: Path, slow_ms: float, window_s: float = 0.1, most: int = 6) -> str:
    """From oha's record of each request (``--db-url``): how many took longer than ``slow_ms``,
    counted from their scheduled start as oha's corrected percentiles are, and the windows of
    ``window_s`` (by scheduled start, from the run's start) that held most of them. A tail made
    of a few windows is stalls; one spread thin is queueing."""
    with contextlib.closing(sqlite3.connect(record)) as conn:
        rows = conn.execute("SELECT coalesce(start_latency_correction, start), end FROM oha").fetchall()
    slow = [start for start, end in rows if (end - start) * 1000 > slow_ms]
    windows = Counter(int(start / window_s) for start in slow)
    top = sorted(windows.most_common(most))
    where = ", ".join(f"{w * window_s:.1f} s: {n}" for w, n in top)
    held = sum(n for _, n in top)
    return f"{len(slow)} of {len(rows)} requests over {slow_ms:g} ms" + (
        f"; {held} of them in {len(top)} windows of {window_s * 1000:g} ms ({where})" if slow else ""
    )


class Tools:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.wrk = ensure_wrk(not args.no_install)
        self.oha = ensure_oha(not args.no_install) if args.needs_oha else None
        self.pin = ["taskset", "-c", "1"] if args.pin else []

    @property
    def on_postgres(self) -> bool:
        return (self.args.database_url or "").startswith("postgres")

    def wrk_run(self, server: Server, ps: PayloadSet, seconds: float, settle: bool = True) -> Result:
        a = self.args
        if settle:
            server.settle()
        port = server.port
        script = self.tmp / f"post-{ps.alerts}-{'u' if ps.unique else 'r'}.lua"
        script.write_text(WRK_LUA.replace("__FILE__", str(ps.lines_file)).replace("__THREADS__", str(a.threads)))
        argv = [
            *self.pin,
            self.wrk,
            "-t",
            str(a.threads),
            "-c",
            str(a.connections),
            "-d",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/webhook",
        ]
        before = server.thread_ticks()
        usage = Usage(server, self.on_postgres)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        after = server.thread_ticks()
        m = re.search(r"^WRKJSON (\{.*\})$", out.stdout, re.M)
        if m is None:
            raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        j = json.loads(m.group(1))
        secs = j["duration_us"] / 1e6
        socket_errors = j["connect"] + j["read"] + j["write"] + j["timeout"]
        done = j["requests"] > 0

        def ms(us: int) -> float | None:
            return us / 1000 if done else None

        db_us, idle_pct = usage.per_request(j["requests"])
        cpu_us = thread_us = None
        if done:
            tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
            used = {k: v - before.get(k, 0) for k, v in after.items()}
            cpu_us = sum(used.values()) * tick_us / j["requests"]
            thread_us = max(used.values(), default=0) * tick_us / j["requests"]
        return Result(
            j["requests"],
            secs,
            j["requests"] / secs if secs else 0.0,
            ms(j["p50"]),
            ms(j["p99"]),
            ms(j["p999"]),
            j["status"] + socket_errors,
            {"non_2xx": j["status"], "socket_errors": socket_errors, "max_ms": j["max"] / 1000},
            cpu_us,
            thread_us,
            db_us,
            idle_pct,
        )

    def oha_run(
        self, server: Server, ps: PayloadSet, rate: float, seconds: float, settle: bool = True, record: bool = False
    ) -> Result:
        """``record``: with ``--slow-ms``, also where in the run the slow requests were (detail["slow"])."""
        assert self.oha is not None
        a = self.args
        if settle:
            server.settle()
        port = server.port
        conns = max(a.connections, 1)
        argv = [
            *self.pin,
            self.oha,
            "-z",
            f"{seconds:g}s",
            "-q",
            f"{rate:g}",
            "--latency-correction",
            "-c",
            str(conns),
            "--no-tui",
            "--output-format",
            "json",
            "-m",
            "POST",
            "-H",
            "Content-Type: application/json",
            *(["-Z", str(ps.lines_file)] if ps.unique else ["-D", str(ps.single_file)]),
            "-t",
            "10s",
            f"http://127.0.0.1:{port}/webhook",
        ]
        kept = self.tmp / "oha-record.db" if record and a.slow_ms else None
        if kept is not None:
            kept.unlink(missing_ok=True)
            argv[-1:-1] = ["--db-url", str(kept)]
        usage = Usage(server, self.on_postgres)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        try:
            j = json.loads(out.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"oha failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}") from None
        summary = j.get("summary", {})
        codes = {str(k): int(v) for k, v in (j.get("statusCodeDistribution") or {}).items()}
        errors = {str(k): int(v) for k, v in (j.get("errorDistribution") or {}).items()}
        ok = sum(v for k, v in codes.items() if k.startswith("2"))
        non_2xx = sum(codes.values()) - ok
        # oha counts requests cut by its own deadline (-z) as errors: not the server's fault.
        socket_errors = sum(v for k, v in errors.items() if "aborted due to deadline" not in k)
        pct = j.get("latencyPercentiles") or {}

        def ms(key: str) -> float | None:
            v = pct.get(key)
            return None if v is None else float(v) * 1000

        total = sum(codes.values())
        secs = float(summary.get("total") or seconds)
        db_us, idle_pct = usage.per_request(ok)
        return Result(
            total,
            secs,
            total / secs if secs else 0.0,
            ms("p50"),
            ms("p99"),
            ms("p99.9"),
            non_2xx + socket_errors,
            {
                "non_2xx": non_2xx,
                "socket_errors": socket_errors,
                "codes": codes,
                "errors": errors,
                "target_rate": rate,
                "success_rate": summary.get("successRate"),
                **({"slow": slow_windows(kept, a.slow_ms)} if kept is not None and kept.exists() else {}),
            },
            db_us=db_us,
            idle_pct=idle_pct,
        )


# ------------------------------------------------------------------------------------------------
# the table


@dataclass
class Row:
    scenario: str
    target: str
    alerts: int
    mode: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    errors: int
    rss_mb: float
    ratio: str = ""
    note: str = ""
    cpu_us: float | None = None
    thread_us: float | None = None
    db_us: float | None = None
    idle_pct: list[float] | None = None

    @property
    def alerts_s(self) -> float:
        return self.rps * self.alerts


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def print_table(rows: list[Row], header: str) -> None:
    cols = [
        "scenario",
        "target",
        "alerts",
        "mode",
        "req/s",
        "alerts/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "RSS MB/worker",
        "CPU µs/req",
        "thread µs/req",
        "DB CPU µs/req",
        "idle % per CPU",
        "vs bare",
        "note",
    ]
    data = [
        [
            r.scenario,
            r.target,
            str(r.alerts),
            r.mode,
            f"{r.rps:,.0f}",
            f"{r.alerts_s:,.0f}",
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            fmt_ms(r.p999_ms),
            str(r.errors),
            f"{r.rss_mb:.0f}" if r.rss_mb else "-",
            "-" if r.cpu_us is None else f"{r.cpu_us:.0f}",
            "-" if r.thread_us is None else f"{r.thread_us:.0f}",
            "-" if r.db_us is None else f"{r.db_us:.0f}",
            "-" if r.idle_pct is None else "/".join(f"{x:.0f}" for x in r.idle_pct),
            r.ratio,
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(c), *(len(d[i]) for d in data)) if data else len(c) for i, c in enumerate(cols)]
    print()
    print(header)
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    print(line)
    print("-" * len(line))
    for d in data:
        print("  ".join(v.ljust(w) for v, w in zip(d, widths, strict=True)))
    print()


# ------------------------------------------------------------------------------------------------
# scenarios


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        tools: Tools,
        wf: Server,
        bare: Server | None,
        sets: dict[tuple[int, bool], PayloadSet],
        reference: Server | None = None,
        folder: flush_variants.Folder | None = None,
    ) -> None:
        self.a = args
        self.tools = tools
        self.wf = wf
        self.bare = bare
        self.reference = reference
        self.sets = sets
        self.rows: list[Row] = []
        self.knee: float | None = None
        # --pg-flush-only journal: drained after each webhookfast run, so that no other run
        # shares the machine with the fold.
        self.folder = folder

    def payload(self, alerts: int, unique: bool) -> PayloadSet:
        return self.sets[(alerts, unique)]

    def add(self, row: Row) -> Row:
        if self.a.pg_flush_only and row.target == "webhookfast":
            # On every such row, so that no row of the experiment passes for a measurement of webhookfast.
            folded = self.folder.drain() if self.folder is not None else ""
            row.note = "; ".join(
                x for x in [f"EXPERIMENT: --pg-flush-only {self.a.pg_flush_only}", folded, row.note] if x
            )
        self.rows.append(row)
        log(
            f"{row.scenario:7} {row.target:11} {row.alerts:5} alerts  {row.rps:9,.0f} req/s  p99 {fmt_ms(row.p99_ms)} ms"
            f"  errors {row.errors}  {row.ratio} {row.note}"
        )
        return row

    def _mode(self, ps: PayloadSet) -> str:
        return f"unique/{ps.count}" if ps.unique else "repeated"

    def max_throughput(self) -> None:
        for n in self.a.alert_sizes:
            ps = self.payload(n, self.a.unique)
            wrapped = ""
            bare_rps = None
            if self.bare is not None:
                b = self.tools.wrk_run(self.bare, ps, self.a.duration)
                bare_rps = b.rps
                self.add(
                    Row(
                        "max",
                        "bare",
                        n,
                        self._mode(ps),
                        b.rps,
                        b.p50_ms,
                        b.p99_ms,
                        b.p999_ms,
                        b.errors,
                        self.bare.worker_rss_mb(),
                        note="wrk: latency not CO-corrected",
                        cpu_us=b.cpu_us,
                        thread_us=b.thread_us,
                        db_us=b.db_us,
                        idle_pct=b.idle_pct,
                    )
                )
            ref_rps = None
            if self.reference is not None:
                f = self.tools.wrk_run(self.reference, ps, self.a.duration)
                ref_rps = f.rps
                self.add(
                    Row(
                        "max",
                        "reference",
                        n,
                        self._mode(ps),
                        f.rps,
                        f.p50_ms,
                        f.p99_ms,
                        f.p999_ms,
                        f.errors,
                        self.reference.worker_rss_mb(),
                        f"{f.rps / bare_rps:.2f}x req/s" if bare_rps else "",
                        "../shared/reference c_batch, ack after commit",
                        cpu_us=f.cpu_us,
                        thread_us=f.thread_us,
                        db_us=f.db_us,
                        idle_pct=f.idle_pct,
                    )
                )
            ceiling = self.pg_ceiling(n) if n >= PG_CEILING_MIN_ALERTS else None
            r = self.tools.wrk_run(self.wf, ps, self.a.duration)
            if ps.unique and r.requests > ps.count:
                wrapped = f"ring wrapped {r.requests / ps.count:.1f}x"
            if r.requests == 0:
                wrapped = f"no request completed in {self.a.duration:g} s (raise -d or lower -c)"
            ratio = f"{r.rps / bare_rps:.2f}x req/s" if bare_rps else ""
            if ref_rps:
                ratio = "; ".join(x for x in [ratio, f"{r.rps / ref_rps:.2f}x reference"] if x)
            if ceiling:
                ratio = "; ".join(x for x in [ratio, f"{r.rps * n / ceiling:.2f}x pg alone"] if x)
            self.add(
                Row(
                    "max",
                    "webhookfast",
                    n,
                    self._mode(ps),
                    r.rps,
                    r.p50_ms,
                    r.p99_ms,
                    r.p999_ms,
                    r.errors,
                    self.wf.worker_rss_mb(),
                    ratio,
                    "; ".join(x for x in ["wrk: not CO-corrected", wrapped] if x),
                    cpu_us=r.cpu_us,
                    thread_us=r.thread_us,
                    db_us=r.db_us,
                    idle_pct=r.idle_pct,
                )
            )

    def pg_ceiling(self, n: int) -> float | None:
        """PostgreSQL alone, one jsonb row per alert by COPY (pg_reference.py ``onetable``), on the
        same server as webhookfast's database: alerts/s, the faster of 1 and 10 requests per
        transaction (a row is added for it). None when not on PostgreSQL or skipped."""
        url = self.a.database_url
        if not self.a.pg_ceiling or not url or not url.startswith("postgres"):
            return None
        import pg_reference

        bodies = pg_reference.ring(n, int(time.time()) % 100_000 * 1_000_000 + 900_000)
        best: tuple[float, int] | None = None
        for per_txn in (1, 10):
            _, alerts, _, busy = pg_reference.run_onetable(url, bodies, per_txn, self.a.duration)
            if busy > 0 and (best is None or alerts / busy > best[0]):
                best = (alerts / busy, per_txn)
        if best is None:
            return None
        self.add(
            Row(
                "max",
                "pg alone",
                n,
                "unique",
                best[0] / n,
                None,
                None,
                None,
                0,
                0.0,
                note=f"pg_reference.py onetable: one jsonb row per alert by COPY, {best[1]} req/txn, one connection",
            )
        )
        return best[0]

    def steady(self) -> None:
        for n in self.a.steady_sizes:
            ps = self.payload(n, self.a.unique)
            rate = self.a.rate
            bare_p99 = None
            if self.bare is not None:
                b = self.tools.oha_run(self.bare, ps, rate, self.a.duration, record=True)
                if "slow" in b.detail:
                    log(f"steady  bare: {b.detail['slow']}")
                bare_p99 = b.p99_ms
                self.add(
                    Row(
                        "steady",
                        "bare",
                        n,
                        self._mode(ps),
                        b.rps,
                        b.p50_ms,
                        b.p99_ms,
                        b.p999_ms,
                        b.errors,
                        self.bare.worker_rss_mb(),
                        note=f"oha -q {rate:g}, CO-corrected",
                        idle_pct=b.idle_pct,
                    )
                )
            r = self.tools.oha_run(self.wf, ps, rate, self.a.duration, record=True)
            if "slow" in r.detail:
                log(f"steady  webhookfast: {r.detail['slow']}")
            ratio = f"{r.p99_ms / bare_p99:.1f}x p99" if bare_p99 and r.p99_ms else ""
            short = "" if r.rps >= 0.95 * rate else f"fell short of {rate:g} req/s"
            self.add(
                Row(
                    "steady",
                    "webhookfast",
                    n,
                    self._mode(ps),
                    r.rps,
                    r.p50_ms,
                    r.p99_ms,
                    r.p999_ms,
                    r.errors,
                    self.wf.worker_rss_mb(),
                    ratio,
                    "; ".join(x for x in [f"oha -q {rate:g}, CO-corrected", short] if x),
                    db_us=r.db_us,
                    idle_pct=r.idle_pct,
                )
            )

    def _stress(self, server: Server, target: str) -> tuple[float | None, Result | None]:
        ps = self.payload(self.a.rate_alerts, self.a.unique)
        rate = self.a.stress_start
        knee, knee_result = None, None
        for _step in range(self.a.stress_steps):
            r = self.tools.oha_run(server, ps, rate, self.a.step, settle=_step == 0)
            ok = r.errors == 0 and r.p99_ms is not None and r.p99_ms <= self.a.stress_p99_ms and r.rps >= 0.9 * rate
            log(
                f"  stress {target} {rate:8,.0f} req/s → {r.rps:9,.0f} req/s, p99 {fmt_ms(r.p99_ms)} ms, "
                f"errors {r.errors}: {'ok' if ok else 'past the knee'}"
            )
            if not ok:
                break
            knee, knee_result = rate, r
            rate *= self.a.stress_factor
        return knee, knee_result

    def stress(self) -> None:
        bare_knee = None
        if self.bare is not None and self.a.bare_stress:
            bare_knee, b = self._stress(self.bare, "bare")
            if b is not None:
                self.add(
                    Row(
                        "stress",
                        "bare",
                        self.a.rate_alerts,
                        self._mode(self.payload(self.a.rate_alerts, self.a.unique)),
                        b.rps,
                        b.p50_ms,
                        b.p99_ms,
                        b.p999_ms,
                        b.errors,
                        self.bare.worker_rss_mb(),
                        note=f"knee {bare_knee:,.0f} req/s",
                        idle_pct=b.idle_pct,
                    )
                )
        knee, r = self._stress(self.wf, "webhookfast")
        self.knee = knee
        if r is None:
            self.add(
                Row(
                    "stress",
                    "webhookfast",
                    self.a.rate_alerts,
                    self._mode(self.payload(self.a.rate_alerts, self.a.unique)),
                    0,
                    None,
                    None,
                    None,
                    0,
                    self.wf.worker_rss_mb(),
                    note=f"failed already at {self.a.stress_start:g} req/s",
                )
            )
            return
        ratio = f"{knee / bare_knee:.2f}x knee" if bare_knee and knee else ""
        self.add(
            Row(
                "stress",
                "webhookfast",
                self.a.rate_alerts,
                self._mode(self.payload(self.a.rate_alerts, self.a.unique)),
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.errors,
                self.wf.worker_rss_mb(),
                ratio,
                f"knee {knee:,.0f} req/s (next step x{self.a.stress_factor:g}: errors or p99 > "
                f"{self.a.stress_p99_ms:g} ms)",
                db_us=r.db_us,
                idle_pct=r.idle_pct,
            )
        )

    def spike(self) -> None:
        ps = self.payload(self.a.rate_alerts, self.a.unique)
        low = self.a.spike_low
        high = self.a.spike_rate or (2 * self.knee if self.knee else 5000)
        d = self.a.spike_duration
        base = self.tools.oha_run(self.wf, ps, low, d)
        peak = self.tools.oha_run(self.wf, ps, high, d, settle=False)
        recovered_after = None
        threshold = max(2 * (base.p99_ms or 1), (base.p99_ms or 0) + 5)
        slices = []
        for i in range(int(self.a.spike_recovery)):
            s = self.tools.oha_run(self.wf, ps, low, 1, settle=False)
            slices.append(s)
            if s.errors == 0 and s.p99_ms is not None and s.p99_ms <= threshold:
                recovered_after = i + 1
                break
        rec = (
            f"recovered in {recovered_after} s" if recovered_after else f"not recovered in {self.a.spike_recovery:g} s"
        )
        self.add(
            Row(
                "spike",
                "webhookfast",
                self.a.rate_alerts,
                self._mode(ps),
                base.rps,
                base.p50_ms,
                base.p99_ms,
                base.p999_ms,
                base.errors,
                self.wf.worker_rss_mb(),
                note=f"before: {low:g} req/s",
            )
        )
        self.add(
            Row(
                "spike",
                "webhookfast",
                self.a.rate_alerts,
                self._mode(ps),
                peak.rps,
                peak.p50_ms,
                peak.p99_ms,
                peak.p999_ms,
                peak.errors,
                self.wf.worker_rss_mb(),
                note=f"spike: {high:,.0f} req/s for {d:g} s; {rec} (p99 <= {threshold:.1f} ms, no errors)",
            )
        )
        if slices:
            s = slices[-1]
            self.add(
                Row(
                    "spike",
                    "webhookfast",
                    self.a.rate_alerts,
                    self._mode(ps),
                    s.rps,
                    s.p50_ms,
                    s.p99_ms,
                    s.p999_ms,
                    sum(x.errors for x in slices),
                    self.wf.worker_rss_mb(),
                    note=f"after: {low:g} req/s, last 1-s slice; errors over {len(slices)} s",
                )
            )

    def soak(self) -> None:
        ps = self.payload(self.a.rate_alerts, self.a.unique)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, self.wf.worker_rss_mb()))
                stop.wait(2.0)

        self.wf.settle()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            r = self.tools.oha_run(self.wf, ps, self.a.soak_rate, self.a.soak_duration, settle=False)
        finally:
            stop.set()
            sampler.join(timeout=5)
        samples.append((self.a.soak_duration, self.wf.worker_rss_mb()))
        first = samples[min(1, len(samples) - 1)][1]  # skip the very first sample (warm-up)
        last = samples[-1][1]
        alerts = r.requests * ps.alerts
        per_m = (last - first) / alerts * 1e6 if alerts else 0.0
        self.add(
            Row(
                "soak",
                "webhookfast",
                ps.alerts,
                self._mode(ps),
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.errors,
                last,
                note=f"{self.a.soak_rate:g} req/s for {self.a.soak_duration:g} s: RSS {first:.0f} -> {last:.0f} MB "
                f"({last - first:+.1f} MB, {per_m:+.1f} MB per 1M alerts)",
            )
        )

    def reads(self) -> None:
        """First the cost of one read (back to back, no ingest: CPU per read of the server and of
        PostgreSQL); then ingest alone (A) and ingest with the read load beside it (B), ABBA
        BAAB … so that a drift of the machine or of the database (it grows during the run) hits
        both alike; once per read rate of ``--read-rate``."""
        ps = self.payload(self.a.read_alerts, self.a.unique)
        paths = read_paths(self.wf.port)
        self.wf.settle()
        server0, usage = self.wf.cpu_seconds(), Usage(self.wf, self.tools.on_postgres)
        load = ReadLoad(self.wf.port, paths, 0).start()
        time.sleep(self.a.duration)
        st = load.stop()
        server_ms = (self.wf.cpu_seconds() - server0) * 1000 / max(1, st.requests)
        pg_us, _ = usage.per_request(st.requests)
        pg_ms = "n/a" if pg_us is None else f"{pg_us / 1000:.1f}"
        self.add(
            Row(
                "reads",
                "reads alone",
                0,
                f"mix/{len(paths)}",
                st.rate,
                st.p50(),
                st.pct(0.99),
                None,
                st.errors,
                self.wf.worker_rss_mb(),
                note=f"back to back, no ingest: CPU per read {server_ms:.1f} ms server + {pg_ms} ms PostgreSQL",
            )
        )
        for rate in self.a.read_rates:
            self._reads_at(ps, paths, rate)

    def _reads_at(self, ps: PayloadSet, paths: list[str], rate: float) -> None:
        label = f"{rate:g} reads/s" if rate > 0 else "reads back to back"
        alone: list[Result] = []
        beside: list[Result] = []
        reads_all: list[ReadStats] = []
        order: list[bool] = []
        for k in range(self.a.read_rounds):
            order += [False, True] if k % 2 == 0 else [True, False]
        for with_reads in order:
            if not with_reads:
                alone.append(self.tools.wrk_run(self.wf, ps, self.a.duration))
                r = alone[-1]
                self.add(
                    Row(
                        "reads",
                        "ingest",
                        ps.alerts,
                        self._mode(ps),
                        r.rps,
                        r.p50_ms,
                        r.p99_ms,
                        r.p999_ms,
                        r.errors,
                        self.wf.worker_rss_mb(),
                        note=f"no reads (pair for {label})",
                    )
                )
                continue
            self.wf.settle()
            load = ReadLoad(self.wf.port, paths, rate).start()
            try:
                r = self.tools.wrk_run(self.wf, ps, self.a.duration, settle=False)
            finally:
                st = load.stop()
            beside.append(r)
            reads_all.append(st)
            self.add(
                Row(
                    "reads",
                    "ingest+reads",
                    ps.alerts,
                    self._mode(ps),
                    r.rps,
                    r.p50_ms,
                    r.p99_ms,
                    r.p999_ms,
                    r.errors,
                    self.wf.worker_rss_mb(),
                    note=f"{label}; {st.summary()}",
                )
            )
        a_rps = statistics.median(x.rps for x in alone)
        b_rps = statistics.median(x.rps for x in beside)
        # Each round's two runs are adjacent (AB or BA): their ratio cancels the slow drift of a
        # growing database and a noisy machine better than the ratio of the medians.
        ratios = sorted(b.rps / a.rps for a, b in zip(alone, beside, strict=True) if a.rps)
        ratio = statistics.median(ratios) if ratios else 0.0
        reads = ReadStats.merged(reads_all)
        spread = f"{(ratios[0] - 1) * 100:+.1f}%..{(ratios[-1] - 1) * 100:+.1f}%" if ratios else "-"
        self.add(
            Row(
                "reads",
                "summary",
                ps.alerts,
                self._mode(ps),
                b_rps,
                reads.p50(),
                reads.pct(0.99),
                None,
                reads.errors,
                0.0,
                f"{ratio:.3f}x",
                f"{label}: ingest {(ratio - 1) * 100:+.1f}% (median of {len(ratios)} paired runs, "
                f"range {spread}; medians {b_rps:,.0f} with reads vs {a_rps:,.0f} req/s alone); "
                f"p50/p99/errors columns = the {reads.requests} reads "
                f"({reads.rate:.1f}/s)",
            )
        )


# ------------------------------------------------------------------------------------------------


REFERENCE_DIR = ROOT.parent / "shared" / "reference"


def reference_server(
    a: argparse.Namespace, db_url: str, pin: list[str], env: dict[str, str], tmp: Path
) -> Server | None:
    """The plain-Python reference receiver (``../shared/reference``, run from there, never copied):
    ack after commit, flushing as soon as its flusher is free, into its one table (created here)."""
    directory = a.reference_dir
    if not (directory / "c_batch.py").is_file():
        log(f"no reference receiver at {directory}: column left out")
        return None
    import psycopg
    from psycopg.conninfo import make_conninfo

    # Its own database on the same server: its one table is also named "alerts".
    with psycopg.connect(db_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'webhookfast_reference'").fetchone() is None:
            conn.execute("CREATE DATABASE webhookfast_reference")
    ref_dsn = make_conninfo(db_url, dbname="webhookfast_reference")
    with psycopg.connect(ref_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS alerts (fingerprint text, alertname text, status text, labels jsonb, "
            "annotations jsonb, starts_at timestamptz, ends_at timestamptz, received_at timestamptz DEFAULT now())"
        )
    port = free_port()
    ref_env = {**env, "ANCHOR_ACK": "commit", "ANCHOR_BATCH_MS": "0", "ANCHOR_DSN": ref_dsn}
    argv = [
        *pin,
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "rsgi",
        "--runtime-mode",
        "st",
        "--workers",
        str(a.workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(directory),
        "c_batch:app",
    ]
    return Server("reference receiver", argv, port, "/stats", tmp / "reference.log", ref_env)


# Scenarios that send at a fixed rate (oha): their latency is what the disk's syncs show in.
FIXED_RATE_SCENARIOS = {"steady", "stress", "spike", "soak"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", help="default: SQLite in a temp dir; or postgresql://...")
    pgtemp.add_arguments(p)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--scenarios", default="max,steady,stress,spike,soak")
    p.add_argument("--alerts", default="1,10,100,1000", help="payload sizes for max throughput")
    p.add_argument("--steady-alerts", default="1,10", help="payload sizes for the steady scenario")
    p.add_argument("--rate-alerts", type=int, default=1, help="payload size for stress, spike and soak")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--unique", dest="unique", action="store_true", default=True, help="distinct label sets per request (default)"
    )
    g.add_argument("--repeated", dest="unique", action="store_false", help="one body, repeated")
    p.add_argument(
        "--ring-mb",
        type=int,
        default=UNIQUE_RING_MB,
        help=f"MB of distinct bodies per payload size (at most {UNIQUE_RING_MAX:,} bodies); a row's note says when "
        "its run sent some twice",
    )
    p.add_argument("-d", "--duration", type=float, default=10.0, help="seconds per max/steady measurement")
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("-t", "--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--rate", type=float, default=2000.0, help="steady: requests per second")
    p.add_argument("--step", type=float, default=4.0, help="stress: seconds per step")
    p.add_argument("--stress-start", type=float, default=500.0)
    p.add_argument("--stress-factor", type=float, default=1.5)
    p.add_argument("--stress-steps", type=int, default=8)
    p.add_argument("--stress-p99-ms", type=float, default=100.0)
    p.add_argument("--bare-stress", action="store_true", help="also find the bare app's knee")
    p.add_argument("--spike-low", type=float, default=1000.0)
    p.add_argument("--spike-rate", type=float, default=0.0, help="default: 2x the stress knee, else 5000")
    p.add_argument("--spike-duration", type=float, default=5.0)
    p.add_argument("--spike-recovery", type=float, default=10.0, help="max seconds watched after the spike")
    p.add_argument("--soak-rate", type=float, default=1000.0)
    p.add_argument("--soak-duration", type=float, default=60.0)
    p.add_argument("--read-alerts", type=int, default=10, help="reads: alerts per ingest request")
    p.add_argument(
        "--read-rate", default="1,10", help="reads: history requests per second, comma-separated (0: back to back)"
    )
    p.add_argument("--read-rounds", type=int, default=3, help="reads: pairs of runs (alone, with reads)")
    p.add_argument(
        "--history-rows",
        type=int,
        default=0,
        help="prefill the database with this many history rows (scripts/gen_history.py) before serving",
    )
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for webhookfast serve")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a WEBHOOKFAST_* setting for the server, for settings without a serve option "
        "(the caller's own WEBHOOKFAST_* variables are not passed on)",
    )
    p.add_argument(
        "--slow-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="steady: also count the requests slower than MS and say in which 100-ms windows of the run "
        "they were (from oha's record of each request)",
    )
    p.add_argument("--no-bare", action="store_true", help="skip the bare Granian reference")
    p.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on PostgreSQL, also measure the plain-Python reference receiver in max (default: on)",
    )
    p.add_argument("--reference-dir", type=Path, default=REFERENCE_DIR, help="where the reference receiver lives")
    p.add_argument(
        "--pg-ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"on PostgreSQL, max also measures PostgreSQL alone (one-table COPY) for bodies of "
        f">= {PG_CEILING_MIN_ALERTS} alerts (default: on)",
    )
    p.add_argument("--pin", action="store_true", help="servers on CPU 0, load generators on CPU 1 (taskset)")
    p.add_argument("--quick", action="store_true", help="short everything (checks that the script works)")
    p.add_argument("--no-install", action="store_true", help="never install wrk/oha")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument(
        "--disk-probe",
        type=float,
        default=10.0,
        help="seconds of fsync_probe.py in the run's temp dir before fixed-rate scenarios (0: none)",
    )
    p.add_argument(
        "--pg-flush-only",
        choices=sorted(flush_variants.VARIANTS),
        help="an experiment, with --postgres-temp only: webhookfast's flush writes less, or later (scripts/load/flush_variants.py)",
    )
    a = p.parse_args(argv)
    for setting in a.server_env:
        if not setting.startswith("WEBHOOKFAST_") or "=" not in setting:
            p.error(f"--server-env takes WEBHOOKFAST_NAME=VALUE, not {setting!r}")
    if a.pg_flush_only and not a.postgres_temp:
        p.error("--pg-flush-only replaces a database function: only on the throw-away cluster of --postgres-temp")
    if a.quick:
        a.duration, a.step, a.stress_steps = 2.0, 1.5, 5
        a.spike_duration, a.spike_recovery, a.soak_duration = 1.5, 3.0, 6.0
        a.disk_probe = min(a.disk_probe, 1.0)
    if not 1 <= a.ring_mb <= 4096:
        p.error("--ring-mb must be within 1-4096")
    if not 0 <= a.disk_probe <= 3600:
        p.error("--disk-probe must be within 0-3600 seconds")
    a.scenario_list = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(a.scenario_list) - {"max", "steady", "stress", "spike", "soak", "reads"}
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    a.alert_sizes = [int(x) for x in a.alerts.split(",") if x]
    a.steady_sizes = [int(x) for x in a.steady_alerts.split(",") if x]
    a.read_rates = [float(x) for x in a.read_rate.split(",") if x]
    a.needs_oha = bool(set(a.scenario_list) & FIXED_RATE_SCENARIOS)
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="webhookfast-load-"))
    servers: list[Server] = []
    pg = None
    folder: flush_variants.Folder | None = None
    try:
        tools = Tools(a, tmp)
        if a.needs_oha and tools.oha is None:
            a.scenario_list = [s for s in a.scenario_list if s in ("max", "reads")]
        if a.postgres_temp:
            pg = pgtemp.start_from_args(a)
            a.database_url = pg.url
            log(f"temporary PostgreSQL at {pg.url}, {a.pg_warm_wal} MB of WAL written before the runs")
        db_url = a.database_url or f"sqlite:///{tmp / 'webhookfast.db'}"

        seed_base = int(time.time()) % 100_000 * 1_000_000
        sets: dict[tuple[int, bool], PayloadSet] = {}
        for n in sorted(set(a.alert_sizes) | set(a.steady_sizes) | {a.rate_alerts, a.read_alerts}):
            sets[(n, False)] = make_payloads(tmp, n, False, seed_base + n)
            if a.unique:
                sets[(n, True)] = make_payloads(tmp, n, True, seed_base + n, a.ring_mb)

        disk = None
        if a.disk_probe > 0 and set(a.scenario_list) & FIXED_RATE_SCENARIOS:
            # The floor under every fixed-rate p99 of a server that acknowledges after commit.
            from fsync_probe import probe

            disk = probe(tmp, a.disk_probe)
            log(f"disk: {disk.summary()}")

        pin = ["taskset", "-c", "0"] if a.pin else []
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKFAST_")}
        env["WEBHOOKFAST_SPOOL_DIR"] = str(tmp / "spool")  # PostgreSQL's spool stays in the temp dir
        env.update(setting.split("=", 1) for setting in a.server_env)
        if a.history_rows or a.pg_flush_only:
            subprocess.run(
                [sys.executable, "-m", "webhookfast", "migrate", "--database-url", db_url],
                env=env,
                check=True,
                timeout=300,
            )
        if a.pg_flush_only:
            flush_variants.apply(db_url, a.pg_flush_only)
            log(f"EXPERIMENT: webhookfast_flush replaced by flush_variants.py's {a.pg_flush_only!r}")
        if a.pg_flush_only == "journal":
            folder = flush_variants.Folder(db_url).start()
        if a.history_rows:
            t0 = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "gen_history.py"),
                    "--url",
                    db_url,
                    "--rows",
                    str(a.history_rows),
                ],
                env=env,
                check=True,
                timeout=1800,
            )
            # Hundreds of MB just written: on the disk now, not in the kernel's write-back half a
            # minute into a measurement (see _write_durably).
            os.sync()
            log(f"history of {a.history_rows:,} rows generated in {time.monotonic() - t0:.0f} s")
        wf_port = free_port()
        wf = Server(
            "webhookfast",
            [
                *pin,
                sys.executable,
                "-m",
                "webhookfast",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(wf_port),
                "--workers",
                str(a.workers),
                "--database-url",
                db_url,
                *a.server_arg,
            ],
            wf_port,
            "/healthz",
            tmp / "webhookfast.log",
            env,
        )
        bare = None
        if not a.no_bare:
            bare_port = free_port()
            bare = Server(
                "bare granian",
                [
                    *pin,
                    sys.executable,
                    "-m",
                    "granian",
                    "--interface",
                    "rsgi",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(bare_port),
                    "--workers",
                    str(a.workers),
                    "--working-dir",
                    str(LOAD_DIR),
                    "bare_app:app",
                ],
                bare_port,
                "/",
                tmp / "bare.log",
                env,
                uses_database=False,
            )
        reference = None
        if a.reference and db_url.startswith("postgres"):
            reference = reference_server(a, db_url, pin, env, tmp)
        elif a.reference:
            log("no reference receiver: it writes to PostgreSQL only (use --postgres-temp or --database-url)")
        for s in [wf, bare, reference]:
            if s is not None:
                servers.append(s)
                s.start()

        runner = Runner(a, tools, wf, bare, sets, reference, folder)
        started = time.monotonic()
        for name in ["max", "steady", "stress", "spike", "soak", "reads"]:
            if name in a.scenario_list:
                log(f"scenario {name}")
                {
                    "max": runner.max_throughput,
                    "steady": runner.steady,
                    "stress": runner.stress,
                    "spike": runner.spike,
                    "soak": runner.soak,
                    "reads": runner.reads,
                }[name]()
        store = "postgresql" if db_url.startswith("postgres") else "sqlite"
        if pg is not None:
            store += f" (temporary cluster, {a.pg_warm_wal} MB of WAL written first)"
        if a.pg_flush_only:
            store += f", EXPERIMENT: --pg-flush-only {a.pg_flush_only} (not what webhookfast stores)"
        header = (
            f"webhookfast load run {time.strftime('%Y-%m-%d %H:%M:%S')}: store={store}, workers={a.workers}, "
            f"cpus={os.cpu_count()}, wrk -t{a.threads} -c{a.connections}, "
            f"payloads: {'unique' if a.unique else 'repeated'}, took {time.monotonic() - started:.0f} s"
        )
        print_table(runner.rows, header)
        print(
            "mode: unique/N = wrk/oha cycle through N distinct bodies (new label sets: real inserts); repeated = one body "
            "(rows collapse: upserts). errors = non-2xx + socket errors. RSS = largest worker process. "
            "vs bare: req/s ratio (max), p99 ratio (steady), knee ratio (stress, with --bare-stress)."
        )
        if disk is not None:
            print(
                f"disk before the servers started (scripts/load/fsync_probe.py, {a.disk_probe:g} s in the run's "
                f"temp dir): 4 KiB + fdatasync every 10 ms, {disk.summary()}. Every commit waits for such a sync."
            )
        if a.json:
            a.json.write_text(json.dumps([{**asdict(r), "alerts_s": r.alerts_s} for r in runner.rows], indent=2))
        return 0
    finally:
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as exc:  # keep stopping the others
                log(f"stopping {s.name}: {exc}")
        if folder is not None:
            folder.stop()
        if pg is not None:
            pg.stop()
        if a.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
