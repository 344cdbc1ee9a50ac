"""Issue #11, the write path: whatever the decoder accepts is storable on both stores, and a flush
the database refuses for one request's content never holds up the other requests.

The refusals here come from a test-only fault installed in the test's database (a CHECK constraint
on PostgreSQL, a trigger on SQLite, both refusing the alertname ``Poison``): a fault that no schema
fix removes, standing for any data or integrity error the database may raise for one request's
rows.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from support.net import Response
from support.servers import ServerFactory
from webhookfast._core import Batch, decode
from webhookfast.history.params import ListParams, parse_params
from webhookfast.history.sql import ALERTNAME_KEY_CHARS, POSTGRES, list_alerts
from webhookfast.ingest.batcher import Batcher
from webhookfast.storage import Store, StoreRejected, WriteResult
from webhookfast.storage.postgres import PostgresStore
from webhookfast.storage.sqlite import SQLiteStore

POISON = "Poison"


def payload(name: str, n: int = 2) -> bytes:
    return orjson.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "hostile-store",
            "alerts": [
                {"status": "firing", "labels": {"alertname": name, "i": str(j)}, "startsAt": "2026-11-27T10:00:00Z"}
                for j in range(n)
            ],
        }
    )


def incompressible(n: int) -> str:
    """``n`` characters that neither pglz nor lz4 can shrink (index entries are compressed first)."""
    return base64.b64encode(os.urandom(n)).decode()[:n]


def install_poison(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                f"CREATE TRIGGER test_poison BEFORE INSERT ON label_sets WHEN NEW.alertname = '{POISON}' "
                "BEGIN SELECT RAISE(ABORT, 'test fault: poison alert'); END"
            )
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE label_sets ADD CONSTRAINT test_poison CHECK (alertname <> '{POISON}')")


def stored(url: str) -> tuple[set[str], int]:
    """The alertnames in label_sets and the number of alert instances."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            names = {r[0] for r in conn.execute("SELECT alertname FROM label_sets")}
            return names, conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    with psycopg.connect(url) as conn:
        names = {r[0] for r in conn.execute("SELECT alertname FROM label_sets")}
        return names, conn.execute("SELECT count(*) FROM alerts").fetchone()[0]  # type: ignore[index]


@pytest.fixture(params=["sqlite", "sqlite-python", "postgres-unnest", "postgres-copy"])
def store_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable[[], Store]]]:
    """(database URL, a factory of an unopened store on it), the fault installed, on each store,
    each of PostgreSQL's two merge paths and both of SQLite's writers (the Rust core's, and
    Python's sqlite3 where there is no shared SQLite library)."""
    if request.param.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/wf.db"
        SQLiteStore(url).migrate()
        install_poison(url)
        native = request.param == "sqlite"
        yield url, lambda: SQLiteStore(url, native_writer=native)
        return
    url = request.getfixturevalue("pg_url")
    install_poison(url)
    merge = request.param.removeprefix("postgres-")
    yield url, lambda: PostgresStore(url, merge=merge)


def recording(store: Store) -> list[int]:
    """Record how many batches each write of ``store`` carries."""
    writes: list[int] = []
    inner = store.write

    async def write(batches: Sequence[Batch]) -> WriteResult:
        writes.append(len(batches))
        return await inner(batches)

    store.write = write  # type: ignore[method-assign]
    return writes


NAMES = [f"A{i}" for i in range(3)] + [POISON] + [f"B{i}" for i in range(4)]


