"""Read-only database access for the history API, kept apart from the write path. Readers raise
store errors (``StoreUnavailable``, ``QueryTimeout``, ``QueryRefused``); the HTTP layer answers
them (``errors.read_errors``), as ingest answers the write path's.

* SQLite: a small pool of threads, each with its own connection (``PRAGMA query_only``). In WAL
  mode readers never wait for the writer's thread or lock, and the writer never waits for them.
  Each statement has a deadline (``query_timeout_ms``, like PostgreSQL's ``statement_timeout``):
  a progress handler and the regex function interrupt it once the deadline has passed. Regexes run
  in Rust (``_core.PromRegex``, linear in the value, the GIL released for long values), so one
  call is short and the deadline is noticed.
* PostgreSQL: a small psycopg pool of the API's own (``application_name=webhookfast-api``), so a
  slow history query can never hold a connection the ingest path is waiting for. MVCC does the rest.

``many(queries)`` runs its queries in one read transaction (one snapshot) and returns their rows;
``binary=True`` asks PostgreSQL for binary results (``bytea`` arrives as bytes, not hex text).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from webhookfast._core import PromRegex
from webhookfast.storage import sqlite as sqlite_store
from webhookfast.storage.base import QueryRefused, QueryTimeout, StoreUnavailable

Rows = list[tuple[Any, ...]]
Query = tuple[str, list[Any]]  # SQL text and its parameters (history/sql.py writes them)

# The regexes of the queries being answered, by pattern: SQLite's wf_regexp() finds the one its
# query compiled instead of compiling it again per row or per statement. An entry goes when the
# last query holding it does, and when it is not among the few compiled last (kept for callers
# that pass only the pattern text on, and for a dashboard repeating its question).
_LIVE_REGEXES: weakref.WeakValueDictionary[str, PromRegex] = weakref.WeakValueDictionary()
_RECENT_REGEXES: OrderedDict[str, PromRegex] = OrderedDict()
_RECENT_MAX = 8
_RECENT_LOCK = threading.Lock()


def compile_regex(pattern: str) -> PromRegex:
    """Prometheus' ``^(?s:pattern)$`` (RE2 syntax, linear-time matching; ``_core.PromRegex``), the
    same object while a query holding it runs. ValueError names what Prometheus would refuse."""
    regex = _LIVE_REGEXES.get(pattern)
    if regex is None:
        regex = _LIVE_REGEXES.setdefault(pattern, PromRegex(pattern))
        with _RECENT_LOCK:
            _RECENT_REGEXES[pattern] = regex
            _RECENT_REGEXES.move_to_end(pattern)
            while len(_RECENT_REGEXES) > _RECENT_MAX:
                _RECENT_REGEXES.popitem(last=False)
    return regex


# Most bytes of rows one answer reads (#11): receiver and group key are stored once per
# notification but shown in every row, so a page of rows could be its page size times one
# request's largest string. A page stops early past this (at least one row, so it progresses).
ANSWER_MAX_BYTES = 32 << 20


def row_bytes(row: tuple[Any, ...]) -> int:
    """About what a fetched row holds: its strings' and byte strings' lengths (+16 per value)."""
    return sum(len(v) + 16 if isinstance(v, (str, bytes)) else 16 for v in row)


# Rows per FETCH of a PostgreSQL page: a page passes its byte bound by at most this many rows
# (the rows seen so far cannot say how large the next ones are).
PAGE_FETCH_ROWS = 8


class Reader(Protocol):
    dialect: str  # "sqlite" or "postgresql", as the stores name themselves

    async def open(self) -> None: ...

    async def many(self, queries: Sequence[Query], binary: bool = False) -> list[Rows]: ...

    async def page(self, query: Query, max_rows: int, max_bytes: int = ANSWER_MAX_BYTES) -> tuple[Rows, bool]:
        """Up to ``max_rows`` rows of ``query``, stopping once they hold more than ``max_bytes``
        (``row_bytes``); True when it stopped for the bytes (there may be more rows)."""
        ...

    async def close(self) -> None: ...


def _regexp(pattern: str, value: str | None) -> int:
    # The pattern was compiled by the query's parameters (a dictionary look-up here).
    return 0 if value is None else int(compile_regex(pattern).fullmatch(value))


class _Deadline:
    """The deadline of the statement a reader connection is running (``inf`` between statements)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf

    def expired(self) -> bool:
        return time.monotonic() >= self.at


