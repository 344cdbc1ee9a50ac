"""SQLite flushes written by the Rust core (``SqliteWriter``, rust/core/src/sqlite/) on the SQLite
library Python's sqlite3 already loaded, and through Python's sqlite3 where there is none to share:
both paths leave the same rows, the native one is chosen wherever it can be, and a store falls back
without it."""

from __future__ import annotations

import _sqlite3
import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
import webhookfast._core
from webhookfast._core import Batch, SqliteError, SqliteWriter, decode
from webhookfast.storage import sqlite as sqlite_store
from webhookfast.storage.base import StoreUnavailable, WriteResult
from webhookfast.storage.sqlite import SQLiteStore, sqlite_library

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"
TABLES = ("notification_groups", "label_sets", "alert_events", "alerts")


def _batches() -> list[list[Batch]]:
    """Flushes of every captured payload, each sent twice (the second time as a retry: upserts),
    a Prometheus list with an alert repeated in it, and firing then resolved for one group."""
    bodies = sorted(p for p in PAYLOADS.glob("*.json") if not p.name.endswith(".headers.json"))
    flushes = [[decode(p.read_bytes()) for p in bodies]]
    flushes.append([decode(p.read_bytes()) for p in bodies])
    flushes += [[decode(p.read_bytes())] for p in bodies]
    return flushes


def _rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def _write_all(store: SQLiteStore, flushes: Sequence[Sequence[Batch]]) -> tuple[list[WriteResult], bool]:
    async def run() -> tuple[list[WriteResult], bool]:
        await store.open()
        try:
            native = store._writer is not None
            return [await store.write(f) for f in flushes], native
        finally:
            await store.close()

    return asyncio.run(run())


def _store(tmp_path: Path, name: str, native: bool) -> tuple[SQLiteStore, Path]:
    db = tmp_path / name
    url = f"sqlite:///{db}"
    SQLiteStore(url).migrate()
    return SQLiteStore(url, native_writer=native), db


@pytest.mark.skipif(sqlite_library() is None, reason="this Python's SQLite is not a shared library of its own")
def test_the_native_writer_leaves_the_same_rows_as_pythons_sqlite3(tmp_path: Path) -> None:
    flushes = _batches()
    native_store, native_db = _store(tmp_path, "native.db", True)
    python_store, python_db = _store(tmp_path, "python.db", False)
    native_results, native_used = _write_all(native_store, flushes)
    python_results, python_used = _write_all(python_store, flushes)
    assert native_used and not python_used
    assert native_results == python_results
    native_rows, python_rows = _rows(native_db), _rows(python_db)
    assert all(native_rows[t] for t in TABLES)
    # The same Batch objects went to both: every column, times included, must match.
    assert native_rows == python_rows


def test_without_a_shared_library_the_store_writes_through_pythons_sqlite3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "sqlite_library", lambda: "/nonexistent/libsqlite3.so.0")
    store, db = _store(tmp_path, "fallback.db", True)
    results, native = _write_all(store, _batches()[:1])
    assert not native
    assert results[0].alerts > 0 and _rows(db)["alerts"]


@pytest.mark.skipif(sqlite_library() is None, reason="this Python's SQLite is not a shared library of its own")
def test_the_writer_refuses_a_library_the_process_has_not_loaded_and_a_closed_connection(tmp_path: Path) -> None:
    _, db = _store(tmp_path, "w.db", True)
    module = _sqlite3.__file__
    with pytest.raises(ValueError, match="nonexistent"):
        SqliteWriter("/nonexistent/libsqlite3.so.0", module, str(db), "", ("", "", "", ""))
    library = sqlite_library()
    assert library is not None
    # A module that does not resolve SQLite to that library (here: the extension of this
    # project, which links none) is refused: its SQLite would be another copy.
    with pytest.raises(ValueError, match="does not use"):
        SqliteWriter(library, webhookfast._core.__file__, str(db), "", ("", "", "", ""))
    statements = (
        sqlite_store.INSERT_GROUPS,
        sqlite_store.INSERT_LABEL_SETS,
        sqlite_store.INSERT_EVENTS,
        sqlite_store.UPSERT_ALERTS,
    )
    with pytest.raises(SqliteError) as missing:
        SqliteWriter(library, module, str(tmp_path / "missing.db"), "", statements)
    assert not missing.value.refused
    writer = SqliteWriter(library, module, str(db), "PRAGMA busy_timeout = 100", statements)
    assert writer.library_version == sqlite3.sqlite_version
    assert writer.write(_batches()[0])[2] > 0
    writer.close()
    with pytest.raises(SqliteError, match="closed"):
        writer.write(_batches()[0])


def test_a_closed_store_refuses_writes(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, "c.db", True)
    _write_all(store, [])
    with pytest.raises(StoreUnavailable):
        asyncio.run(store.write(_batches()[0]))


@pytest.mark.parametrize("native", [True, False])
def test_the_setting_reaches_the_store(tmp_path: Path, native: bool) -> None:
    from webhookfast.app import App
    from webhookfast.settings import Settings

    app = App(Settings(database_url=f"sqlite:///{tmp_path}/s.db", sqlite_native_writer=native, spool=False))
    assert isinstance(app.store, SQLiteStore)
    assert app.store.native_writer is native


@pytest.mark.skipif(sqlite_library() is None, reason="this Python's SQLite is not a shared library of its own")
def test_the_stores_writer_gathers_its_wal_writes_and_a_writer_without_full_sync_does_not(tmp_path: Path) -> None:
    store, db = _store(tmp_path, "wal.db", True)

    async def run() -> bool:
        await store.open()
        try:
            assert store._writer is not None
            await store.write(_batches()[0])
            return store._writer.wal_buffered
        finally:
            await store.close()

    assert asyncio.run(run())
    assert _rows(db)["alerts"]
    library = sqlite_library()
    assert library is not None
    statements = (
        sqlite_store.INSERT_GROUPS,
        sqlite_store.INSERT_LABEL_SETS,
        sqlite_store.INSERT_EVENTS,
        sqlite_store.UPSERT_ALERTS,
    )
    # A commit that does not sync the WAL publishes its frames unsynced: nothing may be held then.
    writer = SqliteWriter(library, _sqlite3.__file__, str(db), "PRAGMA synchronous = NORMAL", statements)
    try:
        assert not writer.wal_buffered
        assert writer.write(_batches()[1])[2] > 0
    finally:
        writer.close()
