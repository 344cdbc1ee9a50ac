#!/usr/bin/env python3
"""Compare the two ways PostgresStore can merge one flush into PostgreSQL, on a real server.

  staging  binary COPY (encoded by Rust) into per-connection temp tables, then one multi-statement
           INSERT ... SELECT ... ON CONFLICT  (PostgresStore(merge="copy"));
  unnest   one SELECT webhookfast_flush(...) (migration 0010): every column as a binary array from
           RowEncoder.pg_arrays (same dedup and order), merged by INSERT ... SELECT FROM unnest ...
           ON CONFLICT in one statement's transaction (PostgresStore(merge="unnest"), the default).
Both are timed through PostgresStore.write itself, i.e. the production code paths.

Each flush carries N distinct alerts (Alertmanager v4 payloads, 6 labels, 3 annotations). Two
cases: "new" (every row inserted) and "repeat" (the same flush again: events conflict and are
skipped, current state is updated). Strategies alternate flush by flush so that table growth and
checkpoints hit both alike. Every flush is a committed transaction (fsync on, as in production).
Times include encoding in Rust.

Usage:
  python scripts/bench_merge.py                 # throwaway cluster (needs initdb/pg_ctl), removed after
  python scripts/bench_merge.py --url postgresql://user@host/db   # an existing, EMPTY scratch database
  options: --sizes 1,10,100,500  --flushes 200  --seconds 4 (cap per cell and strategy)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests")]

import orjson  # noqa: E402
import psycopg  # noqa: E402
from webhookfast._core import decode  # noqa: E402
from webhookfast.storage.postgres import PostgresStore  # noqa: E402


def payload(n: int, tag: str) -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": f"Bench{i % 7}",
                "instance": f"host-{i:05d}.example.internal:9100",
                "job": "node",
                "severity": "warning" if i % 3 else "critical",
                "team": "sre",
                "run": tag,
            },
            "annotations": {
                "summary": f"Bench alert {i} on host-{i:05d}",
                "description": "Value is 95.90% (threshold 90%). Second line — «quoted».",
                "runbook_url": "https://runbooks.example.org/bench",
            },
            "startsAt": "2026-11-27T20:07:30.543223Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.internal:9090/graph?g0.expr=up",
        }
        for i in range(n)
    ]
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{run="{tag}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "bench",
        "groupLabels": {"run": tag},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am.example.internal:9093",
        "alerts": alerts,
    }
    return orjson.dumps(body)


async def bench(url: str, sizes: list[int], flushes: int, seconds: float) -> list[tuple]:
    stores = {
        "staging": PostgresStore(url, pool_min_size=1, pool_max_size=1, merge="copy"),
        "unnest": PostgresStore(url, pool_min_size=1, pool_max_size=1, merge="unnest"),
    }
    for store in stores.values():
        await store.open()
    out = []
    try:
        for n in sizes:
            for case in ("new", "repeat"):
                times: dict[str, list[float]] = {k: [] for k in stores}
                spent = {k: 0.0 for k in stores}
                for i in range(flushes + 5):
                    for strategy, store in stores.items():
                        if spent[strategy] > seconds:
                            continue
                        tag = uuid.uuid4().hex[:12]
                        if case == "repeat":  # first delivery untimed, then the same flush again
                            await store.write([decode(payload(n, tag))])
                        batch = decode(payload(n, tag))
                        t0 = time.perf_counter()
                        await store.write([batch])
                        dt = time.perf_counter() - t0
                        if i >= 5:  # warm-up: connection setup, auto-prepare after 5 runs
                            times[strategy].append(dt)
                            spent[strategy] += dt
                row: list[object] = [n, case]
                for strategy in stores:
                    ts = sorted(times[strategy])
                    med = statistics.median(ts)
                    p90 = ts[int(len(ts) * 0.9) - 1] if len(ts) >= 10 else ts[-1]
                    row += [len(ts), med * 1e3, p90 * 1e3, med * 1e6 / n]
                out.append(tuple(row))
                print_row(tuple(row))
    finally:
        for store in stores.values():
            await store.close()
    return out


HEADER = (
    f"{'rows':>5} {'case':<7}| {'staging n':>9} {'med ms':>7} {'p90 ms':>7} {'µs/row':>7} "
    f"| {'unnest n':>8} {'med ms':>7} {'p90 ms':>7} {'µs/row':>7} | {'unnest/staging':>14}"
)


def print_row(r: tuple) -> None:
    n, case, sn, smed, sp90, srow, un, umed, up90, urow = r
    print(
        f"{n:>5} {case:<7}| {sn:>9} {smed:>7.3f} {sp90:>7.3f} {srow:>7.1f} "
        f"| {un:>8} {umed:>7.3f} {up90:>7.3f} {urow:>7.1f} | {umed / smed:>14.2f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an existing empty scratch database (default: a throwaway cluster)")
    ap.add_argument("--sizes", default="1,10,100,500")
    ap.add_argument("--flushes", type=int, default=200, help="timed flushes per cell and strategy (max)")
    ap.add_argument("--seconds", type=float, default=4.0, help="time cap per cell and strategy")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    server = None
    url = args.url
    if url is None:
        from support.postgres import PostgresServer, database_url, find_pg_bin

        bindir = find_pg_bin()
        if bindir is None:
            sys.exit("no initdb/pg_ctl found: pass --url")
        server = PostgresServer.create(bindir)
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_merge")
        url = database_url(server.url, "bench_merge")
    try:
        PostgresStore(url).migrate()
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
        print(f"PostgreSQL {version}, fsync={fsync}, {os.cpu_count()} CPUs; times per committed flush")
        print(HEADER)
        asyncio.run(bench(url, sizes, args.flushes, args.seconds))
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    main()