# SQLite virtual-machine instructions between two calls of the progress handler.
PROGRESS_OPS = 10_000


class SQLiteReader:
    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        threads: int = 4,
        busy_timeout_ms: int = 5000,
        query_timeout_ms: int = 5000,
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.query_timeout_s = query_timeout_ms / 1000
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhookfast-api-sqlite")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _conn(self) -> tuple[sqlite3.Connection, _Deadline]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite_store.connect(self.path, self.busy_timeout_ms, reader=True)
            deadline = _Deadline()

            def regexp(pattern: str, value: str | None) -> int:
                # The progress handler runs only every PROGRESS_OPS instructions, and a slow regex
                # makes each of them long: check the deadline on every call too.
                if deadline.expired():
                    conn.interrupt()  # the statement fails with "interrupted" after this row
                    return 0
                return _regexp(pattern, value)

            conn.create_function("wf_regexp", 2, regexp, deterministic=True)
            conn.set_progress_handler(deadline.expired, PROGRESS_OPS)  # true → "interrupted"
            self._local.conn, self._local.deadline = conn, deadline
            with self._lock:
                self._conns.append(conn)
        return conn, self._local.deadline

    def _run(self, conn: sqlite3.Connection, deadline: _Deadline, query: Query) -> Rows:
        deadline.at = time.monotonic() + self.query_timeout_s
        try:
            return conn.execute(*query).fetchall()
        finally:
            deadline.at = math.inf

    def _many_sync(self, queries: Sequence[Query]) -> list[Rows]:
        conn, deadline = self._conn()
        if len(queries) == 1:
            return [self._run(conn, deadline, queries[0])]
        conn.execute("BEGIN")  # deferred: the first SELECT takes the snapshot
        try:
            return [self._run(conn, deadline, query) for query in queries]
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    async def open(self) -> None:
        """Nothing to open ahead: a thread's connection costs well under a millisecond."""

    def _page_sync(self, query: Query, max_rows: int, max_bytes: int) -> tuple[Rows, bool]:
        conn, deadline = self._conn()
        deadline.at = time.monotonic() + self.query_timeout_s
        rows: Rows = []
        used = 0
        try:
            cur = conn.execute(*query)
            while len(rows) < max_rows:
                if used > max_bytes:
                    return rows, True
                batch = cur.fetchmany(1)  # one at a time: no round trip to save on SQLite
                if not batch:
                    break
                rows.extend(batch)
                used += sum(row_bytes(r) for r in batch)
            return rows, False
        finally:
            deadline.at = math.inf

    async def many(self, queries: Sequence[Query], binary: bool = False) -> list[Rows]:
        # ``binary`` is PostgreSQL's result format; SQLite returns Python values either way.
        rows: list[Rows] = await self._run_sync(self._many_sync, queries)
        return rows

    async def page(self, query: Query, max_rows: int, max_bytes: int = ANSWER_MAX_BYTES) -> tuple[Rows, bool]:
        page: tuple[Rows, bool] = await self._run_sync(self._page_sync, query, max_rows, max_bytes)
        return page

    async def _run_sync(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise StoreUnavailable("history reader is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except sqlite3.OperationalError as exc:
            if str(exc) == "interrupted":
                raise QueryTimeout("history query took too long") from exc
            raise StoreUnavailable(f"database busy or unavailable: {str(exc)[:80]}") from exc

    async def close(self) -> None:
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


class PostgresReader:
    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool: Any = None,
        max_size: int = 2,
        connect_timeout_s: float = 2.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        """With ``pool`` the reader borrows that psycopg ``AsyncConnectionPool`` (not closed here);
        without, it opens its own of up to ``max_size`` connections on first use."""
        self.url = url
        self._pool = pool
        self._own = pool is None
        self.max_size = max_size
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_ms = statement_timeout_ms
        self._opening: asyncio.Lock | None = None

    async def _configure(self, conn: Any) -> None:
        # Custom plans: psycopg prepares a statement on its fifth run, and PostgreSQL's generic
        # plan of the statistics then ignored the window (1.6-2x slower on 1M rows, docs/api.md).
        await conn.execute(
            f"SET statement_timeout = {int(self.statement_timeout_ms)}; "
            "SET default_transaction_read_only = on; "
            "SET plan_cache_mode = force_custom_plan"
        )

    async def _get_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                from webhookfast.storage.postgres import new_pool

                pool = new_pool(
                    self.url,
                    name="webhookfast-api",
                    min_size=1,
                    max_size=self.max_size,
                    connect_timeout_s=self.connect_timeout_s,
                    timeout_s=max(1.0, self.connect_timeout_s),
                    configure=self._configure,
                )
                await pool.open(wait=False)
                self._pool = pool
        return self._pool

    async def open(self) -> None:
        """Start connecting at startup, in the background (a database that is down does not hold up
        the start): the first page load then finds a connection ready instead of paying the
        connect, authentication and configure round trips (#14's first-load budget)."""
        await self._get_pool()

    async def page(self, query: Query, max_rows: int, max_bytes: int = ANSWER_MAX_BYTES) -> tuple[Rows, bool]:
        from psycopg.rows import tuple_row

        async def run(conn: Any) -> tuple[Rows, bool]:
            # A server-side cursor: rows come in as asked for, so a page of huge rows is cut
            # without ever holding the rest.
            async with conn.transaction():
                cur = conn.cursor(name="webhookfast_page", row_factory=tuple_row)
                try:
                    await cur.execute(*query)
                    rows: Rows = []
                    used = 0
                    # statement_timeout bounds each FETCH; the page as a whole gets the same time.
                    deadline = time.monotonic() + self.statement_timeout_ms / 1000
                    while len(rows) < max_rows:
                        if used > max_bytes:
                            return rows, True
                        if time.monotonic() > deadline:
                            raise QueryTimeout("history query took too long")
                        batch = await cur.fetchmany(min(PAGE_FETCH_ROWS, max_rows - len(rows)))
                        if not batch:
                            break
                        rows.extend(batch)
                        used += sum(row_bytes(r) for r in batch)
                    return rows, False
                finally:
                    await cur.close()

        result: tuple[Rows, bool] = await self._with_connection(run)
        return result

    async def many(self, queries: Sequence[Query], binary: bool = False) -> list[Rows]:
        from psycopg.rows import tuple_row

        async def run(conn: Any) -> list[Rows]:
            cur = conn.cursor(row_factory=tuple_row, binary=binary)
            if len(queries) == 1:
                await cur.execute(*queries[0])
                return [await cur.fetchall()]
            async with conn.transaction():
                # One snapshot for every query of the answer.
                await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                out = []
                for sql, params in queries:
                    await cur.execute(sql, params)
                    out.append(await cur.fetchall())
                return out

        result: list[Rows] = await self._with_connection(run)
        return result

    async def _with_connection(self, run: Any) -> Any:
        """``run(conn)`` on a pooled connection, its database errors as store errors."""
        import psycopg
        from psycopg import errors as pg_errors
        from psycopg_pool import PoolTimeout

        try:
            pool = await self._get_pool()
            async with pool.connection() as conn:
                return await run(conn)
        except pg_errors.InvalidRegularExpression as exc:
            raise QueryRefused("match", f"invalid regex: {str(exc)[:120]}") from exc
        except pg_errors.QueryCanceled as exc:
            raise QueryTimeout("history query took too long") from exc
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable("database unavailable") from exc

    async def close(self) -> None:
        if self._own and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def reader_for(store: Any, *, pg_max_size: int = 2) -> Reader:
    """The reader matching a store (SQLiteStore → threads, PostgresStore → its own small pool)."""
    dialect = getattr(store, "dialect", "")
    if dialect == "sqlite":
        return SQLiteReader(store.path)
    if dialect == "postgresql":
        return PostgresReader(
            store.url,
            max_size=pg_max_size,
            connect_timeout_s=getattr(store, "connect_timeout_s", 2.0),
        )
    raise ValueError(f"no history reader for store dialect {dialect!r}")
