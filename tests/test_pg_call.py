"""storage/pg_call.py against a real PostgreSQL: a named statement is prepared once per connection
and then only executed; a connection that loses it falls back to sending the statement whole; the
database's errors come back as psycopg's."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import psycopg
import pytest
from webhookfast.storage import pg_call
from webhookfast.storage.postgres import FLUSH_STATEMENT, connection_kwargs

pytestmark = pytest.mark.postgres

INT8 = 20
PLUS_ONE = pg_call.Statement("SELECT $1::int8 + 1", [INT8], name="webhookfast_test_plus_one")
DIVIDE = pg_call.Statement("SELECT 1 / $1::int8", [INT8], name="webhookfast_test_divide")


def int8(n: int) -> bytes:
    return struct.pack("!q", n)


def with_connection(url: str, fn: Callable[[psycopg.AsyncConnection], Awaitable[None]]) -> None:
    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(url, **connection_kwargs("test", 5))
        try:
            await fn(conn)
        finally:
            await conn.close()

    asyncio.run(main())


async def prepared_names(conn: psycopg.AsyncConnection) -> list[str]:
    cur = await conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
    return [row[0] for row in await cur.fetchall()]


async def calls(conn: psycopg.AsyncConnection) -> int:
    """How many times PostgreSQL has planned or run the statement ``PLUS_ONE`` prepares."""
    cur = await conn.execute("SELECT coalesce(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def test_a_named_statement_is_prepared_once_per_connection(pg_url: str) -> None:
    async def go(conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        for n in range(3):
            await pg_call.call(loop, conn, PLUS_ONE, [int8(n)])
        assert await prepared_names(conn) == ["webhookfast_test_plus_one"]
        # Three executions of the one prepared statement: it was not prepared again each time.
        assert await calls(conn) == 3

    with_connection(pg_url, go)


def test_a_statement_without_a_name_is_never_prepared(pg_url: str) -> None:
    unnamed = pg_call.Statement("SELECT $1::int8 + 1", [INT8])

    async def go(conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        await pg_call.call(loop, conn, unnamed, [int8(1)])
        assert await prepared_names(conn) == []

    with_connection(pg_url, go)


def test_a_connection_that_loses_its_prepared_statement_sends_it_whole(pg_url: str) -> None:
    async def go(conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        await pg_call.call(loop, conn, PLUS_ONE, [int8(1)])
        # What a transaction-mode pooler does to a client's session state, in effect.
        await conn.execute("DEALLOCATE ALL")
        await pg_call.call(loop, conn, PLUS_ONE, [int8(2)])
        await pg_call.call(loop, conn, PLUS_ONE, [int8(3)])
        # Not prepared again: on this connection, it would vanish again.
        assert await prepared_names(conn) == []

    with_connection(pg_url, go)


def test_an_error_of_a_prepared_statement_is_psycopgs_own(pg_url: str) -> None:
    async def go(conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        await pg_call.call(loop, conn, DIVIDE, [int8(1)])
        with pytest.raises(psycopg.errors.DivisionByZero):
            await pg_call.call(loop, conn, DIVIDE, [int8(0)])
        # The connection is usable and the statement still prepared after the error.
        await pg_call.call(loop, conn, DIVIDE, [int8(2)])
        assert await prepared_names(conn) == ["webhookfast_test_divide"]

    with_connection(pg_url, go)


def test_a_statement_that_cannot_be_prepared_raises_and_is_tried_again(pg_url: str) -> None:
    missing = pg_call.Statement("SELECT webhookfast_test_missing($1::int8)", [INT8], name="webhookfast_test_missing")

    async def go(conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(psycopg.errors.UndefinedFunction):
            await pg_call.call(loop, conn, missing, [int8(1)])
        await conn.execute(
            "CREATE FUNCTION webhookfast_test_missing(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT $1'"
        )
        await pg_call.call(loop, conn, missing, [int8(1)])
        assert await prepared_names(conn) == ["webhookfast_test_missing"]

    with_connection(pg_url, go)


def test_the_flush_statement_has_a_name() -> None:
    # The store's flushes go through the prepared path (what the tests above cover).
    assert FLUSH_STATEMENT.name == b"webhookfast_flush"
