"""PostgresStore against a real PostgreSQL: idempotency, state machine, concurrency, migrations,
retention, and behaviour while the server is down."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql
from support.postgres import PostgresServer, database_url, empty_database, read_tables
from webhookfast._core import Batch, decode, fingerprint
from webhookfast.storage import StoreUnavailable, migrations, open_store
from webhookfast.storage.postgres import LABEL_INDEX_LOCK, PostgresStore, new_pool

pytestmark = pytest.mark.postgres

PAYLOADS = Path(__file__).resolve().parent / "fixtures" / "payloads"
T0 = 1_795_000_000_000_000  # received_at base (µs)
T = TypeVar("T")


def run_with_store(url: str, fn: Callable[[PostgresStore], Awaitable[T]], **options: object) -> T:
    async def main() -> T:
        store = open_store(url, **options)
        assert isinstance(store, PostgresStore)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(main())


def write_all(url: str, flushes: Sequence[Sequence[Batch]]) -> None:
    async def go(store: PostgresStore) -> None:
        for batches in flushes:
            await store.write(batches)

    run_with_store(url, go)


def payload(alerts: list[dict[str, object]], receiver: str = "webhookfast") -> bytes:
    return json.dumps(
        {
            "receiver": receiver,
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "version": "4",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
        }
    ).encode()


def am_alert(
    labels: dict[str, str], starts_at: str, status: str = "firing", ends_at: str = "0001-01-01T00:00:00Z"
) -> dict[str, object]:
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "s"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "",
        "fingerprint": fingerprint(labels),
    }


LABELS = {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"}
STARTS = "2026-11-27T10:00:00Z"
ENDS = "2026-11-27T10:30:00.5Z"


def firing(received_at_us: int, receiver: str = "webhookfast") -> Batch:
    return decode(payload([am_alert(LABELS, STARTS)], receiver), received_at_us=received_at_us)


def resolved(received_at_us: int) -> Batch:
    return decode(payload([am_alert(LABELS, STARTS, "resolved", ENDS)]), received_at_us=received_at_us)


def test_same_batch_twice_is_idempotent(pg_url: str) -> None:
    body = (PAYLOADS / "firing_single.json").read_bytes()
    write_all(pg_url, [[decode(body, received_at_us=T0)], [decode(body, received_at_us=T0 + 5)]])
    got = read_tables(pg_url)
    assert len(got["label_sets"]) == 1
    assert [(e["fingerprint"], e["status"]) for e in got["alert_events"]] == [("1a8c34c6c39d78c5", "firing")]
    (a,) = got["alerts"]
    assert (a["notifications"], a["first_seen"], a["last_seen"]) == (2, T0, T0 + 5)
    assert got["alert_events"][0]["received_at"] == T0  # history keeps the first delivery


def test_firing_then_resolved_keeps_both_states(pg_url: str) -> None:
    write_all(pg_url, [[firing(T0)], [firing(T0 + 1)], [resolved(T0 + 2)], [resolved(T0 + 3)]])
    got = read_tables(pg_url)
    assert [e["status"] for e in got["alert_events"]] == ["firing", "resolved"]
    assert got["alert_events"][0]["ends_at"] is None
    (a,) = got["alerts"]
    assert a["status"] == "resolved"
    assert a["ends_at"] == got["alert_events"][1]["ends_at"] is not None
    assert (a["notifications"], a["first_seen"], a["last_seen"]) == (4, T0, T0 + 3)


def test_late_firing_does_not_reopen_a_resolved_instance(pg_url: str) -> None:
    write_all(pg_url, [[resolved(T0 + 10)], [firing(T0 + 5, receiver="late")]])
    got = read_tables(pg_url)
    assert [e["status"] for e in got["alert_events"]] == ["firing", "resolved"]
    (a,) = got["alerts"]
    assert a["status"] == "resolved"
    assert a["ends_at"] == next(e["ends_at"] for e in got["alert_events"] if e["status"] == "resolved")
    # first/last seen follow the receive times, whatever the arrival order; latest write's receiver
    assert (a["first_seen"], a["last_seen"], a["notifications"], a["receiver"]) == (T0 + 5, T0 + 10, 2, "late")


def test_same_instance_twice_in_one_flush(pg_url: str) -> None:
    # Two deliveries in one flush count twice; an alert repeated inside one request counts once.
    repeated = decode((PAYLOADS / "prometheus_firing_repeated_in_batch.json").read_bytes(), received_at_us=T0)
    assert len(set(repeated.fingerprints())) < len(repeated)
    write_all(pg_url, [[firing(T0), firing(T0 + 1), repeated]])
    got = read_tables(pg_url)
    by_fp = {a["fingerprint"]: a for a in got["alerts"]}
    fp = fingerprint(LABELS)
    assert by_fp[fp]["notifications"] == 2
    assert (by_fp[fp]["first_seen"], by_fp[fp]["last_seen"]) == (T0, T0 + 1)
    assert sum(1 for e in got["alert_events"] if e["fingerprint"] == fp) == 1
    assert all(a["notifications"] == 1 for f, a in by_fp.items() if f != fp)
    assert len(got["alert_events"]) == len(got["alerts"]) == len(set(repeated.fingerprints())) + 1


def test_two_stores_writing_the_same_batches_concurrently(pg_url: str) -> None:
    # Two webhookfast processes (here: two stores, each in its own thread and event loop, each
    # with two flushes in flight) receive the same notifications (an HA Alertmanager pair).
    n_alerts, rounds = 150, 12

    def make_flushes(reverse: bool, base: int) -> list[list[Batch]]:
        flushes = []
        for r in range(rounds):
            alerts = []
            for i in range(n_alerts):
                labels = {"alertname": f"Ha{i % 7}", "instance": f"node-{i}", "severity": "warning"}
                if r < rounds // 2:
                    alerts.append(am_alert(labels, f"2026-11-27T09:{i % 60:02d}:00Z"))
                else:
                    alerts.append(
                        am_alert(labels, f"2026-11-27T09:{i % 60:02d}:00Z", "resolved", "2026-11-27T11:00:00Z")
                    )
            flushes.append([decode(payload(alerts), received_at_us=base + r)])
        return flushes[::-1] if reverse else flushes

    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(reverse: bool, base: int) -> None:
        flushes = make_flushes(reverse, base)

        async def go(store: PostgresStore) -> None:
            barrier.wait(timeout=30)
            sem = asyncio.Semaphore(store.default_flush_concurrency)

            async def one(batches: list[Batch]) -> None:
                async with sem:
                    await store.write(batches)

            await asyncio.gather(*(one(f) for f in flushes))

        try:
            run_with_store(pg_url, go, pool_max_size=4)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(rev, T0 + 1000 * k)) for k, rev in enumerate((False, True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    got = read_tables(pg_url)
    assert len(got["label_sets"]) == n_alerts
    assert len(got["alert_events"]) == 2 * n_alerts  # one firing and one resolved row per instance
    keys = [(e["fingerprint"], e["starts_at"], e["status"]) for e in got["alert_events"]]
    assert len(set(keys)) == len(keys)
    assert len(got["alerts"]) == n_alerts
    for a in got["alerts"]:
        assert a["status"] == "resolved"
        assert a["notifications"] == 2 * rounds
        assert a["first_seen"] == T0 and a["last_seen"] == T0 + 1000 + rounds - 1


def test_migrate_twice_is_a_no_op(pg_url: str) -> None:
    assert PostgresStore(pg_url).migrate() == []
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(m.version, m.name) for m in migrations.load("postgres")]


def test_concurrent_migrations_apply_once(postgres_server: PostgresServer) -> None:
    dbname = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = database_url(postgres_server.url, dbname)
    try:
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def migrate() -> None:
            try:
                results.append(PostgresStore(url).migrate())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=migrate) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(results) == 4, "an applier did not finish"
        every = [f"{m.version:04d}_{m.name}" for m in migrations.load("postgres")]
        assert every[0] == "0001_init"
        # Each migration is applied exactly once (the lock is taken per migration, so two
        # appliers may share the work), each applier in version order.
        assert sorted(name for applied in results for name in applied) == every
        assert all(applied == sorted(applied) for applied in results)
        with psycopg.connect(url) as conn:
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'alert_events'::regclass"
            ).fetchone()
            assert parts == (4,)  # DEFAULT + this month + 2 ahead
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def _us(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def _partitions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'alert_events'::regclass ORDER BY 1"
            ).fetchall()
        ]


def test_prune(pg_url: str) -> None:
    now = datetime.now(timezone.utc)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    old = [am_alert({"alertname": "Old", "i": str(i)}, "2020-03-04T05:06:07Z") for i in range(3)]
    old.append(am_alert({"alertname": "Shared"}, "2020-03-04T05:06:07Z", "resolved", "2020-03-04T06:00:00Z"))
    recent_start = this_month.strftime("%Y-%m-%dT%H:%M:%S.000001Z")
    new = [am_alert({"alertname": "New", "i": str(i)}, recent_start) for i in range(2)]
    new.append(am_alert({"alertname": "Shared"}, recent_start))
    write_all(pg_url, [[decode(payload(old + new), received_at_us=T0)]])
    before = read_tables(pg_url)
    assert (len(before["label_sets"]), len(before["alert_events"]), len(before["alerts"])) == (6, 7, 7)

    # 1. cutoff at the start of this month: the 2020 rows (DEFAULT partition) go; "Shared" keeps
    #    its label set because a recent alert still uses it.
    async def prune_at(store: PostgresStore, when: datetime) -> int:
        return await store.prune(_us(when))

    n = run_with_store(pg_url, lambda s: prune_at(s, this_month))
    got = read_tables(pg_url)
    assert n == 4 + 4 + 3  # 4 events, 4 alerts, 3 label sets ("Old" × 3)
    assert sorted(ls["labels"].get("i", "shared") for ls in got["label_sets"]) == ["0", "1", "shared"]
    assert len(got["alert_events"]) == len(got["alerts"]) == 3
    assert run_with_store(pg_url, lambda s: prune_at(s, this_month)) == 0  # idempotent

    # 2. cutoff past this month's partition: the partition is dropped (not deleted from).
    parts = _partitions(pg_url)
    this_part = "alert_events_" + this_month.strftime("%Ym%m")
    assert this_part in parts
    n = run_with_store(
        pg_url,
        lambda s: prune_at(
            s, datetime(this_month.year + (this_month.month == 12), this_month.month % 12 + 1, 1, tzinfo=timezone.utc)
        ),
    )
    assert n == 3 + 3 + 3 + 1  # and the request's notification group, last used this month
    assert this_part not in _partitions(pg_url)
    assert read_tables(pg_url) == {"label_sets": [], "alert_events": [], "alerts": []}

    # 3. writes for this month still work (DEFAULT catches them) and the partition comes back,
    #    the rows moved into it, when partitions are ensured again (migrate / store open).
    write_all(pg_url, [[decode(payload(new), received_at_us=T0)]])
    assert PostgresStore(pg_url).migrate() == []
    assert this_part in _partitions(pg_url)
    with psycopg.connect(pg_url) as conn:
        where = conn.execute("SELECT DISTINCT tableoid::regclass::text FROM alert_events").fetchall()
    assert where == [(this_part,)]


def test_down_server_ping_and_write_then_recovery(pg_url: str, postgres_server: PostgresServer) -> None:
    if postgres_server.external:
        pytest.skip("WEBHOOKFAST_TEST_DATABASE_URL names an external server that the tests cannot stop")

    async def scenario(store: PostgresStore) -> None:
        await store.write([firing(T0)])
        assert await store.ping() is True

        await asyncio.to_thread(postgres_server.stop)
        try:
            t0 = time.monotonic()
            assert await store.ping() is False
            assert time.monotonic() - t0 < 5  # ping never hangs
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.write([firing(T0 + 1)])
            assert time.monotonic() - t0 < 10  # bounded by write_deadline_s
            assert await store.ping() is False
        finally:
            await asyncio.to_thread(postgres_server.start)

        # The same store (no reopen) recovers by itself.
        deadline = time.monotonic() + 30
        while not await store.ping():
            assert time.monotonic() < deadline, "pool did not reconnect within 30 s"
            await asyncio.sleep(0.2)
        await store.write([resolved(T0 + 2)])

    run_with_store(pg_url, scenario, write_deadline_s=2.0, connect_timeout_s=1.0)
    got = read_tables(pg_url)
    # The write acknowledged before the stop survived the restart; the failed one left nothing.
    assert [e["status"] for e in got["alert_events"]] == ["firing", "resolved"]
    assert got["alerts"][0]["notifications"] == 2


def test_a_restart_between_two_flushes_costs_no_failed_write(pg_url: str, postgres_server: PostgresServer) -> None:
    """A connection that was busy a moment ago is not checked before its next flush (a round
    trip per flush): when the server restarted in between, the flush retries on a new one."""
    if postgres_server.external:
        pytest.skip("WEBHOOKFAST_TEST_DATABASE_URL names an external server that the tests cannot stop")

    async def scenario(store: PostgresStore) -> None:
        await store.write([firing(T0)])
        await asyncio.to_thread(postgres_server.stop)
        await asyncio.to_thread(postgres_server.start)
        await store.write([resolved(T0 + 1)])  # at once: the pooled connection is dead

    run_with_store(pg_url, scenario, write_deadline_s=5.0, connect_timeout_s=2.0, pool_max_size=1)
    got = read_tables(pg_url)
    assert [e["status"] for e in got["alert_events"]] == ["firing", "resolved"]
    assert got["alerts"][0]["notifications"] == 2


def test_the_flush_function_merges_by_the_shared_rule() -> None:
    """The migrations that define webhookfast_flush (0010, then 0012) spell out storage/upsert.py's
    rule for current state, and its slack for groups: they must stay the same text."""
    from webhookfast.storage.upsert import GROUP_LAST_USED_SLACK_S, POSTGRES_ALERTS_CONFLICT

    flushes = [m for m in migrations.load("postgres") if "FUNCTION webhookfast_flush(" in m.sql]
    assert [m.version for m in flushes] == [10, 12]
    for flush in flushes:
        words = " ".join(flush.sql.split())
        assert " ".join(POSTGRES_ALERTS_CONFLICT.split()) + ";" in words
        assert words.count(f"interval '{GROUP_LAST_USED_SLACK_S} seconds'") == words.count("UPDATE notification_groups")


def test_open_does_not_block_while_the_server_is_down(postgres_server: PostgresServer) -> None:
    # A port nothing listens on: open() returns promptly, ping is False, write is StoreUnavailable.
    from support.postgres import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"

    async def go() -> None:
        store = PostgresStore(url, connect_timeout_s=1.0, write_deadline_s=1.0)
        t0 = time.monotonic()
        await store.open()
        try:
            assert time.monotonic() - t0 < 3
            assert await store.ping() is False
            with pytest.raises(StoreUnavailable):
                await store.write([firing(T0)])
        finally:
            await store.close()

    asyncio.run(go())


def test_the_history_api_connects_at_startup_not_on_the_first_page_load(pg_url: str, server_factory) -> None:  # type: ignore[no-untyped-def]
    """The web page's first load must not pay for connecting (#14's 500 ms budget): a started
    worker already holds its history connection before anyone asks for history."""
    server_factory(pg_url)
    seen = 0
    for _ in range(100):
        with psycopg.connect(pg_url, autocommit=True) as conn:
            (seen,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'webhookfast-api'"
            ).fetchone()  # type: ignore[misc]
        if seen:
            break
        time.sleep(0.1)
    assert seen >= 1


def test_the_pool_hands_out_the_connection_returned_last(pg_url: str) -> None:
    """HotFirstPool: the next flush runs on the backend that ran the last one (its caches warm)."""

    async def configure(conn: psycopg.AsyncConnection) -> None:
        return None

    async def main() -> None:
        pool = new_pool(
            pg_url, name="test", min_size=3, max_size=3, connect_timeout_s=5, timeout_s=5, configure=configure
        )
        await pool.open(wait=True)
        try:
            a, b, c = [await pool.getconn() for _ in range(3)]
            for conn in (a, b, c):
                await pool.putconn(conn)
            taken = [await pool.getconn() for _ in range(3)]
            assert taken == [c, b, a]
            for conn in taken:
                await pool.putconn(conn)
        finally:
            await pool.close()

    asyncio.run(main())


def test_a_new_connection_runs_an_empty_flush_before_its_first_write(pg_url: str) -> None:
    """PostgresStore's pool configures each connection by preparing the flush and running it with
    nothing to write, so the first requests after a start (or a connection's replacement) do not
    wait for a cold backend. It writes nothing."""

    async def go(store: PostgresStore) -> None:
        pool = store._require_pool()
        await pool.wait(timeout=10)
        conn = await pool.getconn()
        try:
            cur = await conn.execute(
                "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements ORDER BY name"
            )
            assert await cur.fetchall() == [("webhookfast_flush", 1)]
        finally:
            await pool.putconn(conn)

    run_with_store(pg_url, go)
    assert all(not rows for rows in read_tables(pg_url).values())
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM notification_groups").fetchone() == (0,)


def test_a_database_without_the_schema_fails_the_write_not_the_pool(postgres_server: PostgresServer) -> None:
    """The warm-up fails on a database that was never migrated. The connection is still handed
    out, so the write fails with the database's own reason, not a pool timeout."""

    async def go(url: str) -> None:
        store = PostgresStore(url, connect_timeout_s=2, write_deadline_s=2)
        await store.open()
        try:
            with pytest.raises(StoreUnavailable, match="42883"):
                await store.write([firing(T0)])
        finally:
            await store.close()

    with empty_database(postgres_server) as url:
        asyncio.run(go(url))


def test_no_partition_of_alert_events_keeps_statistics_on_annotations(pg_url: str) -> None:
    """Migration 0013: ANALYZE skips the annotations on every partition, those that existed and
    those webhookfast_ensure_partitions creates later by either of its two paths."""
    now = datetime.now(timezone.utc)
    months = now.year * 12 + now.month - 1 + 4
    later = f"{months // 12:04d}-{months % 12 + 1:02d}-15T00:00:00Z"
    # A row four months ahead lands in DEFAULT; creating that month's partition moves it there.
    write_all(pg_url, [[decode(payload([am_alert(LABELS, later)]), received_at_us=T0)]])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        (created,) = conn.execute("SELECT webhookfast_ensure_partitions(4)").fetchone()  # type: ignore[misc]
        targets = conn.execute(
            """SELECT c.relname, a.attstattarget FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'annotations'
               WHERE i.inhparent = 'alert_events'::regclass"""
        ).fetchall()
        (moved,) = conn.execute(f"SELECT count(*) FROM alert_events_{later[:4]}m{later[5:7]}").fetchone()  # type: ignore[misc]
    assert created == 2 and moved == 1
    assert len(targets) == 6  # DEFAULT and five months
    assert {target for _, target in targets} == {0}


def new_label_sets(n: int, received_at_us: int = T0) -> Batch:
    alerts = [
        am_alert({"alertname": "Merge", "instance": f"host-{i}", "run": uuid.uuid4().hex}, STARTS) for i in range(n)
    ]
    return decode(payload(alerts), received_at_us=received_at_us)


def test_the_label_index_merge_empties_the_pending_list(pg_url: str) -> None:
    async def go(store: PostgresStore) -> tuple[int, int]:
        await store.write([new_label_sets(300)])
        return await store.merge_label_index(), await store.merge_label_index()

    first, second = run_with_store(pg_url, go)
    assert first > 0  # the 300 label sets' entries were pending
    assert second == 0


def test_label_index_entries_are_merged_in_the_background(pg_url: str) -> None:
    async def go(store: PostgresStore) -> int:
        await store.write([new_label_sets(300)])
        await asyncio.sleep(1.0)  # a few rounds of the background merge
        return await store.merge_label_index()

    # Left to the flushes: the entries are still pending (the control for the assertion below).
    assert run_with_store(pg_url, go) > 0
    assert run_with_store(pg_url, go, label_index_merge_s=0.1) == 0


def test_a_merge_in_progress_elsewhere_is_skipped_not_waited_for(pg_url: str) -> None:
    async def go(store: PostgresStore) -> tuple[int, float]:
        await store.write([new_label_sets(50)])
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other, other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock(%s)", (LABEL_INDEX_LOCK,))
            started = time.monotonic()
            merged = await store.merge_label_index()
            return merged, time.monotonic() - started

    merged, seconds = run_with_store(pg_url, go)
    assert merged == 0
    assert seconds < 1.0


def test_a_label_index_that_cannot_be_merged_stops_the_background_merge(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP INDEX label_sets_labels")

    async def go(store: PostgresStore) -> bool:
        await store.write([new_label_sets(5)])
        for _ in range(100):
            await asyncio.sleep(0.05)
            if store._merge_task is not None and store._merge_task.done():
                break
        assert store._merge_task is not None
        return store._merge_task.done()

    with caplog.at_level("WARNING", logger="webhookfast.storage.postgres"):
        assert run_with_store(pg_url, go, label_index_merge_s=0.05)
    assert "left to the flushes" in caplog.text
