#!/usr/bin/env python3
"""PostgreSQL alone: how many alerts per second the database takes without HTTP, the reference for
the PostgreSQL store's durable-ingest target (10/100-alert requests at >= 0.8x of this).

    python scripts/load/pg_reference.py --postgres-temp                 # throw-away cluster, fsync on
    python scripts/load/pg_reference.py --database-url postgresql://... -d 10 --alerts 10,100

For each payload size and each ``--requests-per-txn`` K, in a loop for ``-d`` seconds: take K
pre-generated distinct Alertmanager bodies, ``webhookfast._core.decode`` each, encode them with
``RowEncoder().pg_copy`` and write them in one transaction. Two ways to write (``--modes``):

- ``copy``   binary COPY straight into the real tables (label_sets, alert_events, alerts): the
             ceiling (no staging, no ON CONFLICT). The bodies are distinct, so no key repeats; when
             the ring of bodies wraps, the tables are truncated (outside the timed part).
- ``onetable`` the ceiling of the durable-ingest target: one jsonb row per alert (the alert's own
             JSON, keyed by its fingerprint) by binary COPY into one table with a unique index, the
             body parsed with orjson. No history model at all: what PostgreSQL alone takes.
- ``store``  ``PostgresStore.write`` (what the server does per flush: one ``webhookfast_flush`` call
             with binary arrays), without HTTP or the batcher. ``store-copy`` forces the other path
             (COPY into temp staging + INSERT ... ON CONFLICT); ``store-unnest`` is ``store``.

Decode and encode are inside the timed loop (they are part of the work per request); body
generation is not. Prints rows/s (event rows) and alerts/s per configuration. The target database
must be migrated (done here with ``PostgresStore.migrate``) and is written to: use a scratch one.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
import payloads  # noqa: E402
import pgtemp  # noqa: E402
import psycopg  # noqa: E402
from webhookfast._core import Limits, RowEncoder, decode  # noqa: E402
from webhookfast.storage.postgres import ALERT_COLUMNS, EVENT_COLUMNS, LABEL_SET_COLUMNS, PostgresStore  # noqa: E402

RING_ALERTS = 100_000  # distinct alerts pre-generated per payload size


def log(msg: str) -> None:
    print(f"[pg_reference {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ring(alerts: int, seed_base: int) -> list[bytes]:
    count = max(20, RING_ALERTS // alerts)
    return [payloads.body(alerts, seed_base + k) for k in range(count)]


def truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE label_sets, alert_events, alerts")


def run_copy(url: str, bodies: list[bytes], per_txn: int, seconds: float) -> tuple[int, int, int, float]:
    """Returns (requests, alerts, event rows, seconds spent writing)."""
    limits = Limits()
    encoder = RowEncoder()
    requests = alerts = rows = 0
    busy = 0.0
    i = 0
    truncate(url)
    with psycopg.connect(url) as conn:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if i + per_txn > len(bodies):  # ring wrapped: start from empty tables (not timed)
                conn.commit()
                truncate(url)
                i = 0
            t0 = time.perf_counter()
            batches = [decode(b, limits) for b in bodies[i : i + per_txn]]
            copy = encoder.pg_copy(batches)
            with conn.cursor() as cur:
                with cur.copy(f"COPY label_sets ({LABEL_SET_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(copy.label_sets)
                with cur.copy(f"COPY alert_events ({EVENT_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(copy.events)
                with cur.copy(f"COPY alerts ({ALERT_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(copy.alerts)
            conn.commit()
            busy += time.perf_counter() - t0
            i += per_txn
            requests += per_txn
            alerts += sum(len(b) for b in batches)
            rows += copy.event_rows
    return requests, alerts, rows, busy


ONE_TABLE = "pg_reference_alerts"


def run_onetable(url: str, bodies: list[bytes], per_txn: int, seconds: float) -> tuple[int, int, int, float]:
    """One jsonb row per alert into one table with a unique index, by binary COPY."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {ONE_TABLE}")
        conn.execute(f"CREATE TABLE {ONE_TABLE} (fingerprint bigint NOT NULL, alert jsonb NOT NULL)")
        conn.execute(f"CREATE UNIQUE INDEX ON {ONE_TABLE} (fingerprint)")
    requests = alerts = 0
    busy = 0.0
    i = 0
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    with psycopg.connect(url) as conn:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if i + per_txn > len(bodies):  # ring wrapped: start from an empty table (not timed)
                conn.execute(f"TRUNCATE {ONE_TABLE}")
                conn.commit()
                i = 0
            t0 = time.perf_counter()
            out = [header]
            n = 0
            for body in bodies[i : i + per_txn]:
                for alert in orjson.loads(body)["alerts"]:
                    fp = int(alert["fingerprint"], 16)
                    doc = orjson.dumps(alert)
                    out.append(struct.pack("!hiqib", 2, 8, fp - (1 << 64) if fp >= 1 << 63 else fp, len(doc) + 1, 1))
                    out.append(doc)
                    n += 1
            out.append(b"\xff\xff")
            with conn.cursor() as cur, cur.copy(f"COPY {ONE_TABLE} FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(b"".join(out))
            conn.commit()
            busy += time.perf_counter() - t0
            i += per_txn
            requests += per_txn
            alerts += n
        conn.execute(f"DROP TABLE {ONE_TABLE}")
        conn.commit()
    return requests, alerts, alerts, busy


async def run_store(
    url: str, bodies: list[bytes], per_txn: int, seconds: float, merge: str = "auto"
) -> tuple[int, int, int, float]:
    limits = Limits()
    store = PostgresStore(url, pool_min_size=1, pool_max_size=2, merge=merge)
    await store.open()
    requests = alerts = rows = 0
    busy = 0.0
    i = 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if i + per_txn > len(bodies):
                truncate(url)
                i = 0
            t0 = time.perf_counter()
            batches = [decode(b, limits) for b in bodies[i : i + per_txn]]
            result = await store.write(batches)
            busy += time.perf_counter() - t0
            i += per_txn
            requests += per_txn
            alerts += sum(len(b) for b in batches)
            rows += result.events
    finally:
        await store.close()
    return requests, alerts, rows, busy


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url")
    pgtemp.add_arguments(p)
    p.add_argument("--alerts", default="1,10,100", help="alerts per request")
    p.add_argument("--requests-per-txn", default="1,10", help="requests written per transaction")
    p.add_argument("--modes", default="onetable,copy,store", help="onetable, copy, store, store-copy, store-unnest")
    p.add_argument("-d", "--duration", type=float, default=10.0, help="seconds per configuration")
    a = p.parse_args(argv)
    if not a.database_url and not a.postgres_temp:
        p.error("give --database-url postgresql://... or --postgres-temp")
    pg = None
    try:
        if a.postgres_temp:
            pg = pgtemp.start_from_args(a)
            a.database_url = pg.url
            log(f"temporary PostgreSQL at {pg.url}, {a.pg_warm_wal} MB of WAL written before the runs")
        url = a.database_url
        PostgresStore(url).migrate()
        seed_base = int(time.time()) % 100_000 * 1_000_000
        rows_out = []
        for n in [int(x) for x in a.alerts.split(",") if x]:
            bodies = ring(n, seed_base + n * 7)
            for k in [int(x) for x in a.requests_per_txn.split(",") if x]:
                for mode in [m.strip() for m in a.modes.split(",") if m.strip()]:
                    if mode == "copy":
                        req, al, ev, busy = run_copy(url, bodies, k, a.duration)
                    elif mode == "onetable":
                        req, al, ev, busy = run_onetable(url, bodies, k, a.duration)
                    elif mode in ("store", "store-copy", "store-unnest"):
                        merge = {"store": "auto", "store-copy": "copy", "store-unnest": "unnest"}[mode]
                        req, al, ev, busy = asyncio.run(run_store(url, bodies, k, a.duration, merge))
                    else:
                        p.error(f"unknown mode {mode}")
                    row = (mode, n, k, req / busy, al / busy, ev / busy, busy / (req / k) * 1000)
                    rows_out.append(row)
                    log(f"{mode:12} {n:4} alerts x {k:3} per txn: {row[4]:10,.0f} alerts/s")
        print(
            f"\nPostgreSQL alone ({url.split('@')[-1]}), decode + pg_copy + write, one connection, "
            f"{a.duration:g} s each:"
        )
        head = (
            f"{'mode':12} {'alerts/req':>10} {'req/txn':>8} {'req/s':>10} {'alerts/s':>11} {'rows/s':>11} {'ms/txn':>8}"
        )
        print(head)
        print("-" * len(head))
        for mode, n, k, rps, aps, rows_s, ms in rows_out:
            print(f"{mode:12} {n:10} {k:8} {rps:10,.0f} {aps:11,.0f} {rows_s:11,.0f} {ms:8.2f}")
        print(
            "rows/s = alert_events rows (one per alert state; label_sets and alerts rows are written too), "
            "onetable: its one row per alert."
        )
        return 0
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
