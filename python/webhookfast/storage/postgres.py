"""The PostgreSQL store: a psycopg 3 async pool, rows encoded by Rust as binary COPY.

One flush is one transaction:

1. ``RowEncoder.pg_copy`` turns the batches into four binary COPY streams (notification groups,
   label sets, events, current state), duplicates collapsed and rows sorted by key;
2. each stream is COPYed into a per-connection temp staging table (created once per connection by
   the pool's ``configure`` callback, emptied by ``ON COMMIT DELETE ROWS``);
3. one multi-statement query merges staging into the real tables with INSERT ... SELECT ...
   ON CONFLICT, in key order so that concurrent writers (several webhookfast processes) lock rows
   in the same order; a deadlock or serialization failure that slips through is retried.

Small flushes take the other path: a single ``INSERT ... SELECT FROM unnest(arrays)`` per table,
all in one pipeline (one round trip instead of about ten). ``scripts/bench_merge.py`` measures
both on a real server: unnest is about twice as fast at 1–10 alerts per flush, even at ~50, and
staging + COPY pulls ahead from ~100 (1.2–2.4x at 500), so ``merge="auto"`` switches at
``UNNEST_MAX_ALERTS``.

The pool is opened without waiting for the database: ``webhookfast serve`` starts while
PostgreSQL is down, /readyz says not ready (``ping``), writes raise ``StoreUnavailable`` (503 +
Retry-After, which Alertmanager retries), and the pool reconnects on its own when the database
comes back. Connections are checked before use, so a restarted server costs no failed write.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from webhookfast._core import Batch, RowEncoder
from webhookfast.storage import migrations, rows
from webhookfast.storage.base import Store, StoreRejected, StoreUnavailable, WriteResult, job_runs_missing
from webhookfast.storage.postgres_time import clamped
from webhookfast.storage.upsert import GROUP_LAST_USED_SLACK_S, POSTGRES_ALERTS_CONFLICT

log = logging.getLogger("webhookfast.storage.postgres")

# Advisory lock keys (the ASCII of a short tag, as a bigint).
MIGRATE_LOCK = 8604239648134883186  # 'whf_migr': one migrator at a time
LABELS_LOCK = 8604239648117580396  # 'whf_labl': writers (shared) vs. orphan label-set pruning

PARTITION_MONTHS_AHEAD = 2
PARTITION_CHECK_INTERVAL_S = 3600.0
WRITE_ATTEMPTS = 3
# Flushes of at most this many alerts (before collapsing) are merged with unnest, bigger ones with
# staging + COPY: the crossover measured by scripts/bench_merge.py (see the README).
UNNEST_MAX_ALERTS = 32
PRUNE_CHUNK = 1000

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


# The other merge, for small flushes: no staging, one INSERT ... SELECT FROM unnest(arrays) per
# table, all sent in one pipeline (BEGIN, lock, the inserts, COMMIT: one round trip instead of
# a dozen). Arrays come from RowEncoder.row_tuples (same collapse and order as pg_copy); times travel
# as bigint microseconds and are converted exactly (whole seconds and the remainder separately, so
# no floating point rounding even in year 0001 or 9999).
def _ts(col: str) -> str:
    return (
        f"(timestamptz 'epoch' + ({col} / 1000000) * interval '1 second'"
        f" + mod({col}, 1000000) * interval '1 microsecond')"
    )


UNNEST_GROUPS = f"""
INSERT INTO notification_groups ({GROUP_COLUMNS})
SELECT i, r, g, {_ts("lu")} FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) AS u(i, r, g, lu)
ORDER BY i
{GROUPS_CONFLICT}
"""
UNNEST_GROUPS_TOUCH = GROUPS_TOUCH.format(
    source=f"(SELECT i AS id, {_ts('lu')} AS last_used FROM unnest(%s::bigint[], %s::bigint[]) AS u(i, lu)) s"
)
UNNEST_LABEL_SETS = f"""
INSERT INTO label_sets ({LABEL_SET_COLUMNS})
SELECT f, l::jsonb, n, s FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS u(f, l, n, s)
ORDER BY f
ON CONFLICT (fingerprint) DO NOTHING
"""
UNNEST_EVENTS = f"""
INSERT INTO alert_events ({EVENT_COLUMNS})
SELECT f, {_ts("sa")}, st, {_ts("ea")}, {_ts("ra")}, g, src, gu, an::jsonb
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[],
            %s::text[], %s::text[], %s::text[]) AS u(f, sa, st, ea, ra, g, src, gu, an)
ORDER BY f, sa, st
ON CONFLICT (fingerprint, starts_at, status) DO NOTHING
"""
UNNEST_ALERTS = f"""
INSERT INTO alerts AS a ({ALERT_COLUMNS})
SELECT f, {_ts("sa")}, st, {_ts("ea")}, {_ts("fs")}, {_ts("ls")}, n, g, d
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[],
            %s::integer[], %s::bigint[], %s::boolean[]) AS u(f, sa, st, ea, fs, ls, n, g, d)
