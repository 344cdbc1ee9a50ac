"""A flush's one statement sent through libpq's asynchronous API on a pool connection, without
psycopg's cursor.

The parameters are already PostgreSQL binary arrays (RowEncoder.pg_arrays): nothing is left to
adapt, and psycopg's cursor, adapters and wait generator cost about 190 µs of the event loop per
call (282 µs against 92 µs for a 1-alert flush, measured with ``time.thread_time``): at 2,000
requests/s, when flushes are small, that was a fifth of the core. psycopg still opens, configures,
checks and pools the connection, and every error is psycopg's own (``error_from_result``, or the
``OperationalError`` that libpq's failures raise), so callers handle them as before.

A named statement is prepared once per connection, so that each call sends only its parameters
and PostgreSQL neither parses nor plans the call again (a 1-alert flush: ~60 µs less of
PostgreSQL's ~650 µs of CPU). A connection on which a prepared statement vanishes (a pooler that hands each
transaction another server connection, such as PgBouncer in transaction mode before 1.21) sends
its statements whole from then on.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence

import psycopg
from psycopg import errors, pq

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
# invalid_sql_statement_name: "prepared statement ... does not exist"
_NO_SUCH_STATEMENT = "26000"


class Statement:
    """SQL with ``$n`` parameters, all sent in binary with the given type OIDs; prepared once per
    connection under ``name`` unless that is empty."""

    __slots__ = ("formats", "name", "sql", "types")

    def __init__(self, sql: str, types: Sequence[int], name: str = "") -> None:
        self.sql = sql.encode()
        self.types = list(types)
        self.formats = [pq.Format.BINARY] * len(self.types)
        self.name = name.encode()


# The statements prepared on each open connection; None for one that must not prepare any more.
_prepared: weakref.WeakKeyDictionary[psycopg.AsyncConnection, set[bytes] | None] = weakref.WeakKeyDictionary()
_UNSEEN: set[bytes] = set()  # a connection's entry before its first named statement (never filled)


async def _ready(
    loop: asyncio.AbstractEventLoop, watch: Callable[..., object], unwatch: Callable[[int], object], fd: int
) -> None:
    """Until ``fd`` is ready, by the loop's ``add_reader``/``remove_reader`` (or writer) pair."""
    done = loop.create_future()
    watch(fd, done.set_result, None)
    try:
        await done
    finally:
        unwatch(fd)


async def call(
    loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection, statement: Statement, params: Sequence[bytes]
) -> None:
    """Run ``statement`` once (in autocommit: its own transaction) and wait for it to finish;
    its result rows are dropped. Raises what psycopg would have raised."""
    pgconn = conn.pgconn
    name = statement.name
    names = _prepared.get(conn, _UNSEEN) if name else None
    if names is _UNSEEN:
        names = _prepared[conn] = set()
    if names is not None:
        if name not in names:
            pgconn.send_prepare(name, statement.sql, statement.types)
            await _finish(loop, conn)
            names.add(name)
        pgconn.send_query_prepared(name, params, statement.formats, pq.Format.TEXT)
        try:
            await _finish(loop, conn)
            return
        except psycopg.Error as exc:
            if exc.sqlstate != _NO_SUCH_STATEMENT:
                raise
        # Refused at Bind, before executing anything: sent whole instead, safely.
        _prepared[conn] = None
    pgconn.send_query_params(statement.sql, params, statement.types, statement.formats, pq.Format.TEXT)
    await _finish(loop, conn)


async def _finish(loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection) -> None:
    """Send what is queued, wait for every result of the command, raise its error if any."""
    pgconn = conn.pgconn
    fd = pgconn.socket
    # Nonblocking (psycopg's connections are): a large flush goes out as the socket takes it.
    while pgconn.flush():
        await _ready(loop, loop.add_writer, loop.remove_writer, fd)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        await _ready(loop, loop.add_reader, loop.remove_reader, fd)
    error: psycopg.Error | None = None
    while (result := pgconn.get_result()) is not None:
        if error is None and result.status not in (_TUPLES_OK, _COMMAND_OK):
            error = errors.error_from_result(result, encoding=conn.info.encoding)
    if error is not None:
        raise error