def test_commit_mode_refuses_only_the_poison_request(store_case: tuple[str, Callable[[], Store]]) -> None:
    url, make = store_case
    refused: list[int] = []

    async def main() -> tuple[list[object], list[int]]:
        store = make()
        writes = recording(store)
        await store.open()
        batcher = Batcher(store, on_refused=refused.append)
        batcher.start()
        try:
            results = await asyncio.gather(
                *(batcher.submit(decode(payload(name)), f"req-{name}") for name in NAMES), return_exceptions=True
            )
            # The write path keeps moving after the refusal.
            await batcher.submit(decode(payload("After")), "req-After")
            assert batcher.queued_alerts == 0 and batcher.queued_bytes == 0
        finally:
            await batcher.close()
            await store.close()
        return results, writes

    results, writes = asyncio.run(main())
    assert writes[0] == len(NAMES)  # they shared one flush, which the database refused
    assert isinstance(results[NAMES.index(POISON)], StoreRejected)
    assert [r for i, r in enumerate(results) if i != NAMES.index(POISON)] == [False] * (
        len(NAMES) - 1
    )  # committed, not spooled
    names, instances = stored(url)
    # Nothing of the refused request (its other alert was valid), everything of the others.
    assert names == (set(NAMES) - {POISON}) | {"After"}
    assert instances == 2 * len(NAMES)
    assert refused == [2]
    # Isolation costs a few writes, not one per request.
    assert len(writes) <= 1 + 2 * 3 + 1


def test_enqueue_mode_drops_and_logs_the_poison_request(
    store_case: tuple[str, Callable[[], Store]], caplog: pytest.LogCaptureFixture
) -> None:
    url, make = store_case
    refused: list[int] = []

    async def main() -> list[int]:
        store = make()
        writes = recording(store)
        await store.open()
        batcher = Batcher(store, ack_enqueue=True, retry_backoff_s=0.05, on_refused=refused.append)
        batcher.start()
        try:
            for name in NAMES:  # answered at once; queued before the flusher runs
                await batcher.submit(decode(payload(name)), f"req-{name}")
            for _ in range(200):  # today's code retried the refused flush for ever
                if batcher.queued_alerts == 0:
                    break
                await asyncio.sleep(0.02)
            await batcher.submit(decode(payload("After")), "req-After")
        finally:
            await batcher.close(timeout_s=5)
            await store.close()
        return writes

    with caplog.at_level(logging.ERROR, logger="webhookfast"):
        writes = asyncio.run(main())
    assert writes[0] == len(NAMES)
    names, instances = stored(url)
    assert names == (set(NAMES) - {POISON}) | {"After"}
    assert instances == 2 * len(NAMES)
    assert refused == [2]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # the refusal, and no shutdown loss
    assert f"req-{POISON}" in errors[0] and "2 alerts" in errors[0] and "dropped" in errors[0]


def test_several_poison_requests_in_one_flush(store_case: tuple[str, Callable[[], Store]]) -> None:
    url, make = store_case
    names_in = [POISON if i % 5 == 2 else f"N{i}" for i in range(16)]

    async def main() -> list[object]:
        store = make()
        await store.open()
        batcher = Batcher(store)
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit(decode(payload(n, 1))) for n in names_in), return_exceptions=True
            )
        finally:
            await batcher.close()
            await store.close()

    results = asyncio.run(main())
    assert [isinstance(r, StoreRejected) for r in results] == [n == POISON for n in names_in]
    assert all(r is False for r, n in zip(results, names_in, strict=True) if n != POISON)
    names, _ = stored(url)
    assert names == set(names_in) - {POISON}


# -- through the real server ---------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/server.db"
        SQLiteStore(url).migrate()
        return url
    return str(request.getfixturevalue("pg_url"))


def post_all(server: Any, bodies: list[bytes]) -> list[Response]:
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: server.post("/webhook", b), bodies))


def metric(server: Any, name: str) -> float:
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def test_server_commit_answers_422_to_the_poison_request_only(server_factory: ServerFactory, database: str) -> None:
    install_poison(database)
    server = server_factory(database)
    responses = post_all(server, [payload(n) for n in NAMES])
    for name, resp in zip(NAMES, responses, strict=True):
        if name == POISON:
            assert resp.status == 422, resp.text
            err = resp.json()["error"]  # type: ignore[index]
            assert err["code"] == "unstorable"
            assert err["request_id"] == resp.headers["x-request-id"]
            assert "poison" not in err["message"].lower()  # the database's words stay in the log
        else:
            assert resp.status == 200, resp.text
    assert server.post("/webhook", payload("After")).status == 200
    names, _ = stored(database)
    assert names == (set(NAMES) - {POISON}) | {"After"}
    assert metric(server, "webhookfast_store_refused_requests_total") == 1
    assert metric(server, "webhookfast_store_refused_alerts_total") == 2
    assert metric(server, "webhookfast_store_errors_total") == 0
    server.stop()
    assert "refused by the database" in server.log()


