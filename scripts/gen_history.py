#!/usr/bin/env python3
"""Fill an (empty, migrated) webhookfast database with realistic synthetic alert history.

    python scripts/gen_history.py --url postgresql://.../db [--rows 1000000] [--label-sets 10000]
    python scripts/gen_history.py --url sqlite:////tmp/history.db

``--rows`` counts history rows (alert_events: one per firing and one per resolved state change);
the alerts table gets one row per instance (about rows/2) and label_sets one per fingerprint.
Fingerprints are the real Prometheus ones (webhookfast._core). Writes go straight to the database:
COPY on PostgreSQL (monthly partitions of alert_events created for the covered months, VACUUM
ANALYZE afterwards), executemany in one transaction on SQLite (then ANALYZE). Bounded: at most
``--max-rows`` (20,000,000) rows; same ``--seed`` and ``--now`` give the same data.

Shape: alertnames, severities, jobs and teams with skewed popularity; each label set has its own
rate of instances (a few flap a lot); instances of one label set never overlap; durations are
log-normal (median ~10 min, long tail); instances still open at ``--now`` are firing.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from webhookfast._core import fingerprint, fingerprint_to_int

US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

ALERTNAMES = [
    "HighCPU",
    "HighMemory",
    "DiskFull",
    "DiskWillFillIn4h",
    "InstanceDown",
    "HighLatency",
    "HighErrorRate",
    "PodCrashLooping",
    "PodNotReady",
    "NodeNotReady",
    "CertExpiring",
    "TargetDown",
    "KubeJobFailed",
    "KubeHpaMaxedOut",
    "PostgresReplicationLag",
    "PostgresTooManyConnections",
    "RedisDown",
    "KafkaConsumerLag",
    "NetworkReceiveErrors",
    "ClockSkew",
    "OOMKilled",
    "ThrottlingHigh",
    "APIServerErrors",
    "EtcdNoLeader",
    "Watchdog",
    "BlackboxProbeFailed",
    "SSLCertInvalid",
    "QueueBacklog",
    "SlowQueries",
    "ReplicaMismatch",
    "VolumeFillingUp",
    "NTPDrift",
    "HighLoad",
    "SwapUsage",
    "FDExhaustion",
    "GCPause",
    "ThreadPoolSaturated",
    "DeadLetterQueue",
    "BackupFailed",
    "ConfigReloadFailed",
]
SEVERITIES = ["critical"] * 2 + ["warning"] * 5 + ["info"] * 3
JOBS = [
    f"{n}"
    for n in (
        "api",
        "api-gateway",
        "web",
        "worker",
        "db",
        "cache",
        "queue",
        "node",
        "kube",
        "ingress",
        "billing",
        "auth",
        "search",
        "payments",
        "etl",
        "ml",
        "mail",
        "cdn",
        "dns",
        "vault",
    )
]
TEAMS = ["sre", "dba", "platform", "payments", "search", "web", "data", "security"]
ENVS = ["prod"] * 3 + ["staging"]


def us_to_pg(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def copy_text(s: str) -> str:
    """A value for PostgreSQL COPY text format (our JSON has no raw tab/newline)."""
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def generate(rows: int, n_sets: int, days: float, now_us: int, seed: int):
    """(label_sets, events, alerts) as SQLite-shaped tuples (times in µs, JSON as text)."""
    rng = random.Random(seed)
    span = int(days * 86400 * US)
    t0 = now_us - span
    label_sets = []
    seen = set()
    while len(label_sets) < n_sets:
        name = (
            ALERTNAMES[min(int(rng.paretovariate(1.2)) - 1, len(ALERTNAMES) - 1)]
            if rng.random() < 0.5
            else rng.choice(ALERTNAMES)
        )
        job = rng.choice(JOBS)
        labels = {
            "alertname": name,
            "severity": rng.choice(SEVERITIES),
            "job": job,
            "instance": f"{job}-{rng.randrange(n_sets):05d}:9100",
            "team": rng.choice(TEAMS),
            "env": rng.choice(ENVS),
        }
        fp_hex = fingerprint(labels)
        if fp_hex in seen:
            continue
        seen.add(fp_hex)
        fp = fingerprint_to_int(fp_hex)
        label_sets.append((fp, orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode(), name, labels["severity"]))
    # Instances per label set: heavy-tailed weights (a few label sets flap a lot).
    weights = [rng.paretovariate(1.1) for _ in label_sets]
    total_w = sum(weights)
    target_instances = rows * 2 // 3 + 1  # some are skipped (overlaps): aim high, stop at rows
    events, alerts = [], []
    n_events = 0
    for (fp, labels_json, name, _severity), w in zip(label_sets, weights, strict=True):
        if n_events >= rows:
            break
        k = max(1, min(round(target_instances * w / total_w), span // (120 * US)))
        starts = sorted(rng.randrange(t0, now_us) for _ in range(k))
        labels = orjson.loads(labels_json)
        receiver = f"team-{labels['team']}"
        group_key = f'{{}}:{{alertname="{name}"}}'
        url = f"http://prometheus.example:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{name}%22%7D"
        annotations = orjson.dumps(
            {"description": f"{name} on {labels['instance']} ({labels['job']})", "summary": f"{name} is firing"},
            option=orjson.OPT_SORT_KEYS,
        ).decode()
        prev_end = -1
        for i, s in enumerate(starts):
            if s <= prev_end:
                continue
            dur = int(min(rng.lognormvariate(math.log(600), 1.3), 7 * 86400) * US)
            nxt = starts[i + 1] if i + 1 < len(starts) else None
            if nxt is not None and s + dur >= nxt:
                dur = max(US, (nxt - s) // 2)
            end = s + dur
            resolved = end < now_us
            first_seen = s + rng.randrange(10 * US, 40 * US)
            ev_firing = (fp, s, "firing", None, first_seen, receiver, group_key, "alertmanager", url, annotations)
            if resolved:
                last_seen = min(now_us, end + rng.randrange(10 * US, 40 * US))
                notifications = 2 + dur // (4 * 3600 * US)
                events.append(ev_firing)
                events.append(
                    (fp, s, "resolved", end, last_seen, receiver, group_key, "alertmanager", url, annotations)
                )
                alerts.append((fp, s, "resolved", end, min(first_seen, last_seen), last_seen, notifications, receiver))
                n_events += 2
                prev_end = end
            else:
                last_seen = max(first_seen, now_us - rng.randrange(0, 4 * 3600 * US))
                notifications = 1 + (now_us - s) // (4 * 3600 * US)
                events.append(ev_firing)
                alerts.append((fp, s, "firing", None, min(first_seen, last_seen), last_seen, notifications, receiver))
                n_events += 1
                prev_end = now_us
            if n_events >= rows:
                break
    # Physical order as a live receiver writes it: by time, not grouped by label set.
    events.sort(key=lambda e: e[4])
    alerts.sort(key=lambda a: a[4])
    used = {a[0] for a in alerts}
    return [ls for ls in label_sets if ls[0] in used], events, alerts


def load_sqlite(url: str, label_sets, events, alerts) -> None:
    from webhookfast.storage.sqlite import SQLiteStore, connect, path_from_url

    SQLiteStore(url).migrate()
    conn = connect(path_from_url(url))
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO label_sets VALUES (?, ?, ?, ?)", label_sets)
    # The rows carry their receiver and group key inline, as rows written before migration 0006
    # do (group_id NULL): the history API reads both layouts.
    conn.executemany(
        "INSERT INTO alert_events (fingerprint, starts_at, status, ends_at, received_at, receiver, group_key, "
        "source, generator_url, annotations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    conn.executemany(
        "INSERT INTO alerts (fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, "
        "receiver) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        alerts,
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def load_postgres(url: str, label_sets, events, alerts) -> None:
    import psycopg
    from webhookfast.storage.postgres import PostgresStore

    PostgresStore(url).migrate()
    lo_us, hi_us = min(e[1] for e in events), max(e[1] for e in events)
    first = EPOCH + timedelta(microseconds=lo_us)
    last = EPOCH + timedelta(microseconds=hi_us)
    with psycopg.connect(url, autocommit=True) as conn:
        y, m = first.year, first.month
        while (y, m) <= (last.year, last.month):
            lo = datetime(y, m, 1, tzinfo=timezone.utc)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
            hi = datetime(y, m, 1, tzinfo=timezone.utc)
            part = f"alert_events_{lo.year:04d}m{lo.month:02d}"
            if conn.execute("SELECT to_regclass(%s)", (part,)).fetchone()[0] is None:
                conn.execute(
                    f"CREATE TABLE {part} PARTITION OF alert_events "
                    f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
                )
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY label_sets (fingerprint, labels, alertname, severity) FROM STDIN") as cp:
                cp.write(
                    "".join(f"{fp}\t{copy_text(lj)}\t{copy_text(n)}\t{copy_text(s)}\n" for fp, lj, n, s in label_sets)
                )
            with cur.copy(
                "COPY alert_events (fingerprint, starts_at, status, ends_at, received_at, receiver, group_key, source, "
                "generator_url, annotations) FROM STDIN"
            ) as cp:
                buf = []
                for fp, s, st, e, r, rc, gk, src, u, an in events:
                    buf.append(
                        f"{fp}\t{us_to_pg(s)}\t{st}\t{us_to_pg(e) if e is not None else chr(92) + 'N'}\t{us_to_pg(r)}\t"
                        f"{copy_text(rc)}\t{copy_text(gk)}\t{src}\t{copy_text(u)}\t{copy_text(an)}\n"
                    )
                    if len(buf) >= 10000:
                        cp.write("".join(buf))
                        buf.clear()
                cp.write("".join(buf))
            with cur.copy(
                "COPY alerts (fingerprint, starts_at, status, ends_at, first_seen, last_seen, notifications, receiver) FROM STDIN"
            ) as cp:
                buf = []
                for fp, s, st, e, f, ls, n, rc in alerts:
                    buf.append(
                        f"{fp}\t{us_to_pg(s)}\t{st}\t{us_to_pg(e) if e is not None else chr(92) + 'N'}\t{us_to_pg(f)}\t"
                        f"{us_to_pg(ls)}\t{n}\t{copy_text(rc)}\n"
                    )
                    if len(buf) >= 10000:
                        cp.write("".join(buf))
                        buf.clear()
                cp.write("".join(buf))
        conn.execute("VACUUM ANALYZE label_sets")
        conn.execute("VACUUM ANALYZE alerts")
        conn.execute("VACUUM ANALYZE alert_events")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="sqlite:///path.db or postgresql://… (empty or migrated)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="alert_events rows (history)")
    ap.add_argument("--label-sets", type=int, default=10_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--now", default=None, help="RFC 3339 end of the history (default: now)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-rows", type=int, default=20_000_000)
    a = ap.parse_args(argv)
    if not 1 <= a.rows <= a.max_rows or not 1 <= a.label_sets <= min(a.rows, 1_000_000):
        ap.error(f"--rows must be 1..{a.max_rows} and --label-sets 1..min(rows, 1000000)")
    now = datetime.fromisoformat(a.now.replace("Z", "+00:00")) if a.now else datetime.now(timezone.utc)
    now_us = (now - EPOCH) // timedelta(microseconds=1)
    t = time.perf_counter()
    label_sets, events, alerts = generate(a.rows, a.label_sets, a.days, now_us, a.seed)
    print(
        f"generated {len(label_sets)} label sets, {len(events)} events, {len(alerts)} alerts "
        f"in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    t = time.perf_counter()
    if a.url.startswith("sqlite:"):
        load_sqlite(a.url, label_sets, events, alerts)
    elif a.url.startswith(("postgresql:", "postgres:")):
        load_postgres(a.url, label_sets, events, alerts)
    else:
        ap.error("unsupported URL")
    print(f"loaded in {time.perf_counter() - t:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
