#!/usr/bin/env python3
"""Latency of the history API, one request at a time, on a database filled by gen_history.py.

    python scripts/gen_history.py --url "$URL" --rows 1000000
    python scripts/bench_api.py --url "$URL" [--requests 200] [--explain]
    python scripts/bench_api.py --temp-postgres --rows 1000000     # throwaway cluster, gen, bench

Each case calls the handler in-process (parameters → SQL → JSON bytes, as served; no HTTP) through
the same read path the server uses, ``--requests`` times after a warm-up, and the table gives
p50/p90/p99/max in milliseconds. Cases draw their fingerprints and cursors from the data, so that
they hit hot and cold alerts and deep pages, not one cached row. ``--explain`` prints the plan of
each SQL query (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "tests"))

from webhookfast.history import HistoryApi  # noqa: E402
from webhookfast.history import sql as q  # noqa: E402
from webhookfast.history.params import ListParams, StatsParams, parse_params  # noqa: E402
from webhookfast.http import Context  # noqa: E402
from webhookfast.storage import open_store  # noqa: E402


class Scope:
    def __init__(self, path: str, query: str) -> None:
        self.method, self.path, self.query_string = "GET", path, query
        self.headers: dict[str, str] = {}
        self.client = "127.0.0.1:1"


async def call(api: HistoryApi, path: str, query: dict[str, Any]) -> tuple[int, bytes]:
    routes = {p: h["GET"] for _, p, h in api.routes()}
    handler = routes.get(path) or api.match(path).handlers["GET"]  # type: ignore[union-attr]
    resp = await handler(Context(Scope(path, urlencode(query)), None, None, 0.0))
    return resp.status, resp.body


async def sample_data(api: HistoryApi) -> dict[str, Any]:
    """Fingerprints (the busiest and random ones) and a deep cursor, read through the API."""
    body = orjson.loads((await call(api, "/api/v1/stats", {"top": 5}))[1])
    hot = [t["fingerprint"] for t in body["top_firing"]]
    page = orjson.loads((await call(api, "/api/v1/alerts", {"limit": 1000}))[1])
    fps = list({a["fingerprint"] for a in page["alerts"]})
    cursor = page["next_cursor"]
    for _ in range(20):  # 21,000 rows deep
        nxt = orjson.loads((await call(api, "/api/v1/alerts", {"limit": 1000, "cursor": cursor}))[1])
        if nxt["next_cursor"] is None:
            break
        cursor = nxt["next_cursor"]
    some = orjson.loads((await call(api, "/api/v1/alerts", {"limit": 1}))[1])["alerts"][0]["labels"]
    return {"hot": hot, "fps": fps, "deep_cursor": cursor, "job": some.get("job", ""), "team": some.get("team", "")}


def cases(s: dict[str, Any]) -> list[tuple[str, Any]]:
    rnd = random.Random(7)
    return [
        ("alerts: newest 100", lambda: ("/api/v1/alerts", {})),
        ("alerts: status=firing", lambda: ("/api/v1/alerts", {"status": "firing"})),
        ("alerts: since=2h", lambda: ("/api/v1/alerts", {"since": "2h"})),
        ("alerts: since=7d until=6d", lambda: ("/api/v1/alerts", {"since": "7d", "until": "6d"})),
        ("alerts: sort=last_seen", lambda: ("/api/v1/alerts", {"sort": "last_seen"})),
        ("alerts: limit=1000", lambda: ("/api/v1/alerts", {"limit": 1000})),
        ("alerts: page 22 (cursor)", lambda: ("/api/v1/alerts", {"cursor": s["deep_cursor"]})),
        (
            "alerts: match severity+team",
            lambda: ("/api/v1/alerts", {"match": f'{{severity="critical",team="{s["team"]}"}}'}),
        ),
        (
            "alerts: match regex job+!~",
            lambda: ("/api/v1/alerts", {"match": f'{{job=~"{s["job"]}|db.*",alertname!~"Watchdog|High.*"}}'}),
        ),
        ("alerts: match rare alertname", lambda: ("/api/v1/alerts", {"match": '{alertname="BackupFailed"}'})),
        ("alerts: fingerprint", lambda: ("/api/v1/alerts", {"fingerprint": rnd.choice(s["fps"])})),
        ("alerts: q (since=1h)", lambda: ("/api/v1/alerts", {"q": "disk", "since": "1h"})),
        ("alert: random fingerprint", lambda: ("/api/v1/alerts/" + rnd.choice(s["fps"]), {})),
        ("alert: busiest fingerprint", lambda: ("/api/v1/alerts/" + s["hot"][0], {})),
        ("stats: default (24h)", lambda: ("/api/v1/stats", {})),
        ("stats: 1h, flap>=2", lambda: ("/api/v1/stats", {"since": "1h", "flap_min_changes": 2})),
        ("stats: 24h, match", lambda: ("/api/v1/stats", {"match": '{severity="critical"}'})),
    ]


def percentile(sorted_times: list[float], p: float) -> float:
    """The p-quantile (0 ≤ p ≤ 1) of already sorted times: the one at index ⌊p·n⌋, or the last."""
    return sorted_times[min(len(sorted_times) - 1, int(p * len(sorted_times)))]


async def bench(url: str, requests: int, explain: bool, pool_size: int, only: str | None = None) -> None:
    store = open_store(url)
    api = HistoryApi(store, pg_pool_size=pool_size)
    try:
        s = await sample_data(api)
        rows = []
        for name, make in cases(s):
            if only is not None and only not in name:
                continue
            for _ in range(min(20, requests)):  # warm-up (caches, prepared statements)
                path, query = make()
                status, body = await call(api, path, query)
                assert status == 200, (name, body[:300])
            times = []
            for _ in range(requests):
                path, query = make()
                t = time.perf_counter()
                status, body = await call(api, path, query)
                times.append((time.perf_counter() - t) * 1000)
                assert status == 200, (name, body[:300])
            times.sort()
            rows.append(
                (name, statistics.median(times), percentile(times, 0.90), percentile(times, 0.99), times[-1], len(body))
            )
        kind = "PostgreSQL" if store.dialect == "postgresql" else "SQLite"
        print(f"\n{kind}, {requests} requests per case, one at a time (ms)\n")
        print(f"| {'case':<30} | {'p50':>6} | {'p90':>6} | {'p99':>6} | {'max':>6} | {'bytes':>7} |")
        print(f"|{'-' * 32}|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 9}:|".replace("-:", "-:"))
        for name, p50, p90, p99, mx, size in rows:
            print(f"| {name:<30} | {p50:6.2f} | {p90:6.2f} | {p99:6.2f} | {mx:6.2f} | {size:7d} |")
        worst = max(r[3] for r in rows)
        print(f"\nworst p99: {worst:.2f} ms")
        if explain:
            await print_plans(api, s)
    finally:
        await api.close()
        await store.close()


async def print_plans(api: HistoryApi, s: dict[str, Any]) -> None:
    d = api.d
    now = api.clock()
    lp = lambda **kw: parse_params(ListParams, urlencode(kw), now)  # noqa: E731
    sp = parse_params(StatsParams, "", now)
    fp = int(s["hot"][0], 16)
    fp = fp - (1 << 64) if fp >= 1 << 63 else fp
    since, until = now - 24 * 3600 * 10**6, now
    queries = [
        ("alerts: newest 100", q.list_alerts(d, lp(), None)),
        ("alerts: page 22 (cursor)", q.list_alerts(d, lp(), _cursor_key(s["deep_cursor"]))),
        ("alerts: sort=last_seen", q.list_alerts(d, lp(sort="last_seen"), None)),
        ("alerts: status=firing", q.list_alerts(d, lp(status="firing"), None)),
        (
            "alerts: match severity+team",
            q.list_alerts(d, lp(match=f'{{severity="critical",team="{s["team"]}"}}'), None),
        ),
        ("alert: episodes", q.episodes(d, fp, None, 100)),
        ("alert: events", q.episode_events(d, fp, None, 100)),
        ("stats: firing by severity", q.firing_by_severity(d, sp, now)),
    ]
    if d.pg:  # the window as arrays, aggregated by _core.window_stats
        queries += [
            ("stats: resolved instances (arrays)", q.resolved_arrays(d, sp, since, until)),
            ("stats: started instances (array)", q.started_array(d, sp, since, until)),
            ("stats: labels and deliveries of the listed", q.window_details(d, [fp], since, until)),
        ]
    else:
        queries += [
            ("stats: top firing", q.top_firing(d, sp, since, until)),
            ("stats: flapping", q.flapping(d, sp, since, until)),
            ("stats: time to resolve", q.time_to_resolve(d, sp, since, until)),
        ]
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) " if d.pg else "EXPLAIN QUERY PLAN "
    for name, (sql, params) in queries:
        (rows,) = await api.reader.many([(prefix + sql, params)])
        print(f"\n### {name}\n")
        print("```")
        for row in rows:
            print(row[0] if d.pg else f"{'  ' * 0}{row[1]:>3} {row[3]}")
        print("```")


def _cursor_key(cursor: str) -> list[int]:
    from webhookfast.history.params import decode_cursor

    return decode_cursor(cursor, "alerts:starts_at:desc", 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="database filled by gen_history.py")
    ap.add_argument("--temp-postgres", action="store_true", help="make a throwaway cluster, fill it, bench, remove it")
    ap.add_argument("--rows", type=int, default=1_000_000, help="with --temp-postgres: history rows to generate")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--pool-size", type=int, default=2)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--only", metavar="TEXT", help="run only the cases whose name contains TEXT")
    a = ap.parse_args()
    if a.temp_postgres:
        from support.postgres import PostgresServer, database_url, find_pg_bin

        bindir = find_pg_bin()
        if bindir is None:
            ap.error("no initdb/pg_ctl found")
        server = PostgresServer.create(bindir)
        try:
            import psycopg

            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE history")
            url = database_url(server.url, "history")
            import gen_history  # type: ignore[import-not-found]

            gen_history.main(["--url", url, "--rows", str(a.rows)])
            # Write the bulk load out now: otherwise its checkpoint (a gigabyte of WAL) lands in
            # the middle of the measurement and times the disk instead of the queries.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            asyncio.run(bench(url, a.requests, a.explain, a.pool_size, a.only))
        finally:
            server.destroy()
        return 0
    if not a.url:
        ap.error("--url or --temp-postgres")
    asyncio.run(bench(a.url, a.requests, a.explain, a.pool_size, a.only))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "scripts"))
    raise SystemExit(main())
