"""The PostgreSQL store: a psycopg 3 async pool, rows encoded by Rust in PostgreSQL's binary format.

One flush is one call: ``RowEncoder.pg_arrays`` collapses the batches (duplicates merged, rows
sorted by key so that concurrent writers lock rows in the same order) and encodes every column as
a binary array; ``SELECT webhookfast_flush(...)`` (migration 0010) merges them into the four
tables with INSERT ... SELECT FROM unnest ... ON CONFLICT, in one statement's transaction. One
round trip and no Python per alert at any flush size; a deadlock or serialization failure that
slips through is retried.

The other path, ``merge="copy"`` (kept for comparison: scripts/bench_merge.py), COPYs four binary
streams (``RowEncoder.pg_copy``) into per-connection temp staging tables and merges them with one
multi-statement query. On this machine the call is faster at every flush size (docs/performance.md).

The pool is opened without waiting for the database: ``webhookfast serve`` starts while
PostgreSQL is down, /readyz says not ready (``ping``), writes raise ``StoreUnavailable`` (503 +
Retry-After, which Alertmanager retries), and the pool reconnects on its own when the database
comes back. A connection idle for a second is checked before use, so a restarted server costs no
failed write.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from webhookfast._core import PG_ARRAY_ELEMENT_OIDS, Batch, RowEncoder
from webhookfast.storage import migrations, pg_call, rows
from webhookfast.storage.base import Store, StoreRejected, StoreUnavailable, WriteResult, job_runs_missing
from webhookfast.storage.postgres_time import clamped
from webhookfast.storage.upsert import GROUP_LAST_USED_SLACK_S, POSTGRES_ALERTS_CONFLICT

log = logging.getLogger("webhookfast.storage.postgres")

# Advisory lock keys (the ASCII of a short tag, as a bigint).
MIGRATE_LOCK = 8604239648134883186  # 'whf_migr': one migrator at a time
LABELS_LOCK = 8604239648117580396  # 'whf_labl': writers (shared) vs. orphan label-set pruning
LABEL_INDEX_LOCK = 8604239648034221663  # 'whf_gin_': one merge of the label-set index at a time

PARTITION_MONTHS_AHEAD = 2
PARTITION_CHECK_INTERVAL_S = 3600.0
WRITE_ATTEMPTS = 3
# A writer connection idle longer than this is checked (a round trip) before its next flush.
CHECK_IDLE_S = 1.0
PRUNE_CHUNK = 1000

# The GIN index on label sets keeps new entries in a pending list (fastupdate) until it passes
# gin_pending_list_limit (4 MB): then the insert that overflows it merges the whole list, and that
# flush ran 170-250 ms of CPU, its requests waiting, about every 30 s at 2,000 new label sets/s.
# Merged from a background connection every few seconds (by default 5 s: ~0.7 MB of entries at
# 2,000 new label sets/s), the list stays under the limit up to ~11,000 new label sets/s; beyond
# that the flushes merge it too, as before. Another worker's merge in progress is skipped, not
# waited for.
MERGE_LABEL_INDEX_SQL = f"""
SELECT CASE WHEN pg_try_advisory_xact_lock({LABEL_INDEX_LOCK})
            THEN gin_clean_pending_list('label_sets_labels'::regclass) ELSE 0 END
"""

# The columns of each table's rows, as the Rust encoder writes them (storage/rows.py).
GROUP_COLUMNS = rows.names(rows.GROUP_COLUMNS)
LABEL_SET_COLUMNS = rows.names(rows.LABEL_SET_COLUMNS)
EVENT_COLUMNS = rows.names(rows.EVENT_COLUMNS)
ALERT_COLUMNS = rows.names(rows.ALERT_COLUMNS)

STAGE_GROUPS = "webhookfast_stage_groups"
STAGE_LABEL_SETS = "webhookfast_stage_label_sets"
STAGE_EVENTS = "webhookfast_stage_events"
STAGE_ALERTS = "webhookfast_stage_alerts"

# Run once per new connection (pool ``configure``). Temp tables live as long as the connection;
# ON COMMIT DELETE ROWS empties them at the end of every transaction that used them, so a failed
# or retried flush never sees a previous attempt's rows.
# The defaults fill the columns a COPY leaves out (the legacy receiver/group_key).
CONFIGURE_SQL = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_GROUPS} (LIKE notification_groups) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS {STAGE_LABEL_SETS} (LIKE label_sets) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS {STAGE_EVENTS} (LIKE alert_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS {STAGE_ALERTS} (LIKE alerts INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
"""

