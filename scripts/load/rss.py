#!/usr/bin/env python3
"""Worker memory after an alert storm: the RSS of the webhookfast worker after it has stored
``--total`` distinct alerts (every alert a new label set), sent as ``--alerts``-alert Alertmanager
bodies by ``-c`` concurrent keep-alive clients, sampled every 10 % of the way.

    python scripts/load/rss.py                         # SQLite in a temp dir, 1,000,000 alerts
    python scripts/load/rss.py --postgres-temp         # a throw-away PostgreSQL cluster (fsync on)
    python scripts/load/rss.py --database-url postgresql://... --total 200000

Bodies are generated while sending (benches/payloads.py, a distinct seed per body), so no ring of
pre-made bodies repeats and none has to fit in memory. Every answer must be 200; the run stops at
the first other answer or after ``--timeout`` seconds. Prints one line per sample (alerts stored,
worker RSS in MB) and the ratio to the target of 80 MB.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import payloads
from run import Server, free_port, log

TARGET_MB = 80.0


def largest_mappings(pid: int, top: int = 8) -> list[tuple[str, int]]:
    """RSS in kB by mapped file (anonymous memory as [anon], [heap], ...), largest first."""
    sizes: dict[str, int] = {}
    name = "?"
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else "[anon]"
            elif first == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(line.split()[1])
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url")
    p.add_argument("--postgres-temp", action="store_true")
    p.add_argument("--total", type=int, default=1_000_000, help="alerts to send (default 1,000,000)")
    p.add_argument("--alerts", type=int, default=100, help="alerts per request (default 100)")
    p.add_argument("-c", "--connections", type=int, default=8)
    p.add_argument("--timeout", type=float, default=1200.0, help="give up after this many seconds")
    p.add_argument("--smaps", action="store_true", help="also print the worker's largest mappings at the end")
    a = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="webhookfast-rss-"))
    pg = None
    server = None
    try:
        if a.postgres_temp:
            from pgtemp import TempPostgres

            pg = TempPostgres().start()
            a.database_url = pg.url
        url = a.database_url or f"sqlite:///{tmp / 'webhookfast.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKFAST_")}
        env["WEBHOOKFAST_SPOOL_DIR"] = str(tmp / "spool")
        port = free_port()
        server = Server(
            "webhookfast",
            [sys.executable, "-m", "webhookfast", "serve", "--port", str(port), "--database-url", url],
            port,
            "/healthz",
            tmp / "webhookfast.log",
            env,
        )
        server.start()
        requests = a.total // a.alerts
        seed_base = int(time.time()) % 100_000 * 1_000_000
        lock = threading.Lock()
        state = {"next": 0, "done": 0, "error": ""}
        deadline = time.monotonic() + a.timeout
        samples: list[tuple[int, float]] = [(0, server.worker_rss_mb())]
        step = max(1, requests // 10)

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while True:
                with lock:
                    k = state["next"]
                    if k >= requests or state["error"] or time.monotonic() > deadline:
                        break
                    state["next"] = k + 1
                body = payloads.body(a.alerts, seed_base + k * 10_007)
                conn.request("POST", "/webhook", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = response.read()
                with lock:
                    if response.status != 200:
                        state["error"] = f"{response.status}: {answer[:200]!r}"
                        break
                    state["done"] += 1
                    if state["done"] % step == 0:
                        samples.append((state["done"] * a.alerts, server.worker_rss_mb()))
            conn.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(a.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        if state["error"]:
            log(f"stopped at an answer other than 200: {state['error']}")
            return 1
        if state["done"] < requests:
            log(f"timed out after {state['done'] * a.alerts:,} alerts")
            return 1
        store = "postgresql" if url.startswith("postgres") else "sqlite"
        print(f"worker RSS, {store}, {a.alerts}-alert bodies, {a.connections} clients, {elapsed:.0f} s:")
        for alerts, mb in samples:
            print(f"  after {alerts:>9,} alerts: {mb:6.1f} MB")
        if a.smaps:
            print("largest mappings of the worker (RSS, /proc/PID/smaps):")
            for name, kb in largest_mappings(server.worker_pid()):
                print(f"  {kb / 1024:7.1f} MB  {name}")
        final = samples[-1][1]
        verdict = "meets" if final <= TARGET_MB else "misses"
        print(f"after {samples[-1][0]:,} alerts: {final:.1f} MB ({verdict} the target of <= {TARGET_MB:.0f} MB)")
        return 0
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
