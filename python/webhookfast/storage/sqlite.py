"""The embedded default store: one SQLite file in WAL mode.

Every flush is one transaction committed with ``synchronous=FULL``, so an acknowledged alert is on
disk. The Rust core encodes the rows (duplicates already collapsed, sorted by key) and, where it
can share Python's own SQLite library (``SqliteWriter``), inserts them itself on the store's thread
with the GIL released; elsewhere they go through Python's sqlite3 as tuples.
"""

from __future__ import annotations

import _sqlite3
import asyncio
import contextlib
import ctypes
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from webhookfast._core import Batch, RowEncoder, SqliteError, SqliteWriter
from webhookfast.storage import migrations, rows
from webhookfast.storage.base import Store, StoreRejected, StoreUnavailable, WriteResult, job_runs_missing
from webhookfast.storage.upsert import GROUP_LAST_USED_SLACK_S, SQLITE_ALERTS_CONFLICT
from webhookfast.storage.worker_thread import WorkerThread

log = logging.getLogger("webhookfast.storage.sqlite")

SLACK_US = GROUP_LAST_USED_SLACK_S * 1_000_000
# A group's last_used only moves forward, by more than the slack (storage/upsert.py).
INSERT_GROUPS = f"""INSERT INTO notification_groups ({rows.names(rows.GROUP_COLUMNS)})
VALUES ({rows.placeholders(rows.GROUP_COLUMNS)})
ON CONFLICT (id) DO UPDATE SET last_used = excluded.last_used
WHERE notification_groups.last_used < excluded.last_used - {SLACK_US}"""
INSERT_LABEL_SETS = (
    f"INSERT INTO label_sets ({rows.names(rows.LABEL_SET_COLUMNS)}) "
    f"VALUES ({rows.placeholders(rows.LABEL_SET_COLUMNS)}) ON CONFLICT DO NOTHING"
)
# SQLite's tables keep their legacy receiver/group_key columns NOT NULL without a default (a
# column's default cannot be changed there): the rows fill them with ''.
INSERT_EVENTS = (
    f"INSERT INTO alert_events ({rows.names(rows.EVENT_COLUMNS)}, receiver, group_key) "
    f"VALUES ({rows.placeholders(rows.EVENT_COLUMNS)}, '', '') ON CONFLICT DO NOTHING"
)
UPSERT_ALERTS = (
    f"INSERT INTO alerts AS a ({rows.names(rows.ALERT_COLUMNS)}, receiver) "
    f"VALUES ({rows.placeholders(rows.ALERT_COLUMNS)}, '')\n{SQLITE_ALERTS_CONFLICT}"
)
# Retention deletes rows by starts_at; a group last used a slack before the cutoff has no row left.
DELETE_UNUSED_GROUPS = f"DELETE FROM notification_groups WHERE last_used < ? - {SLACK_US}"


# The WAL in pages (4 KiB) past which the checkpointer completes a checkpoint between two flushes
# (Checkpointer), and past which a commit would run one itself (connect()). That pass holds the
# flushes back for about 12 ms (measured at 2,000 1-alert requests/s, when the WAL grows by 12,000
# pages a second): every 16,000 pages (64 MiB) is rare enough for the p99 (32,000 was worse:
# every page the writer reads is looked up in a longer WAL index).
WAL_RESTART_PAGES = 16_000
WAL_SAFETY_PAGES = 50_000

URL_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"


def path_from_url(url: str) -> str:
    """``sqlite:///./x.db`` → ``./x.db``; ``sqlite:////abs/x.db`` → ``/abs/x.db``. A URL of another
    shape, or a file whose directory does not exist, is a ValueError (a typo must not silently
    create a folder and a fresh, empty history there)."""
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
    if not path or "?" in path or "#" in path or path == ":memory:":
        raise ValueError(f"bad SQLite URL {url!r}: use {URL_FORMS}")
    parent = Path(path).parent
    if not parent.is_dir():
        raise ValueError(f"bad SQLite URL {url!r}: directory {str(parent)!r} does not exist")
    return path


# How long a statement waits for another connection's lock (the writer's, a reader's checkpoint).
BUSY_TIMEOUT_MS = 5000


WRITER_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA cache_size = -8192",
    "PRAGMA foreign_keys = OFF",
    # The WAL is copied back into the database by the store's checkpointer thread (Checkpointer),
    # not by the commit that happens to pass 1,000 pages: that stalled the write path. A commit
    # still runs one past WAL_SAFETY_PAGES, should the checkpointer stop or never complete a pass
    # (another worker process keeps writing while this one's flushes wait).
    f"PRAGMA wal_autocheckpoint = {WAL_SAFETY_PAGES}",
)