COPY_GROUPS = f"COPY {STAGE_GROUPS} ({GROUP_COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_LABEL_SETS = f"COPY {STAGE_LABEL_SETS} ({LABEL_SET_COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_EVENTS = f"COPY {STAGE_EVENTS} ({EVENT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_ALERTS = f"COPY {STAGE_ALERTS} ({ALERT_COLUMNS}) FROM STDIN (FORMAT BINARY)"

# A new group is inserted; a known one is left alone (DO NOTHING takes no row lock, so concurrent
# flushes of one receiver do not queue on it) unless its last_used lags this use by more than the
# slack (storage/upsert.py): then a plain UPDATE raises it, locking only the rows it changes. Prune
# deletes groups under the exclusive side of the lock flushes share, so it never removes a group a
# flush in flight relies on.
GROUPS_CONFLICT = "ON CONFLICT (id) DO NOTHING"
SLACK = f"interval '{GROUP_LAST_USED_SLACK_S} seconds'"
GROUPS_TOUCH = f"""UPDATE notification_groups g SET last_used = s.last_used
FROM {{source}} WHERE g.id = s.id AND g.last_used < s.last_used - {SLACK}"""

# The merges (plus the shared lock that keeps prune from deleting a label set or group this flush
# relies on) go in one simple-protocol query: one round trip. ORDER BY makes the lock order
# explicit even though the Rust encoder already sorts: concurrent flushes of the same alerts then
# queue behind each other instead of deadlocking.
# The alerts upsert is the rule shared with SQLite (storage/upsert.py).

MERGE_SQL = f"""
SELECT pg_advisory_xact_lock_shared({LABELS_LOCK});
INSERT INTO notification_groups ({GROUP_COLUMNS})
SELECT {GROUP_COLUMNS} FROM {STAGE_GROUPS} ORDER BY id
{GROUPS_CONFLICT};
{GROUPS_TOUCH.format(source=STAGE_GROUPS + " s")};
INSERT INTO label_sets ({LABEL_SET_COLUMNS})
SELECT {LABEL_SET_COLUMNS} FROM {STAGE_LABEL_SETS} ORDER BY fingerprint
ON CONFLICT (fingerprint) DO NOTHING;
INSERT INTO alert_events ({EVENT_COLUMNS})
SELECT {EVENT_COLUMNS} FROM {STAGE_EVENTS} ORDER BY fingerprint, starts_at, status
ON CONFLICT (fingerprint, starts_at, status) DO NOTHING;
INSERT INTO alerts AS a ({ALERT_COLUMNS})
SELECT {ALERT_COLUMNS} FROM {STAGE_ALERTS} ORDER BY fingerprint, starts_at
{POSTGRES_ALERTS_CONFLICT};
"""


# The other merge: one call of webhookfast_flush (migration 0010) with one binary array per
# column, encoded by the Rust core (RowEncoder.pg_arrays, same collapse and order as pg_copy).
# psycopg sends each array's bytes as they are (BinaryArray below): no Python object and no
# adaptation per alert. This form serves a flush with a spool mark (two statements, one
# transaction); without a mark the same call goes through libpq directly (FLUSH_STATEMENT).
FLUSH_SQL = "SELECT webhookfast_flush({})".format(", ".join(["%b"] * len(PG_ARRAY_ELEMENT_OIDS)))


class BinaryArray:
    """A PostgreSQL array already in the binary format of ``array_send``; ``oid``: its type."""

    __slots__ = ("data",)
    oid = 0

    def __init__(self, data: bytes) -> None:
        self.data = data


class _BinaryArrayDumper(Dumper):
    format = Format.BINARY

    def __init__(self, cls: type[BinaryArray], context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        self.oid = cls.oid

    def dump(self, obj: BinaryArray) -> bytes:
        return obj.data


def _array_class(element_oid: int) -> type[BinaryArray]:
    # pg_type: the array type of each element type the encoder writes.
    array_oid = {16: 1000, 20: 1016, 23: 1007, 25: 1009, 1184: 1185, 3802: 3807}[element_oid]
    return type(f"BinaryArray{array_oid}", (BinaryArray,), {"__slots__": (), "oid": array_oid})


_ARRAY_CLASSES = {oid: _array_class(oid) for oid in set(PG_ARRAY_ELEMENT_OIDS)}
# The class of each of webhookfast_flush's parameters, in order.
FLUSH_PARAMETER_CLASSES = tuple(_ARRAY_CLASSES[oid] for oid in PG_ARRAY_ELEMENT_OIDS)
# The same call for libpq directly (storage/pg_call.py): what a flush without a spool mark sends.
FLUSH_STATEMENT = pg_call.Statement(
    "SELECT webhookfast_flush({})".format(", ".join(f"${i}" for i in range(1, len(PG_ARRAY_ELEMENT_OIDS) + 1))),
    [cls.oid for cls in FLUSH_PARAMETER_CLASSES],
    name="webhookfast_flush",
)
# A flush of nothing: every array empty. It writes no row and takes no transaction id, so its
# commit has nothing to sync.
EMPTY_FLUSH = tuple(bytes(array) for array in RowEncoder().pg_arrays([])[0])


def register_binary_arrays(conn: psycopg.AsyncConnection) -> None:
    for cls in _ARRAY_CLASSES.values():
        conn.adapters.register_dumper(cls, _BinaryArrayDumper)


# Spool replay (webhookfast.ingest.spool): the mark moves in the same transaction as the alerts it covers.
SpoolMark = tuple[str, int, int]  # (spool id, segment, position)
UPSERT_SPOOL_MARK = """
INSERT INTO spool_marks (spool_id, segment, position) VALUES (%s, %s, %s)
ON CONFLICT (spool_id) DO UPDATE
SET segment = EXCLUDED.segment, position = EXCLUDED.position, updated_at = now()
"""
SELECT_SPOOL_MARK = "SELECT segment, position FROM spool_marks WHERE spool_id = %s"

SCHEMA_MIGRATIONS_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Monthly partitions whose whole range lies before the cutoff: dropped instead of deleted from.
EXPIRED_PARTITIONS_SQL = r"""
SELECT c.oid::regclass::text
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'alert_events'::regclass
  AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
  AND substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz <= %s
ORDER BY 1
"""


ORPHAN_LABEL_SETS_SQL = """
SELECT fingerprint FROM label_sets l
WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.fingerprint = l.fingerprint)
"""

DELETE_ORPHAN_LABEL_SETS_SQL = """
DELETE FROM label_sets l
WHERE l.fingerprint = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.fingerprint = l.fingerprint)
"""


def connection_kwargs(name: str, connect_timeout_s: float) -> dict[str, Any]:
    """How every webhookfast connection to PostgreSQL is made (pools and one-off connections)."""
    return {
        "autocommit": True,
        # libpq takes whole seconds (and treats 1 as 2).
        "connect_timeout": max(1, round(connect_timeout_s)),
        "application_name": name,
        # Notice a dead peer (host down, network cut) in seconds, not after the kernel's hours.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
    }


class HotFirstPool(AsyncConnectionPool):
    """A pool that hands out the connection returned last (psycopg_pool's own takes the one idle
    longest). A flush on the backend process that ran the previous one finds that process's
    caches and CPU warm: with the pool rotating through three connections, a sequential 1-alert
    flush took ~25 % more CPU in PostgreSQL and ~20 % more time. The connections idle longest stay
    at the other end, where psycopg_pool's shrinking closes them first."""

    async def _get_ready_connection(self, timeout: float | None) -> psycopg.AsyncConnection | None:
        idle = getattr(self, "_pool", None)  # psycopg_pool's idle connections, oldest first
        if isinstance(idle, deque) and len(idle) > 1:
            idle.rotate(1)
        conn: psycopg.AsyncConnection | None = await super()._get_ready_connection(timeout)
        return conn


def new_pool(
    url: str,
    *,
    name: str,
    min_size: int,
    max_size: int,
    connect_timeout_s: float,
    timeout_s: float,
    configure: Callable[[psycopg.AsyncConnection], Awaitable[None]],
    check: Callable[[psycopg.AsyncConnection], Awaitable[None]] = AsyncConnectionPool.check_connection,
) -> AsyncConnectionPool:
    """A connection pool as webhookfast opens them (the writer's and the history API's): autocommit,
    named connections, dead peers noticed in seconds, quick reconnection attempts. Not opened."""
    return HotFirstPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs=connection_kwargs(name, connect_timeout_s),
        configure=configure,
        check=check,
        name=name,
        timeout=timeout_s,
        # Give up a reconnection attempt quickly: psycopg_pool's back-off doubles up to
        # reconnect_timeout, so a long value means minutes between attempts after a long outage.
        # Once given up, the next request that needs a connection starts a fresh attempt at once,
        # so recovery follows the database within a second or two.
        reconnect_timeout=max(5.0, 2 * connect_timeout_s),
    )


class PostgresStore(Store):
    dialect = "postgresql"
    # Two flushes in flight hide one flush's commit (fsync) latency behind the other's work.
    default_flush_concurrency = 2

    def __init__(
        self,
        url: str,
        *,
        pool_min_size: int = 1,
        pool_max_size: int = 4,
        connect_timeout_s: float = 2.0,
        write_deadline_s: float = 5.0,
        merge: str = "auto",
        label_index_merge_s: float = 0.0,
    ) -> None:
        if merge not in ("auto", "copy", "unnest"):
            raise ValueError("merge must be auto, copy or unnest")
        self.url = url
        #: "auto" or "unnest": webhookfast_flush with binary arrays; "copy": staging + COPY (tests, bench)
        self.merge = merge
        self.pool_max_size = max(pool_max_size, pool_min_size, 1)
        # A connection per flush in flight from the start: one opened under load made the flush
        # waiting for it, and every request behind it, wait a connection's setup (stalls of
        # hundreds of ms in the p99 at a fixed rate).
        self.pool_min_size = max(pool_min_size, min(self.default_flush_concurrency, self.pool_max_size))
        self.connect_timeout_s = connect_timeout_s
        self.write_deadline_s = write_deadline_s
        #: seconds between merges of the label-set index's pending entries (0: left to the flushes)
        self.label_index_merge_s = label_index_merge_s
        self._label_sets_unmerged = 0
        self._merge_task: asyncio.Task[None] | None = None
        self._pool: AsyncConnectionPool | None = None
        # RowEncoder reuses its buffers, so one encoder serves one flush at a time.
        self._encoders: list[RowEncoder] = []
        self._partitions_due = 0.0  # monotonic time of the next webhookfast_ensure_partitions
        # When each connection last completed a write (see _check).
        self._last_ok: weakref.WeakKeyDictionary[psycopg.AsyncConnection, float] = weakref.WeakKeyDictionary()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- connection handling ----------------------------------------------------------------
    def _connect_kwargs(self) -> dict[str, Any]:
        return connection_kwargs("webhookfast", self.connect_timeout_s)

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        # A statement that runs past the write deadline has already been answered with a 503:
        # let the server give the connection back instead of finishing work nobody waits for.
        timeout_ms = int(max(1.0, self.write_deadline_s) * 2000)
        # The staging tables serve only merge="copy": creating them is catalog work on every new
        # connection.
        await conn.execute(f"SET statement_timeout = {timeout_ms};" + (CONFIGURE_SQL if self.merge == "copy" else ""))
        register_binary_arrays(conn)
        if self.merge != "copy" and await _warm_up(conn):
            self._last_ok[conn] = time.monotonic()  # no check needed on its first use

    async def _check(self, conn: psycopg.AsyncConnection) -> None:
        """Check a connection before a flush uses it, unless it completed a write a moment ago: a
        round trip per flush costs as much as the flush's own (a server restart is noticed after
        any pause of CHECK_IDLE_S; one within it fails that flush, which a retry or the spool
        covers)."""
        if time.monotonic() - self._last_ok.get(conn, -CHECK_IDLE_S) < CHECK_IDLE_S:
            return
        await AsyncConnectionPool.check_connection(conn)

    async def open(self) -> None:
        if self._pool is None:
            self._pool = new_pool(
                self.url,
                name="webhookfast",
                min_size=self.pool_min_size,
                max_size=self.pool_max_size,
                connect_timeout_s=self.connect_timeout_s,
                timeout_s=self.write_deadline_s,
                configure=self._configure,
                check=self._check,
            )
        # Kept: on Python 3.11 every get_running_loop() is a getpid() system call.
        self._loop = asyncio.get_running_loop()
        # Never wait for the database here: serve must start while it is down.
        await self._pool.open(wait=False)
        if self.label_index_merge_s > 0 and self._merge_task is None:
            self._merge_task = self._loop.create_task(self._merge_label_index_loop(), name="webhookfast-label-index")
        try:
            await asyncio.wait_for(self._ensure_partitions(None), timeout=self.connect_timeout_s)
        except Exception as exc:  # down or slow: the first write tries again
            log.warning("could not check alert_events partitions at open: %s", exc)
            self._partitions_due = 0.0

    async def close(self) -> None:
        if self._merge_task is not None:
            task, self._merge_task = self._merge_task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None or self._pool.closed:
            raise StoreUnavailable("store is closed")
        return self._pool

    async def _ensure_partitions(self, conn: psycopg.AsyncConnection | None) -> None:
        """Create the coming months' partitions (hourly; cheap when they exist)."""
        self._partitions_due = time.monotonic() + PARTITION_CHECK_INTERVAL_S
        try:
            if conn is None:
                async with self._require_pool().connection(timeout=self.connect_timeout_s) as c:
                    await self._ensure_partitions_on(c)
            else:
                await self._ensure_partitions_on(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout):
            self._partitions_due = 0.0
            raise
        except psycopg.Error as exc:
            # e.g. lock_timeout while a long query holds alert_events: months of slack remain.
            log.warning("webhookfast_ensure_partitions failed, retrying in a minute: %s", exc)
            self._partitions_due = time.monotonic() + 60.0

    async def _ensure_partitions_on(self, conn: psycopg.AsyncConnection) -> None:
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '1s'")
            cur = await conn.execute("SELECT webhookfast_ensure_partitions(%s)", (PARTITION_MONTHS_AHEAD,))
            row = await cur.fetchone()
        if row and row[0]:
            log.info("created %d alert_events partition(s)", row[0])

    # -- writes -------------------------------------------------------------------------------
    async def write(
        self,
        batches: Sequence[Batch],
        *,
        spool_mark: SpoolMark | None = None,
        before_send: Callable[[], Sequence[Batch] | None] | None = None,
    ) -> WriteResult:
        """``spool_mark`` (spool id, segment, position): record in the same transaction how far
        that spool has been replayed (webhookfast.ingest.spool). ``before_send`` is called once a
        connection is ready, right before the flush goes out; it may return fewer batches to
        write instead (the batcher's withdrawn requests)."""
        pool = self._require_pool()
        encoder = self._encoders.pop() if self._encoders else RowEncoder()
        try:
            merge, result = self._prepare(encoder, batches, spool_mark)
            if merge is None:
                return result
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    # getconn/putconn, not pool.connection(): its context manager and the
                    # connection's own (a commit call, with nothing to commit in autocommit) cost
                    # the event loop ~30 µs per flush. putconn still discards a broken connection
                    # and rolls back one left in a transaction.
                    conn = await pool.getconn()
                    try:
                        if time.monotonic() >= self._partitions_due:
                            await self._ensure_partitions(conn)
                        if before_send is not None and (fewer := before_send()) is not None:
                            again, result = self._prepare(encoder, fewer, spool_mark)
                            if again is None:
                                return result
                            merge = again
                        await merge(conn)
                        self._last_ok[conn] = time.monotonic()
                    finally:
                        await pool.putconn(conn)
                    self._label_sets_unmerged += result.label_sets
                    return result
                except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                    if attempt == WRITE_ATTEMPTS:
                        raise StoreUnavailable(f"postgresql: {exc.sqlstate}: {exc}") from exc
                    log.info("flush attempt %d hit %s, retrying", attempt, exc.sqlstate)
                    await asyncio.sleep(random.uniform(0.001, 0.01) * attempt)
                except PoolTimeout as exc:
                    raise StoreUnavailable(f"postgresql: no connection: {exc}") from exc
                except psycopg.Error as exc:
                    reason = f"postgresql: {exc.sqlstate or type(exc).__name__}: {exc}"
                    if refused_content(exc):
                        raise StoreRejected(reason) from exc
                    if attempt == WRITE_ATTEMPTS or not connection_lost(exc):
                        raise StoreUnavailable(reason) from exc
                    # A connection that died while idle (the server restarted within CHECK_IDLE_S):
                    # the pool drops it, the next attempt gets another.
                    log.info("flush attempt %d lost its connection, retrying: %s", attempt, exc)
            raise AssertionError("unreachable")
        finally:
            self._encoders.append(encoder)

    def _prepare(
        self, encoder: RowEncoder, batches: Sequence[Batch], spool_mark: SpoolMark | None
    ) -> tuple[Callable[[psycopg.AsyncConnection], Awaitable[None]] | None, WriteResult]:
        """The flush of ``batches`` encoded, as a call on a connection (None when there is nothing
        to write, not even a spool mark), and what it will write."""
        merge: Callable[[psycopg.AsyncConnection], Awaitable[None]]
        if self.merge == "copy":
            copy = encoder.pg_copy(batches)
            result = WriteResult(copy.label_set_rows, copy.event_rows, copy.alert_rows)
            streams = (copy.groups, copy.label_sets, copy.events, copy.alerts)
            merge = partial(_merge_copy, streams=streams, mark=spool_mark)
        else:
            arrays, label_sets, events, alerts = encoder.pg_arrays(batches)
            result = WriteResult(label_sets, events, alerts)
            if spool_mark is None:
                loop = self._loop or asyncio.get_running_loop()
                merge = partial(pg_call.call, loop, statement=FLUSH_STATEMENT, params=arrays)
            else:
                params = [cls(data) for cls, data in zip(FLUSH_PARAMETER_CLASSES, arrays, strict=True)]
                merge = partial(_merge_with_mark, params=params, mark=spool_mark)
        if not (result.label_sets or result.events or result.alerts or spool_mark):
            return None, result
        return merge, result

    async def merge_label_index(self) -> int:
        """Merge the label-set index's pending entries into it now: the pending pages merged, 0
        when there were none or another worker is merging them."""
        async with self._require_pool().connection() as conn:
            cur = await conn.execute(MERGE_LABEL_INDEX_SQL)
            row = await cur.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def _merge_label_index_loop(self) -> None:
        while True:
            await asyncio.sleep(self.label_index_merge_s)
            if not self._label_sets_unmerged:
                continue
            self._label_sets_unmerged = 0
            try:
                await self.merge_label_index()
            except (pg_errors.InsufficientPrivilege, pg_errors.UndefinedTable) as exc:
                # Only the index's owner (or a superuser) may merge it; a missing index has nothing to merge.
                log.warning("label-set index entries are left to the flushes to merge: %s", exc)
                return
            except Exception as exc:  # the database down or slow: the next round tries again
                log.info("label-set index merge failed, trying again: %s", exc)

    async def spool_mark(self, spool_id: str) -> tuple[int, int] | None:
        """How far spool ``spool_id`` has been replayed: (segment, position), None if never."""
        try:
            async with self._require_pool().connection() as conn:
                cur = await conn.execute(SELECT_SPOOL_MARK, (spool_id,))
                row = await cur.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(f"postgresql: {exc}") from exc
        return None if row is None else (row[0], row[1])

    async def ping(self) -> bool:
        pool = self._pool
        if pool is None or pool.closed:
            return False
        timeout = min(1.0, self.connect_timeout_s)
        try:
            return await asyncio.wait_for(_ping(pool, timeout), timeout=timeout + 0.5)
        except Exception:
            return False

    # -- migrations ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        with psycopg.connect(self.url, **self._connect_kwargs()) as conn:
            applied = apply_migrations(conn)
            with conn.transaction():
                conn.execute("SELECT webhookfast_ensure_partitions(%s)", (PARTITION_MONTHS_AHEAD,))
        return applied

    # -- retention ----------------------------------------------------------------------------
    async def prune(self, older_than_us: int) -> int:
        cutoff = clamped(older_than_us)  # a text value would not compare with intervals
        pool = self._require_pool()
        deleted = 0
        try:
            async with pool.connection() as conn:
                # 1. Whole months before the cutoff: DROP is instant and leaves no dead rows.
                cur = await conn.execute(EXPIRED_PARTITIONS_SQL, (cutoff,))
                for (name,) in await cur.fetchall():
                    try:
                        async with conn.transaction():
                            # Dropping locks the parent: wait briefly, never block writes for long.
                            await conn.execute("SET LOCAL lock_timeout = '5s'")
                            await conn.execute("SET LOCAL statement_timeout = 0")
                            ident = sql.Identifier(*name.split(".")) if "." in name else sql.Identifier(name)
                            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident))
                            n = (await cur.fetchone())[0]  # type: ignore[index]
                            await conn.execute(sql.SQL("DROP TABLE {}").format(ident))
                        deleted += n
                        log.info("dropped partition %s (%d rows)", name, n)
                    except pg_errors.LockNotAvailable:
                        log.warning("partition %s is busy; deleting its rows instead", name)
                # 2. The rest: the partial month, the DEFAULT partition, and current state.
                async with conn.transaction():
                    await conn.execute("SET LOCAL statement_timeout = 0")
                    cur = await conn.execute("DELETE FROM alert_events WHERE starts_at < %s", (cutoff,))
                    deleted += cur.rowcount
                    cur = await conn.execute("DELETE FROM alerts WHERE starts_at < %s", (cutoff,))
                    deleted += cur.rowcount
                # 3. Notification groups last used a slack before the cutoff: no row kept refers to
                #    them. Under the lock's exclusive side, like label sets below (a small table).
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LABELS_LOCK,))
                    cur = await conn.execute(
                        f"DELETE FROM notification_groups WHERE last_used < %s - {SLACK}", (cutoff,)
                    )
                    deleted += cur.rowcount
                # 4. Label sets no alert refers to any more. A flush may be about to reuse one
                #    (its INSERT ... DO NOTHING saw the row, its alert is not committed yet), so
                #    each chunk is deleted under the exclusive side of the lock flushes share.
                cur = await conn.execute(ORPHAN_LABEL_SETS_SQL)
                orphans = [fp for (fp,) in await cur.fetchall()]
                for i in range(0, len(orphans), PRUNE_CHUNK):
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LABELS_LOCK,))
                        cur = await conn.execute(DELETE_ORPHAN_LABEL_SETS_SQL, (orphans[i : i + PRUNE_CHUNK],))
                        deleted += cur.rowcount
        except PoolTimeout as exc:
            raise StoreUnavailable(f"postgresql: no connection: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreUnavailable(f"postgresql: {exc.sqlstate or type(exc).__name__}: {exc}") from exc
        return deleted

    async def claim_job(self, name: str, every_s: float) -> bool:
        try:
            async with self._require_pool().connection() as conn, conn.transaction():
                cur = await conn.execute(CLAIM_JOB_SQL, (name, every_s, every_s))
                return await cur.fetchone() is not None
        except pg_errors.UndefinedTable:
            return job_runs_missing(name)
        except PoolTimeout as exc:
            raise StoreUnavailable(f"postgresql: no connection: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreUnavailable(f"postgresql: {exc.sqlstate or type(exc).__name__}: {exc}") from exc


# Concurrent claimers queue on the row lock and re-check the WHERE against the time the winner
# wrote, so one of them gets the row back. The database's clock, not each replica's. A start
# further in the future than an interval (the clock was stepped back) is claimed too; not any
# future start: a queued loser's now() may be a little older than the winner's.
CLAIM_JOB_SQL = """INSERT INTO job_runs AS j (name, started_at) VALUES (%s, now())
ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at
WHERE j.started_at <= excluded.started_at - make_interval(secs => %s)
   OR j.started_at > excluded.started_at + make_interval(secs => %s)
RETURNING 1"""


def connection_lost(exc: psycopg.Error) -> bool:
    """Whether the connection itself failed (closed, reset, or the server shutting down it)
    rather than the statement."""
    state = exc.sqlstate
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return state is None or state.startswith("08") or state in ("57P01", "57P02")


def refused_content(exc: psycopg.Error) -> bool:
    """Whether PostgreSQL refused the rows themselves: a data exception (SQLSTATE class 22, or
    psycopg's own DataError before sending), an integrity violation (23) or a program limit (54,
    e.g. an index row too large). Retrying the same rows fails again; anything else (connection,
    timeout, lock, a missing table) is the database's state, which may change."""
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)) or (exc.sqlstate or "").startswith("54")


