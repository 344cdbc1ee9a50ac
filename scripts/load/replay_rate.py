"""How fast the spool's replayer drains into PostgreSQL (docs/performance.md, "The spool").

A spool of ``--requests`` distinct Alertmanager bodies of ``--alerts`` alerts each (benches/payloads.py,
the bodies of run.py) is written with the Rust spool writer, as a database outage would have left
it; then ``webhookfast serve`` starts on a throw-away PostgreSQL (fsync on) and the time from its
start to an empty spool is measured, from its own metrics.

    python scripts/load/replay_rate.py --requests 2000 --alerts 100
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from webhookfast._core import SpoolWriter

ROOT = Path(__file__).resolve().parents[2]
LOAD_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(LOAD_DIR))

# benches/ and scripts/load/ are on sys.path only from here.
import payloads  # noqa: E402
from pgtemp import TempPostgres, free_port  # noqa: E402


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    a = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="webhookfast-replay-"))
    pg = TempPostgres().start()
    proc = None
    try:
        now_us = int(time.time() * 1e6)
        records = [(now_us + i, payloads.body(a.alerts, 7_000_000 + i * 10_007)) for i in range(a.requests)]
        total_bytes = sum(len(b) for _, b in records)
        writer = SpoolWriter(tmp / "spool" / "worker-0", 8 * 1024 * 1024)
        for i in range(0, len(records), 100):
            writer.append(records[i : i + 100])
        del writer
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKFAST_")}
        env["WEBHOOKFAST_SPOOL_DIR"] = str(tmp / "spool")
        subprocess.run(
            [sys.executable, "-m", "webhookfast", "migrate", "--database-url", pg.url],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = free_port()
        started = time.monotonic()
        with open(tmp / "server.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "webhookfast",
                    "serve",
                    "--port",
                    str(port),
                    "--database-url",
                    pg.url,
                    "--no-access-log",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        expected = a.requests * a.alerts
        replayed = 0.0
        while time.monotonic() - started < a.timeout:
            time.sleep(0.2)
            try:
                replayed = metric(port, "webhookfast_spool_replayed_alerts_total")
            except OSError:
                continue
            if replayed >= expected:
                break
        elapsed = time.monotonic() - started
        if replayed < expected:
            print(f"replayed {replayed:.0f} of {expected} alerts in {elapsed:.1f} s: timed out", file=sys.stderr)
            return 1
        print(
            f"replayed {a.requests} requests, {expected} alerts ({total_bytes / 2**20:.1f} MiB of bodies) "
            f"in {elapsed:.2f} s from the server's start: {expected / elapsed:,.0f} alerts/s, "
            f"{a.requests / elapsed:,.0f} requests/s"
        )
        return 0
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        pg.stop()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    sys.exit(main())