def connect(path: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS, *, reader: bool = False) -> sqlite3.Connection:
    """A connection as webhookfast uses them: the writer's (WAL, fsync on every commit, an 8 MiB
    page cache: 64 MiB took the worker from 111 to 171 MB after a million alerts, for about 20 %
    more 100-alert requests per second) or, with ``reader``, a history reader's (read-only, a 16 MiB cache each)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if reader:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA cache_size = -16384")
        return conn
    for pragma in WRITER_PRAGMAS:
        conn.execute(pragma)
    return conn


def _begin_without_waiting(conn: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE on the calling thread (the event loop's) if the write lock is free now;
    False, with no transaction begun, when another process holds it (another worker, a prune):
    the caller then waits for it from the store's thread. The hop to that thread and back cost
    the loop ~50 µs per flush (``time.thread_time``), a fifth of a 1-alert flush."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return True


def sqlite_library() -> str | None:
    """The file of the SQLite library that Python's sqlite3 module runs on, when it is a shared
    library of its own (read from ``/proc/self/maps``: Linux); None otherwise (SQLite linked into
    the module, or another system)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and os.path.basename(fields[5].rstrip("\n")).startswith("libsqlite3"):
                    return fields[5].rstrip("\n")
    except OSError:
        pass
    return None


def open_native_writer(path: str) -> SqliteWriter | None:
    """The Rust writer on Python's own SQLite library (see rust/core/src/sqlite/), or None, with
    the reason logged, when there is none to share: writes then go through Python's sqlite3.
    The writer checks that the ``_sqlite3`` module resolves SQLite's functions to that library."""
    library = sqlite_library()
    if library is None:
        log.info("SQLite is not a shared library of its own here: flushes are written through Python's sqlite3")
        return None
    try:
        writer = SqliteWriter(
            library,
            _sqlite3.__file__,
            path,
            f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; " + "; ".join(WRITER_PRAGMAS),
            (INSERT_GROUPS, INSERT_LABEL_SETS, INSERT_EVENTS, UPSERT_ALERTS),
        )
    except (ValueError, SqliteError) as exc:
        log.warning("no native SQLite writer (%s): flushes are written through Python's sqlite3", exc)
        return None
    return writer