async def _warm_up(conn: psycopg.AsyncConnection) -> bool:
    """Prepare the flush on a new connection and run it once with nothing to write, before the pool
    hands the connection out. A backend's first flush loads the catalog entries of four tables
    and their indexes, compiles webhookfast_flush and plans its statements, and every request in
    that flush waits for it: at each start, and for each connection the pool replaces (hourly by
    default). A first write took 4.3-6.9 ms without this and 2.3-2.8 ms with it, on an idle
    machine (docs/performance.md, twentieth pass). A failure is left for the flushes to meet and
    report: a database not yet migrated fails this call too."""
    try:
        await pg_call.call(asyncio.get_running_loop(), conn, FLUSH_STATEMENT, EMPTY_FLUSH)
    except psycopg.Error as exc:
        log.info("could not warm up a new connection: %s", exc)
        return False
    return True


async def _merge_with_mark(conn: psycopg.AsyncConnection, params: list[BinaryArray], mark: SpoolMark) -> None:
    """The flush and its spool mark in one transaction (a flush without a mark goes through
    pg_call: one statement, its own transaction)."""
    async with conn.pipeline(), conn.transaction():
        await conn.execute(FLUSH_SQL, params)
        await conn.execute(UPSERT_SPOOL_MARK, mark)


async def _merge_copy(
    conn: psycopg.AsyncConnection, streams: tuple[bytes, bytes, bytes, bytes], mark: SpoolMark | None = None
) -> None:
    groups, label_sets, events, alerts = streams
    async with conn.transaction(), conn.cursor() as cur:
        async with cur.copy(COPY_GROUPS) as copy:
            await copy.write(groups)
        async with cur.copy(COPY_LABEL_SETS) as copy:
            await copy.write(label_sets)
        async with cur.copy(COPY_EVENTS) as copy:
            await copy.write(events)
        async with cur.copy(COPY_ALERTS) as copy:
            await copy.write(alerts)
        await cur.execute(MERGE_SQL)
        if mark is not None:
            await cur.execute(UPSERT_SPOOL_MARK, mark)


async def _ping(pool: AsyncConnectionPool, timeout: float) -> bool:
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute("SELECT 1")
    return True


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply pending ``migrations/postgres`` files, each in one transaction, under an advisory
    lock so that receivers starting together apply each migration exactly once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute(SCHEMA_MIGRATIONS_SQL)
    applied: list[str] = []
    for m in migrations.load("postgres"):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (m.version,)).fetchone()
            if done is None:
                # No parameters: psycopg sends the file with the simple query protocol, which
                # runs every statement of it (functions with $$ bodies included).
                conn.execute(m.sql.encode("utf-8"))
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name))
                applied.append(f"{m.version:04d}_{m.name}")
    return applied
