"""Reading a server's SQLite file from a test: read-only, so a running server is never disturbed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
