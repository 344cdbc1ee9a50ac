"""scripts/load/run.py's ``--slow-ms`` report: the requests slower than a bound, counted from
their scheduled start (as oha's corrected percentiles), and the windows of the run that held them."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "load"))

import run  # noqa: E402

# The table oha 1.16 writes with --db-url.
OHA_TABLE = """CREATE TABLE oha (url TEXT NOT NULL, start REAL NOT NULL, start_latency_correction REAL,
    end REAL NOT NULL, duration REAL NOT NULL, status INTEGER NOT NULL, len_bytes INTEGER NOT NULL,
    run INTEGER NOT NULL)"""


def record(path: Path, requests: list[tuple[float, float | None, float]]) -> Path:
    """(sent, scheduled or None, ended), in seconds from the run's start."""
    with sqlite3.connect(path) as conn:
        conn.execute(OHA_TABLE)
        conn.executemany(
            "INSERT INTO oha VALUES ('/webhook', ?, ?, ?, ?, 200, 2, 1)",
            [(sent, scheduled, end, end - sent) for sent, scheduled, end in requests],
        )
    conn.close()
    return path


def test_slow_requests_are_counted_from_their_scheduled_start_by_window(tmp_path: Path) -> None:
    fast = [(i * 0.01, i * 0.01, i * 0.01 + 0.001) for i in range(200)]
    # Sent on time but answered 8 ms later: slow.
    stall = [(0.305 + i * 0.001, 0.305 + i * 0.001, 0.313 + i * 0.001) for i in range(5)]
    # Answered 2 ms after it was sent, but sent 5 ms after its scheduled start: slow too.
    late = [(1.25, 1.245, 1.252)]
    # Without a scheduled start (no latency correction): from when it was sent.
    uncorrected = [(1.5, None, 1.502)]
    path = record(tmp_path / "oha.db", fast + stall + late + uncorrected)
    assert run.slow_windows(path, 5.0) == (
        "6 of 207 requests over 5 ms; 6 of them in 2 windows of 100 ms (0.3 s: 5, 1.2 s: 1)"
    )
    assert run.slow_windows(path, 10.0) == "0 of 207 requests over 10 ms"


def test_only_the_windows_holding_most_slow_requests_are_named(tmp_path: Path) -> None:
    slow = [(w * 0.1 + 0.01 * i, w * 0.1 + 0.01 * i, w * 0.1 + 0.01 * i + 0.02) for w in range(8) for i in range(w + 1)]
    path = record(tmp_path / "oha.db", slow)
    assert run.slow_windows(path, 5.0, most=2) == (
        "36 of 36 requests over 5 ms; 15 of them in 2 windows of 100 ms (0.6 s: 7, 0.7 s: 8)"
    )
