#!/usr/bin/env python3
"""How long this disk takes to make a small write durable, measured with nothing else to blame:
a 4 KiB write + ``fdatasync`` every 10 ms for a bounded time, in a file of its own that is removed
afterwards.

    python scripts/load/fsync_probe.py                 # 60 s in the system's temp directory
    python scripts/load/fsync_probe.py --dir /var/lib/webhookfast -d 30

Every commit of a server that acknowledges after commit waits for such a sync (SQLite's WAL,
PostgreSQL's WAL), so the disk's stalls show in that server's latency tail on the same disk as
often as they come. On this project's machine the probe's maximum ranged from 4.3 ms to 467 ms
between days (docs/performance.md). ``run.py`` runs it before its fixed-rate scenarios and prints it with the
table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BLOCK = 4096


@dataclass
class ProbeResult:
    syncs: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    over_10ms: int  # syncs that took longer than 10 ms

    def summary(self) -> str:
        return (
            f"{self.syncs} syncs: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, p99.9 {self.p999_ms:.2f} ms, "
            f"max {self.max_ms:.2f} ms, {self.over_10ms} over 10 ms"
        )


def probe(directory: Path, seconds: float, interval_s: float = 0.01) -> ProbeResult:
    """Write and ``fdatasync`` one 4 KiB block every ``interval_s`` for ``seconds`` (at least one
    sync) in a new file in ``directory``, removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="fsync-probe-", dir=directory)
    took: list[float] = []
    try:
        block = os.urandom(BLOCK)
        end = time.monotonic() + seconds
        while True:
            started = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            took.append(time.perf_counter() - started)
            if time.monotonic() >= end:
                break
            time.sleep(interval_s)
    finally:
        os.close(fd)
        os.unlink(name)
    took.sort()
    n = len(took)

    def ms(q: float) -> float:
        return took[min(n - 1, int(n * q))] * 1000

    return ProbeResult(n, ms(0.5), ms(0.99), ms(0.999), took[-1] * 1000, sum(1 for t in took if t > 0.010))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where to write (the disk to probe)")
    p.add_argument("-d", "--duration", type=float, default=60.0, help="seconds (at most 3600)")
    a = p.parse_args(argv)
    if not 0 < a.duration <= 3600:
        p.error("--duration must be in (0, 3600]")
    print(f"fdatasync of {BLOCK} B every 10 ms in {a.dir}: {probe(a.dir, a.duration).summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
