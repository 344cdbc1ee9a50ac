"""Group commit, backpressure and shutdown of the batcher, on a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from webhookfast._core import Batch, decode
from webhookfast.ingest.batcher import Batcher, DeadlineExceeded, QueueFull
from webhookfast.storage.base import StoreUnavailable, WriteResult
from webhookfast.storage.sqlite import SQLiteStore


def payload(i: int, n: int = 1, status: str = "firing") -> bytes:
    alerts = [
        {
            "status": status,
            "labels": {"alertname": f"A{i}", "instance": f"i{j}"},
            "startsAt": "2026-11-27T10:00:00Z",
            **({"endsAt": "2026-11-27T11:00:00Z"} if status == "resolved" else {}),
        }
        for j in range(n)
    ]
    return orjson.dumps({"version": "4", "status": status, "receiver": "r", "alerts": alerts})


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


class RecordingStore(SQLiteStore):
    """The real SQLite store, remembering how many batches each flush carried."""

    def __init__(self, url: str, delay_s: float = 0.0) -> None:
        super().__init__(url)
        self.flushes: list[int] = []
        self.delay_s = delay_s
        self.fail = False

    async def write(self, batches: Sequence[Batch]) -> WriteResult:
        self.flushes.append(len(batches))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise StoreUnavailable("database is down")
        return await super().write(batches)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "wf.db"
    SQLiteStore(f"sqlite:///{path}").migrate()
    return path


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_concurrent_requests_share_flushes(db: Path) -> None:
    async def main() -> list[int]:
        store = RecordingStore(f"sqlite:///{db}", delay_s=0.02)
        await store.open()
        batcher = Batcher(store)
        batcher.start()
        await asyncio.gather(*(batcher.submit(decode(payload(i))) for i in range(50)))
        await batcher.close()
        await store.close()
        return store.flushes

    flushes = run(main())
    assert sum(flushes) == 50
    # The first flush starts alone; while it is in flight the other 49 gather into few flushes.
    assert len(flushes) < 10
    assert count(db, "alerts") == 50
    assert count(db, "alert_events") == 50


def test_acknowledged_means_committed(db: Path) -> None:
    async def main() -> int:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        batcher = Batcher(store)
        batcher.start()
        await batcher.submit(decode(payload(1, n=3)))
        seen = count(db, "alerts")  # read from another connection before closing anything
        await batcher.close()
        await store.close()
        return seen

    assert run(main()) == 3


def test_full_queue_refuses_at_once(db: Path) -> None:
    async def main() -> None:
        store = RecordingStore(f"sqlite:///{db}", delay_s=0.2)
        await store.open()
        batcher = Batcher(store, max_queue_alerts=10)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(decode(payload(1, n=8))))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(decode(payload(2, n=5)))
        await first
        await batcher.close()
        await store.close()

    run(main())
    assert count(db, "alerts") == 8


def test_one_batch_larger_than_the_queue_is_still_taken_when_idle(db: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        batcher = Batcher(store, max_queue_alerts=2)
        batcher.start()
        await batcher.submit(decode(payload(1, n=5)))
        await batcher.close()
        await store.close()

    run(main())
    assert count(db, "alerts") == 5


def test_deadline_then_commit_still_lands(db: Path) -> None:
    async def main() -> None:
        store = RecordingStore(f"sqlite:///{db}", delay_s=0.3)
        await store.open()
        batcher = Batcher(store, deadline_s=0.05)
        batcher.start()
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(decode(payload(1)))
        await batcher.close()
        await store.close()

    run(main())
    # The request was told 503; the flush that had already taken it committed anyway, which is
    # harmless: the sender's retry collapses into the same rows.
    assert count(db, "alerts") == 1


def test_store_failure_reaches_every_waiting_request(db: Path) -> None:
    async def main() -> None:
        store = RecordingStore(f"sqlite:///{db}")
        store.fail = True
        await store.open()
        batcher = Batcher(store)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(decode(payload(i))) for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results)
        assert batcher.queued_alerts == 0
        await batcher.close()
        await store.close()

    run(main())
    assert count(db, "alerts") == 0


def test_enqueue_mode_retries_and_flushes_on_close(db: Path) -> None:
    async def main() -> None:
        store = RecordingStore(f"sqlite:///{db}")
        store.fail = True
        await store.open()
        batcher = Batcher(store, ack_enqueue=True, retry_backoff_s=0.01)
        batcher.start()
        for i in range(20):
            await batcher.submit(decode(payload(i)))  # answered before any commit
        await asyncio.sleep(0.05)
        assert count(db, "alerts") == 0
        store.fail = False  # the database comes back
        await batcher.close()
        await store.close()

    run(main())
    assert count(db, "alerts") == 20


def test_duplicate_deliveries_collapse_and_count(db: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        batcher = Batcher(store)
        batcher.start()
        body = payload(7, n=2)
        await asyncio.gather(*(batcher.submit(decode(body)) for _ in range(4)))
        await batcher.submit(decode(payload(7, n=2, status="resolved")))
        await batcher.submit(decode(body))  # a stale firing retry after the resolve
        await batcher.close()
        await store.close()

    run(main())
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, notifications, ends_at IS NOT NULL FROM alerts").fetchall()
        events = conn.execute("SELECT status, count(*) FROM alert_events GROUP BY status").fetchall()
    assert rows == [("resolved", 6, 1), ("resolved", 6, 1)]
    assert sorted(events) == [("firing", 2), ("resolved", 2)]


def test_a_crashing_report_does_not_kill_the_flusher(db: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()

        def broken_report(*_: object) -> None:
            raise RuntimeError("metrics backend exploded")

        batcher = Batcher(store, on_flush=broken_report)
        batcher.start()
        for i in range(3):  # each flush's report raises; the flusher keeps going
            await batcher.submit(decode(payload(i)))
        await batcher.close()
        await store.close()

    run(main())
    assert count(db, "alerts") == 3


def test_close_answers_waiting_requests_when_the_store_hangs(db: Path) -> None:
    async def main() -> None:
        store = RecordingStore(f"sqlite:///{db}", delay_s=60)
        await store.open()
        batcher = Batcher(store, deadline_s=120)
        batcher.start()
        waiting = [asyncio.ensure_future(batcher.submit(decode(payload(i)))) for i in range(3)]
        await asyncio.sleep(0.05)
        await batcher.close(timeout_s=0.2)
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert batcher.queued_alerts == 0
        await store.close()

    run(main())


def test_the_wal_is_checkpointed_beside_the_writer_not_by_a_commit(db: Path) -> None:
    """Commits do not copy the WAL back every 1,000 pages (that stalled the commit, and every
    request waiting on it): the store's checkpointer thread does."""
    from webhookfast.storage import sqlite as sqlite_store

    async def main() -> tuple[int, int]:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        try:
            assert store._conn is not None
            assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (sqlite_store.WAL_SAFETY_PAGES,)
            before = db.stat().st_size
            for i in range(40):
                await store.write([decode(payload(i, n=50))])
            await asyncio.sleep(3 * sqlite_store.CHECKPOINT_INTERVAL_S)
            return before, db.stat().st_size  # before close, which checkpoints by itself
        finally:
            await store.close()

    before, after = run(main())
    assert after > before
    assert count(db, "alerts") == 2000