class SQLiteStore(Store):
    dialect = "sqlite"
    default_flush_concurrency = 1  # SQLite has one writer at a time

    def __init__(self, url: str, *, native_writer: bool = True) -> None:
        self.url = url
        self.path = path_from_url(url)
        #: flushes written by the Rust core (rust/core/src/sqlite/) when Python's SQLite can be shared
        self.native_writer = native_writer
        self._writer: SqliteWriter | None = None
        self._encoder = RowEncoder()
        # One thread owns the connection: SQLite work never blocks the event loop.
        self._thread = WorkerThread("webhookfast-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._checkpointer = Checkpointer(self.path, self._lock, self._thread)
        self._checkpoints: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._conn = await self._thread.run(connect, self.path)
        if self.native_writer:
            self._writer = await self._thread.run(open_native_writer, self.path)
        self._checkpoints = asyncio.get_running_loop().create_task(
            self._checkpointer.run(), name="webhookfast-sqlite-checkpoints"
        )

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
            self._checkpoints = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await self._thread.run(writer.close)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._thread.run(conn.close)
        await self._checkpointer.close()
        self._thread.close()

    async def write(self, batches: Sequence[Batch]) -> WriteResult:
        writer = self._writer
        if writer is not None:
            # Encoded and written in Rust on the store's thread, the GIL released throughout.
            async with self._lock:
                try:
                    label_sets, events, alerts = await self._thread.run(writer.write, batches)
                except SqliteError as exc:
                    if exc.refused:  # a constraint or SQLITE_TOOBIG: these rows, not the database
                        raise StoreRejected(f"sqlite: {exc}") from exc
                    raise StoreUnavailable(f"sqlite: {exc}") from exc
            return WriteResult(label_sets, events, alerts)
        return await self._write_through_python(batches)

    async def _write_through_python(self, batches: Sequence[Batch]) -> WriteResult:
        # Rows are encoded and inserted on the event loop's thread: pysqlite takes the GIL back
        # for every row it binds, and from a second thread each hand-off can cost up to the GIL
        # switch interval (5 ms) while the loop is busy — measured: 372 req/s of 10 alerts with
        # the whole write in a thread. Waiting for the write lock and for the commit's fsync
        # holds no GIL, so those two steps run in the store's thread.
        conn = self._conn
        if conn is None:
            raise StoreUnavailable("store is closed")
        async with self._lock:
            groups, label_sets, events, alerts = self._encoder.row_tuples(batches)
            try:
                if not _begin_without_waiting(conn):
                    await self._thread.run(conn.execute, "BEGIN IMMEDIATE")
                try:
                    conn.executemany(INSERT_GROUPS, groups)
                    conn.executemany(INSERT_LABEL_SETS, label_sets)
                    conn.executemany(INSERT_EVENTS, events)
                    conn.executemany(UPSERT_ALERTS, alerts)
                    await self._thread.run(conn.execute, "COMMIT")
                except Exception:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except (sqlite3.IntegrityError, sqlite3.DataError) as exc:
                # A constraint or SQLITE_TOOBIG: these rows, not the database.
                raise StoreRejected(f"sqlite: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite: {exc}") from exc
        return WriteResult(len(label_sets), len(events), len(alerts))

    def _ping_sync(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    async def ping(self) -> bool:
        return await self._thread.run(self._ping_sync)

    def migrate(self) -> list[str]:
        conn = connect(self.path)
        try:
            return apply_migrations(conn)
        finally:
            conn.close()

    def _prune_sync(self, older_than_us: int) -> int:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            n = conn.execute("DELETE FROM alert_events WHERE starts_at < ?", (older_than_us,)).rowcount
            n += conn.execute("DELETE FROM alerts WHERE starts_at < ?", (older_than_us,)).rowcount
            n += conn.execute(
                "DELETE FROM label_sets WHERE NOT EXISTS "
                "(SELECT 1 FROM alerts a WHERE a.fingerprint = label_sets.fingerprint)"
            ).rowcount
            n += conn.execute(DELETE_UNUSED_GROUPS, (older_than_us,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return n

    async def prune(self, older_than_us: int) -> int:
        async with self._lock:  # one transaction at a time on the one connection
            return await self._thread.run(self._prune_sync, older_than_us)

    def _claim_job_sync(self, name: str, every_s: float) -> bool:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable("store is closed")
        every_us = int(every_s * 1e6)
        try:
            return conn.execute(CLAIM_JOB, (name, int(time.time() * 1e6), every_us, every_us)).rowcount == 1
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return job_runs_missing(name)
            if "locked" in str(exc) or "busy" in str(exc):
                return False  # another worker holds the write lock (pruning, most likely)
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def claim_job(self, name: str, every_s: float) -> bool:
        async with self._lock:
            return await self._thread.run(self._claim_job_sync, name, every_s)


# How often the checkpointer copies the WAL back into the database file.
CHECKPOINT_INTERVAL_S = 0.5
# Before the pass under the write lock, passes without it repeat (at most CATCH_UP_PASSES more,
# and not past half of WAL_SAFETY_PAGES) until fewer than LOCKED_PASS_MAX_FRAMES frames were
# committed during the last one: the locked pass then copies only those. On a 166 MB database at
# 2,000 1-alert requests/s the first pass took 200-300 ms at nice 19 and the locked pass, which
# copied what was committed meanwhile, held the flushes 100-290 ms; after catching up, 10-25 ms.
CATCH_UP_PASSES = 4
LOCKED_PASS_MAX_FRAMES = 1_000


def _lowest_priority() -> None:
    """Nice 19 for the calling thread (Linux schedules threads apart): a passive checkpoint is
    milliseconds of copying that may wait, a request may not. At normal priority, on the one core
    a worker may be given, each pass took its fair share of the CPU from the event loop: pauses of
    10-28 ms every pass at 2,000 1-alert requests/s, the p99 (14-23 ms; 6-8 ms at nice 19)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: no change
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _start_writeback() -> Callable[[int], None]:
    """``start(fd)``: ask the kernel to start writing the file's dirty pages to disk, without
    waiting for them or committing the file system's journal (Linux ``sync_file_range`` with
    ``SYNC_FILE_RANGE_WRITE``); elsewhere, nothing.

    SQLite syncs the database file only when a checkpoint has copied every frame: under steady
    writes only the pass under the write lock does, and its fsync then wrote out everything the
    passes before it had copied (tens of MB on a big database: the 100+ ms it held the flushes).
    Started as each unlocked pass ends, that writing is mostly done by then."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        sync_file_range = libc.sync_file_range
    except (OSError, AttributeError, TypeError):  # no such call here (not Linux)
        return lambda fd: None
    sync_file_range.argtypes = (ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint)
    sync_file_range.restype = ctypes.c_int

    def start(fd: int) -> None:
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)  # a hint: a failure changes nothing

    return start


SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>
start_writeback = _start_writeback()


class Checkpointer:
    """Copies committed WAL pages into the database file from a thread and connection of its own,
    every CHECKPOINT_INTERVAL_S. SQLite's automatic checkpoint runs inside the commit that passes
    1,000 WAL pages: that commit, and every request waiting for it, paid for copying and fsyncing
    them (the p99 of a steady load). A passive checkpoint never blocks the writer or readers.

    Under steady writes a checkpoint never catches up with the frames committed while it ran, and
    the WAL restarts from its start only after a complete one: without that it grows for ever. So
    once it holds WAL_RESTART_PAGES, unlocked passes catch up (CATCH_UP_PASSES) and a last pass
    runs under the store's write lock (between two flushes), with only the frames committed during
    the one before it left to copy. Each unlocked pass starts the writing of what it copied
    (``start_writeback``), so that the locked pass's fsync has little left to write.

    The passive passes run at the lowest CPU priority (``_lowest_priority``), the locked one on the
    writer's thread at normal priority."""

    def __init__(self, path: str, write_lock: asyncio.Lock, writer_thread: WorkerThread) -> None:
        self.path = path
        self.write_lock = write_lock
        # The pass under the write lock runs on the writer's thread, at normal priority: at nice
        # 19 the flushes it holds back would wait for the loop to leave it the CPU.
        self.writer_thread = writer_thread
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="webhookfast-sqlite-checkpoint", initializer=_lowest_priority
        )
        self._conn: sqlite3.Connection | None = None
        # The database file, for start_writeback only. Open until close(), after the store's
        # connections: closing any descriptor of a file drops every POSIX lock this process
        # holds on it, SQLite's included.
        self._fd: int | None = None
        self._last_error: str | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        """(busy, WAL pages, pages copied), as ``PRAGMA wal_checkpoint`` reports them."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 1000")
        busy, pages, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy, pages, copied

    def unlocked_pass(self) -> int:
        """A pass beside the writer, then the writing of what it copied started: the WAL's pages."""
        _, pages, _ = self.checkpoint()
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._fd = -1  # no hint then: SQLite's own fsync still writes it all
        if self._fd >= 0:
            start_writeback(self._fd)
        return pages

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                pages = await loop.run_in_executor(self._thread, self.unlocked_pass)
                if pages >= WAL_RESTART_PAGES:
                    for _ in range(CATCH_UP_PASSES):
                        now = await loop.run_in_executor(self._thread, self.unlocked_pass)
                        committed_meanwhile, pages = now - pages, now
                        # Caught up, or the WAL nears the size at which a commit would checkpoint
                        # by itself (holding every flush behind it): the locked pass now.
                        if committed_meanwhile <= LOCKED_PASS_MAX_FRAMES or now >= WAL_SAFETY_PAGES // 2:
                            break
                    async with self.write_lock:
                        await self.writer_thread.run(self.checkpoint)
            except sqlite3.Error as exc:
                if str(exc) != self._last_error:  # once per kind of failure, not twice a second
                    log.warning("WAL checkpoint failed, retrying: %s", exc)
                self._last_error = str(exc)
            else:
                self._last_error = None

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
        self._thread.shutdown(wait=True)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if fd >= 0:
                os.close(fd)


# One statement, so one implicit transaction: of concurrent claimers, the first to take the write
# lock moves the time and the others see it moved. No row changed: not due. A start further in the
# future than an interval (the clock was stepped back) is claimed too, or pruning would wait for
# the clock to catch up. rowcount, not RETURNING: that needs SQLite 3.35.
CLAIM_JOB = """INSERT INTO job_runs (name, started_at) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at
WHERE job_runs.started_at <= excluded.started_at - ? OR job_runs.started_at > excluded.started_at + ?"""


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    # BEGIN IMMEDIATE takes the write lock first, so two processes starting together apply each
    # migration once.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    applied: list[str] = []
    for m in migrations.load("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)).fetchone()
            if done is None:
                for statement in split_statements(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (m.version, m.name, int(time.time() * 1e6)),
                )
                applied.append(f"{m.version:04d}_{m.name}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file (our files keep ';' out of strings and comments)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