def test_server_enqueue_keeps_the_queue_moving(server_factory: ServerFactory, database: str) -> None:
    install_poison(database)
    server = server_factory(database, extra_args=["--ack", "enqueue"])
    assert server.post("/webhook", payload(POISON)).status == 200  # acknowledged before the commit
    for name in ("After1", "After2"):
        assert server.post("/webhook", payload(name)).status == 200
    deadline = time.monotonic() + 10
    while stored(database)[0] != {"After1", "After2"}:
        assert time.monotonic() < deadline, stored(database)
        time.sleep(0.05)
    assert metric(server, "webhookfast_store_refused_requests_total") == 1
    server.stop()
    log = server.log()
    assert "refused by the database, dropped" in log
    assert "not flushed" not in log


# -- anything the decoder accepts is storable ------------------------------------------------------


@pytest.mark.parametrize("size", [3000, 65_536])
def test_long_incompressible_alertname_is_stored_and_found(
    server_factory: ServerFactory, database: str, size: int
) -> None:
    """A btree entry may hold ~2.7 KB: an alertname index refused such label sets, failing every
    flush that carried one (the default value limit is 64 KiB)."""
    name = incompressible(size)
    server = server_factory(database)
    resp = server.post("/webhook", payload(name, 1))
    assert resp.status == 200, resp.text
    assert name in stored(database)[0]
    if size <= 4096:  # keeps the query string a reasonable size
        query = urllib.parse.urlencode({"match": f'{{alertname="{name}"}}'})
        got = server.get(f"/api/v1/alerts?{query}")
        assert got.status == 200, got.text
        assert [a["labels"]["alertname"] for a in got.json()["alerts"]] == [name]  # type: ignore[index]


def test_alertnames_that_share_the_indexed_prefix_are_told_apart(server_factory: ServerFactory, database: str) -> None:
    """The index keys on the first ALERTNAME_KEY_CHARS characters: the matcher still compares
    the whole name."""
    prefix = incompressible(ALERTNAME_KEY_CHARS + 100)
    server = server_factory(database)
    for tail in ("A", "B"):
        assert server.post("/webhook", payload(prefix + tail, 1)).status == 200
    query = urllib.parse.urlencode({"match": f'{{alertname="{prefix}B"}}'})
    got = server.get(f"/api/v1/alerts?{query}")
    assert got.status == 200, got.text
    assert [a["labels"]["alertname"] for a in got.json()["alerts"]] == [prefix + "B"]  # type: ignore[index]


def test_alertname_matcher_uses_the_alertname_index(pg_url: str) -> None:
    """Migration 0011's btree on an alertname prefix serves the history API's alertname="x"
    matcher (its key length is the matcher's)."""
    p = parse_params(ListParams, 'match={alertname="HighCPU"}', int(time.time() * 1e6))
    sql, params = list_alerts(POSTGRES, p, None)
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))  # type: ignore[arg-type]
        definition = conn.execute("SELECT pg_get_indexdef('label_sets_alertname'::regclass)").fetchone()
    assert "label_sets_alertname" in plan, plan
    assert definition is not None and definition[0].endswith(f'USING btree ("left"(alertname, {ALERTNAME_KEY_CHARS}))')