ORDER BY f, sa
{POSTGRES_ALERTS_CONFLICT}
"""

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


def new_pool(
    url: str,
    *,
    name: str,
    min_size: int,
    max_size: int,
    connect_timeout_s: float,
    timeout_s: float,
    configure: Callable[[psycopg.AsyncConnection], Awaitable[None]],
) -> AsyncConnectionPool:
    """A connection pool as webhookfast opens them (the writer's and the history API's): autocommit,
    named connections, dead peers noticed in seconds, quick reconnection attempts. Not opened."""
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs=connection_kwargs(name, connect_timeout_s),
        configure=configure,
        check=AsyncConnectionPool.check_connection,
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
    ) -> None:
        if merge not in ("auto", "copy", "unnest"):
            raise ValueError("merge must be auto, copy or unnest")
        self.url = url
        #: "auto": unnest for small flushes, staging + COPY for big ones (forced values: tests, bench)
        self.merge = merge
        self.pool_min_size = pool_min_size
        self.pool_max_size = max(pool_max_size, pool_min_size, 1)
        self.connect_timeout_s = connect_timeout_s
        self.write_deadline_s = write_deadline_s
        self._pool: AsyncConnectionPool | None = None
        # RowEncoder reuses its buffers, so one encoder serves one flush at a time.
        self._encoders: list[RowEncoder] = []
        self._partitions_due = 0.0  # monotonic time of the next webhookfast_ensure_partitions

    # -- connection handling ----------------------------------------------------------------
    def _connect_kwargs(self) -> dict[str, Any]:
        return connection_kwargs("webhookfast", self.connect_timeout_s)

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        # A statement that runs past the write deadline has already been answered with a 503:
        # let the server give the connection back instead of finishing work nobody waits for.
        timeout_ms = int(max(1.0, self.write_deadline_s) * 2000)
        await conn.execute(f"SET statement_timeout = {timeout_ms};" + CONFIGURE_SQL)

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
            )
        # Never wait for the database here: serve must start while it is down.
        await self._pool.open(wait=False)
        try:
            await asyncio.wait_for(self._ensure_partitions(None), timeout=self.connect_timeout_s)
        except Exception as exc:  # down or slow: the first write tries again
            log.warning("could not check alert_events partitions at open: %s", exc)
            self._partitions_due = 0.0

    async def close(self) -> None:
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
    async def write(self, batches: Sequence[Batch], *, spool_mark: SpoolMark | None = None) -> WriteResult:
        """``spool_mark`` (spool id, segment, position): record in the same transaction how far
        that spool has been replayed (webhookfast.ingest.spool)."""
        pool = self._require_pool()
        encoder = self._encoders.pop() if self._encoders else RowEncoder()
        try:
            merge: Callable[[psycopg.AsyncConnection], Awaitable[None]]
            if self._use_unnest(sum(len(b) for b in batches)):
                groups, label_sets, events, alerts = encoder.row_tuples(batches)
                result = WriteResult(len(label_sets), len(events), len(alerts))
                params = (_columns(groups, 4), _columns(label_sets, 4), _columns(events, 9), _columns(alerts, 9))
                merge = partial(_merge_unnest, params=params, mark=spool_mark)
            else:
                copy = encoder.pg_copy(batches)
                result = WriteResult(copy.label_set_rows, copy.event_rows, copy.alert_rows)
                merge = partial(
                    _merge_copy, streams=(copy.groups, copy.label_sets, copy.events, copy.alerts), mark=spool_mark
                )
            if not (result.label_sets or result.events or result.alerts or spool_mark):
                return result
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    async with pool.connection() as conn:
                        if time.monotonic() >= self._partitions_due:
                            await self._ensure_partitions(conn)
                        await merge(conn)
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
                    raise StoreUnavailable(reason) from exc
            raise AssertionError("unreachable")
        finally:
            self._encoders.append(encoder)

    def _use_unnest(self, alerts: int) -> bool:
        if self.merge == "auto":
            return alerts <= UNNEST_MAX_ALERTS
        return self.merge == "unnest"

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


def refused_content(exc: psycopg.Error) -> bool:
    """Whether PostgreSQL refused the rows themselves: a data exception (SQLSTATE class 22, or
    psycopg's own DataError before sending), an integrity violation (23) or a program limit (54,
    e.g. an index row too large). Retrying the same rows fails again; anything else (connection,
    timeout, lock, a missing table) is the database's state, which may change."""
    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)) or (exc.sqlstate or "").startswith("54")


def _columns(rows: list[tuple], width: int) -> list[list]:  # type: ignore[type-arg]
    """Row tuples → one list per column (the unnest arrays)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def _merge_unnest(
    conn: psycopg.AsyncConnection,
    params: tuple[list, list, list, list],  # type: ignore[type-arg]
    mark: SpoolMark | None = None,
) -> None:
    groups, label_sets, events, alerts = params
    async with conn.pipeline(), conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock_shared({LABELS_LOCK})")
        await conn.execute(UNNEST_GROUPS, groups)
        await conn.execute(UNNEST_GROUPS_TOUCH, (groups[0], groups[3]))
        await conn.execute(UNNEST_LABEL_SETS, label_sets)
        await conn.execute(UNNEST_EVENTS, events)
        await conn.execute(UNNEST_ALERTS, alerts)
        if mark is not None:
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