def test_the_wal_restarts_under_steady_writes_and_the_file_is_let_go_at_close(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With writes between every pass, the passes beside the writer catch up before the pass under
    the write lock, after which the WAL starts again from its beginning (it stays small); each
    unlocked pass starts the writing of what it copied; close releases the file descriptor."""
    import os

    from webhookfast.storage import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_INTERVAL_S", 0.02)
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_PAGES", 40)
    hinted: list[int] = []
    monkeypatch.setattr(sqlite_store, "start_writeback", hinted.append)
    wal = db.with_name(db.name + "-wal")

    def open_fds() -> set[str]:
        paths = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
                paths.add(os.readlink(f"/proc/self/fd/{fd}"))
        return paths

    async def main() -> int:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        largest = 0
        try:
            for i in range(300):
                await store.write([decode(payload(i, n=5))])
                largest = max(largest, wal.stat().st_size)
                await asyncio.sleep(0.002)
            assert str(db) in open_fds()
        finally:
            await store.close()
        return largest

    largest = run(main())
    assert str(db) not in open_fds()
    assert hinted, "no pass started the writing of what it copied"
    # 300 flushes of 5 new alerts write thousands of pages; restarted, the WAL holds a few hundred.
    assert largest < 1000 * 4096, largest
    assert count(db, "alerts") == 1500


def test_start_writeback_takes_any_file() -> None:
    import os
    import tempfile

    from webhookfast.storage.sqlite import start_writeback

    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 10000)
        start_writeback(f.fileno())  # a hint: never raises
        assert os.fstat(f.fileno()).st_size == 10000


def test_a_flush_waits_for_a_write_lock_held_by_another_process(db: Path) -> None:
    """The flush begins its transaction on the event loop only when the write lock is free; held
    by another connection (another worker, a prune), the flush waits for it from the store's
    thread, with the loop still serving, and commits once it is released."""

    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{db}")
        await store.open()
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            write = asyncio.ensure_future(store.write([decode(payload(1))]))
            ticks = 0
            for _ in range(10):  # the loop keeps running while the flush waits
                await asyncio.sleep(0.02)
                ticks += 1
            assert not write.done()
            other.execute("COMMIT")
            result = await asyncio.wait_for(write, 5)
            assert result.alerts == 1 and ticks == 10
            assert store._conn is not None
            assert store._conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
            await store.write([decode(payload(2))])  # the lock is free again: begun on the loop
        finally:
            other.close()
            await store.close()

    run(main())
    assert count(db, "alerts") == 2