# -- what counts as a refusal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "content"),
    [
        (psycopg.errors.CheckViolation, True),
        (psycopg.errors.UniqueViolation, True),
        (psycopg.errors.InvalidTextRepresentation, True),
        (psycopg.errors.ProgramLimitExceeded, True),  # e.g. an index row too large
        (psycopg.DataError, True),  # psycopg's own, before sending (a NUL in a string)
        (psycopg.errors.QueryCanceled, False),  # statement_timeout
        (psycopg.errors.AdminShutdown, False),
        (psycopg.errors.UndefinedTable, False),  # not migrated: the database's state, not the rows
        (psycopg.errors.LockNotAvailable, False),
        (psycopg.OperationalError, False),  # connection lost
    ],
)
def test_postgres_content_errors_are_told_from_availability_errors(error: type[psycopg.Error], content: bool) -> None:
    from webhookfast.storage.postgres import refused_content

    assert refused_content(error("x")) is content


@pytest.mark.parametrize("merge", ["unnest", "copy"])
def test_a_size_limit_is_a_refusal_too(pg_url: str, merge: str) -> None:
    """A real PostgreSQL limit, not a test constraint: a btree index a DBA adds on severity
    (test-only here) refuses a long incompressible value with 54000 program_limit_exceeded."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX test_severity ON label_sets (severity)")
    long_severity = incompressible(4000)

    def body(name: str, severity: str = "page") -> bytes:
        return orjson.dumps({"labels": {"alertname": name, "severity": severity}, "startsAt": "2026-11-27T10:00:00Z"})

    async def main() -> list[object]:
        store = PostgresStore(pg_url, merge=merge)
        await store.open()
        batcher = Batcher(store)
        batcher.start()
        try:
            return await asyncio.gather(
                batcher.submit(decode(body("Before"))),
                batcher.submit(decode(body("Long", long_severity))),
                batcher.submit(decode(body("After"))),
                return_exceptions=True,
            )
        finally:
            await batcher.close()
            await store.close()

    results = asyncio.run(main())
    assert results[0] is False and results[2] is False
    assert isinstance(results[1], StoreRejected) and "54000" in str(results[1])
    assert stored(pg_url)[0] == {"Before", "After"}


class FlakyStore(SQLiteStore):
    """The real SQLite store whose database becomes unavailable for its ``down``-th write."""

    def __init__(self, url: str, down: int) -> None:
        super().__init__(url)
        self.writes = 0
        self.down = down

    async def write(self, batches: Sequence[Batch]) -> WriteResult:
        self.writes += 1
        if self.writes == self.down:
            from webhookfast.storage import StoreUnavailable

            raise StoreUnavailable("database went away")
        return await super().write(batches)


@pytest.mark.parametrize("ack_enqueue", [False, True])
def test_an_outage_while_isolating_fails_or_requeues_only_the_unsettled(tmp_path: Path, ack_enqueue: bool) -> None:
    from webhookfast.storage import StoreUnavailable

    url = f"sqlite:///{tmp_path}/wf.db"
    SQLiteStore(url).migrate()
    install_poison(url)
    names = ["A0", "A1", POISON, "B0", "B1", "B2"]

    async def main() -> list[object]:
        # Write 1: the whole flush, refused. Write 2: [A0, A1, Poison] refused. Write 3: [A0],
        # committed. Write 4: [A1, Poison]: the database is down.
        store = FlakyStore(url, down=4)
        await store.open()
        batcher = Batcher(store, ack_enqueue=ack_enqueue, retry_backoff_s=0.05)
        batcher.start()
        try:
            results = await asyncio.gather(*(batcher.submit(decode(payload(n))) for n in names), return_exceptions=True)
            for _ in range(200):
                if batcher.queued_alerts == 0:
                    break
                await asyncio.sleep(0.02)
            return results
        finally:
            await batcher.close(timeout_s=5)
            await store.close()

    results = asyncio.run(main())
    if ack_enqueue:
        # All acknowledged; the unsettled ones went back to the queue and were stored after.
        assert results == [False] * len(names)
        assert stored(url)[0] == set(names) - {POISON}
    else:
        assert results[0] is False  # committed before the outage
        assert all(isinstance(r, StoreUnavailable) for r in results[1:]), results  # 503, retried by the sender
        assert stored(url)[0] == {"A0"}
