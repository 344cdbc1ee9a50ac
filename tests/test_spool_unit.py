"""The spool's life cycle in-process, with a store double that records what the replayer writes:
arrival order across segments, the mark, retries after a failed write, the byte bound, and a
mark that says part of the spool was committed before a crash."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest
from webhookfast._core import Batch
from webhookfast.ingest import spool as spool_module
from webhookfast.ingest.batcher import Batcher
from webhookfast.ingest.spool import Spool, SpoolFull
from webhookfast.storage.base import StoreRejected, StoreUnavailable, WriteResult


class Store:
    def __init__(self, mark: tuple[int, int] | None = None) -> None:
        self.mark = mark
        self.written: list[str] = []  # the "request" label of every replayed alert, in order
        self.fail = 0  # this many writes fail next
        self.refuse = ""  # a request whose alerts are always refused (for their content)
        self.reject = ""  # the same, said as the store says it when it knows (StoreRejected)
        self.transactions = 0

    async def ping(self) -> bool:
        return not self.fail

    def migrate(self) -> list[str]:
        return []

    async def spool_mark(self, spool_id: str) -> tuple[int, int] | None:
        return self.mark

    async def write(self, batches: Sequence[Batch], *, spool_mark: tuple[str, int, int] | None = None) -> WriteResult:
        if self.fail:
            self.fail -= 1
            raise StoreUnavailable("down")
        assert spool_mark is not None
        if any(a["labels"]["request"] == self.refuse for b in batches for a in b.to_dicts()):
            raise StoreUnavailable("value out of range")
        if any(a["labels"]["request"] == self.reject for b in batches for a in b.to_dicts()):
            raise StoreRejected("index row size exceeds btree maximum")
        self.transactions += 1
        self.written += [a["labels"]["request"] for b in batches for a in b.to_dicts()]
        self.mark = spool_mark[1:]
        return WriteResult(0, 0, sum(len(b) for b in batches))


def body(i: int) -> bytes:
    return orjson.dumps({"labels": {"alertname": "Unit", "request": str(i)}, "startsAt": "2026-11-27T10:00:00Z"})


async def drained(spool: Spool, timeout: float = 30.0) -> None:  # retries back off up to 5 s
    for _ in range(int(timeout / 0.01)):
        if not spool.backlog:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the spool did not drain")


async def fill(spool: Spool, n: int, start: int = 0) -> None:
    await asyncio.gather(*(spool.append(body(i), 1_000_000 + i, 1) for i in range(start, start + n)))


def test_replays_in_arrival_order_across_segments_and_deletes_them(tmp_path: Path) -> None:
    async def run() -> None:
        store = Store()
        store.fail = 10**9  # down: everything waits in the spool
        spool = Spool(tmp_path, store, max_bytes=1 << 20, segment_bytes=4096, replay_max_alerts=7)
        await spool.open()
        for k in range(0, 200, 20):  # groups arrive one after the other
            await fill(spool, 20, k)
        segments = sorted(spool.directory.glob("*.wfs"))
        assert len(segments) > 3
        store.fail = 3  # it comes back after three more failures
        await drained(spool)
        assert store.written == [str(i) for i in range(200)]
        assert store.transactions >= 200 // 7
        for _ in range(500):  # the replayer deletes drained segments just after its last commit
            if [p.stat().st_size for p in spool.directory.glob("*.wfs")] == [0]:
                break
            await asyncio.sleep(0.01)
        assert [p.stat().st_size for p in spool.directory.glob("*.wfs")] == [0]  # rotated, old ones gone
        await spool.close()

    asyncio.run(run())


def test_a_mark_from_before_a_crash_skips_what_was_committed(tmp_path: Path) -> None:
    async def run() -> None:
        down = Store()
        down.fail = 10**9  # nothing is replayed in this run
        first = Spool(tmp_path, down, max_bytes=1 << 20)
        await first.open()
        await fill(first, 10)
        await first.close()
        seq, length = next(iter(first._segments.items()))
        record = length // 10
        store = Store(mark=(seq, 4 * record))  # records 0-3 were committed before the crash
        second = Spool(tmp_path, store, max_bytes=1 << 20)
        await second.open()
        assert second.id == first.id
        await drained(second)
        assert store.written == [str(i) for i in range(4, 10)]
        await second.close()

    asyncio.run(run())


def test_the_byte_bound_refuses_and_frees_after_the_drain(tmp_path: Path) -> None:
    async def run() -> None:
        store = Store()
        store.fail = 10**9
        spool = Spool(tmp_path, store, max_bytes=10 * (len(body(0)) + 20) + 5)
        await spool.open()
        await fill(spool, 10)
        with pytest.raises(SpoolFull):
            await spool.append(body(10), 0, 1)
        store.fail = 0
        await drained(spool)
        for _ in range(500):  # the drained segment is rotated away
            if spool.size == 0:
                break
            await asyncio.sleep(0.01)
        await spool.append(body(11), 0, 1)
        await drained(spool)
        assert store.written == [str(i) for i in range(10)] + ["11"]
        await spool.close()

    asyncio.run(run())


def test_a_record_the_database_refuses_is_set_aside_and_the_rest_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "RETRY_MIN_S", 0.01)
    monkeypatch.setattr(spool_module, "RETRY_MAX_S", 0.02)

    async def run() -> None:
        store = Store()
        store.refuse = "3"
        spool = Spool(tmp_path, store, max_bytes=1 << 20)
        await spool.open()
        await fill(spool, 10)
        await drained(spool)
        assert store.written == [str(i) for i in range(10) if i != 3]
        (aside,) = (spool.directory / "quarantine").glob("*.refused.json")
        assert aside.read_bytes() == body(3)
        await spool.close()

    asyncio.run(run())


def test_a_record_the_store_rejects_is_set_aside_even_when_it_is_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no record after it to prove the database healthy, only the store's own word
    (StoreRejected) can set the last record aside; without it the spool would retry it for ever."""
    monkeypatch.setattr(spool_module, "RETRY_MIN_S", 0.01)
    monkeypatch.setattr(spool_module, "RETRY_MAX_S", 0.02)

    async def run() -> None:
        store = Store()
        store.reject = "9"
        spool = Spool(tmp_path, store, max_bytes=1 << 20)
        await spool.open()
        await fill(spool, 10)
        await drained(spool)
        assert store.written == [str(i) for i in range(9)]
        (aside,) = (spool.directory / "quarantine").glob("*.refused.json")
        assert aside.read_bytes() == body(9)
        await spool.append(body(10), 0, 1)  # and the spool goes on
        await drained(spool)
        assert store.written[-1] == "10"
        await spool.close()

    asyncio.run(run())


def test_an_outage_is_not_mistaken_for_a_refused_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "RETRY_MIN_S", 0.01)
    monkeypatch.setattr(spool_module, "RETRY_MAX_S", 0.02)

    async def run() -> None:
        store = Store()
        store.fail = 40  # every write fails for a while, while ping answers (e.g. a full disk)
        store.ping = lambda: asyncio.sleep(0, True)  # type: ignore[method-assign]
        spool = Spool(tmp_path, store, max_bytes=1 << 20)
        await spool.open()
        await fill(spool, 10)
        await drained(spool)
        assert store.written == [str(i) for i in range(10)]
        assert list((spool.directory / "quarantine").glob("*")) == []
        await spool.close()

    asyncio.run(run())


def test_ack_enqueue_moves_acknowledged_batches_to_the_spool_on_failure_and_at_shutdown(tmp_path: Path) -> None:
    """With --ack enqueue the answer came before the commit: a failed flush and a shutdown that
    comes first must put those batches on disk, not drop them with the process."""
    from webhookfast._core import decode
    from webhookfast.ingest.batcher import Batcher

    class Hanging(Store):
        async def write(
            self, batches: Sequence[Batch], *, spool_mark: tuple[str, int, int] | None = None
        ) -> WriteResult:
            if spool_mark is None:  # the batcher's own flush: the database hangs
                await asyncio.sleep(3600)
            return await super().write(batches, spool_mark=spool_mark)

    async def run() -> None:
        # 1. The flush fails: the acknowledged batches go to the spool, and what follows them too.
        down = Store()
        down.fail = 10**9
        spool = Spool(tmp_path / "a", down, max_bytes=1 << 20)
        await spool.open()
        batcher = Batcher(down, ack_enqueue=True, spool=spool, retry_backoff_s=0.01, flush_concurrency=1)  # type: ignore[arg-type]
        batcher.start()
        for i in range(5):
            assert await batcher.submit(decode(body(i)), f"r{i}", body(i)) is False  # queued
        for _ in range(500):
            if spool.backlog and batcher.queued_alerts == 0:
                break
            await asyncio.sleep(0.01)
        assert batcher.queued_alerts == 0 and batcher.queued_bytes == 0
        assert await batcher.submit(decode(body(5)), "r5", body(5)) is True  # behind them, in the spool
        await batcher.close(1.0)
        await spool.close()
        up = Store()
        again = Spool(tmp_path / "a", up, max_bytes=1 << 20)
        await again.open()
        await drained(again)
        assert up.written == [str(i) for i in range(6)]
        await again.close()

        # 2. Shutdown comes while the flush hangs: what it held and what waited are spooled.
        hanging = Hanging()
        spool = Spool(tmp_path / "b", hanging, max_bytes=1 << 20)
        await spool.open()
        batcher = Batcher(hanging, ack_enqueue=True, spool=spool, flush_concurrency=1)  # type: ignore[arg-type]
        batcher.start()
        for i in range(10, 14):
            await batcher.submit(decode(body(i)), f"r{i}", body(i))
        await asyncio.sleep(0.05)
        await batcher.close(0.2)
        await spool.close()
        up = Store()
        again = Spool(tmp_path / "b", up, max_bytes=1 << 20)
        await again.open()
        await drained(again)
        assert sorted(up.written) == [str(i) for i in range(10, 14)]
        await again.close()

    asyncio.run(run())


class Flushing(Store):
    """Also takes the batcher's own flushes (no spool mark), which wait for ``connected`` (a
    connection to a database that was down) and then for ``committed`` after sending."""

    def __init__(self) -> None:
        super().__init__()
        self.connected = asyncio.Event()
        self.committed = asyncio.Event()
        self.flushed: list[str] = []  # the "request" label of every alert the batcher's flushes wrote
        self.log: list[tuple[list[str], tuple[str, int, int] | None]] = []

    async def write(
        self,
        batches: Sequence[Batch],
        *,
        spool_mark: tuple[str, int, int] | None = None,
        before_send: object = None,
    ) -> WriteResult:
        requests = [a["labels"]["request"] for b in batches for a in b.to_dicts()]
        if spool_mark is not None:
            result = await super().write(batches, spool_mark=spool_mark)
            self.log.append((requests, spool_mark))
            return result
        await self.connected.wait()
        if callable(before_send) and (fewer := before_send()) is not None:
            requests = [a["labels"]["request"] for b in fewer for a in b.to_dicts()]
        await self.committed.wait()
        self.flushed += requests
        self.log.append((requests, None))
        return WriteResult(0, 0, len(requests))


def test_a_request_past_its_deadline_is_withdrawn_from_a_flush_not_yet_sent(tmp_path: Path) -> None:
    """The database is down and the flush still waits for a connection when the request's
    deadline passes: the request is withdrawn from that flush, so only the replayer stores it,
    once, even when the process dies before the replay (nothing to be in doubt about)."""
    from webhookfast._core import decode
    from webhookfast.ingest.batcher import Batcher

    async def run() -> None:
        store = Flushing()
        store.fail = 10**9  # the replayer fails too while the database is down
        store.committed.set()
        spool = Spool(tmp_path, store, max_bytes=1 << 20)
        await spool.open()
        reports: list[tuple[int, int]] = []
        batcher = Batcher(
            store,  # type: ignore[arg-type]
            spool=spool,
            deadline_s=0.05,
            flush_concurrency=1,
            on_flush=lambda requests, alerts, seconds, result: reports.append((requests, alerts)),
        )
        batcher.start()
        assert await batcher.submit(decode(body(0)), "r0", body(0)) is True  # spooled
        assert not spool._in_doubt
        store.connected.set()  # the database is back: the flush goes out without request 0
        for _ in range(100):
            if reports:
                break
            await asyncio.sleep(0.01)
        assert batcher.queued_alerts == 0 and store.flushed == []
        assert reports == [(0, 0)]  # the flush's size counts what it wrote
        await batcher.close(1.0)
        await spool.close()  # as if killed before the replay
        up = Store()
        again = Spool(tmp_path, up, max_bytes=1 << 20)
        await again.open()
        await drained(again)
        assert up.written == ["0"]
        await again.close()

    asyncio.run(run())


async def until(condition: Callable[[], object], what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 2 s: {what}")


async def with_batcher(directory: Path, store: Flushing) -> tuple[Spool, Batcher]:
    """A spool on ``directory`` and, started, a batcher that spools into it what its store has
    not committed within 50 ms."""
    from webhookfast.ingest.batcher import Batcher

    spool = Spool(directory, store, max_bytes=1 << 20)
    await spool.open()
    batcher = Batcher(store, spool=spool, deadline_s=0.05, flush_concurrency=1)  # type: ignore[arg-type]
    batcher.start()
    return spool, batcher


async def handed_to_spool(spool: Spool, batcher: Batcher) -> asyncio.Future[bool]:
    """Request 0, once it is past its deadline and its batch on the way into ``spool``."""
    from webhookfast._core import decode

    request = asyncio.ensure_future(batcher.submit(decode(body(0)), "r0", body(0)))
    await until(lambda: spool._queued_bytes, "the batch handed to the spool after its deadline")
    return request


async def replayed(directory: Path) -> list[str]:
    """What a spool opened again on ``directory`` replays into a database that is up."""
    up = Store()
    again = Spool(directory, up, max_bytes=1 << 20)
    await again.open()
    await drained(again)
    await again.close()
    return up.written


def test_a_batch_being_spooled_after_its_deadline_stays_spooled_when_its_sender_goes(tmp_path: Path) -> None:
    """The deadline passed and the spool's append is under way when the sender hangs up (its
    request's task is cancelled): the append still completes, and the replayer stores the batch
    once; a shutdown meanwhile waits for the append."""

    async def run() -> None:
        store = Flushing()
        store.fail = 10**9  # down: neither the flush nor the replayer gets through
        spool, batcher = await with_batcher(tmp_path, store)
        async with spool._io:  # the append waits here, as behind a slow disk
            request = await handed_to_spool(spool, batcher)
            store.connected.set()  # its flush goes out without it (withdrawn) and ends
            store.committed.set()
            await until(lambda: not batcher._in_flight, "the flush ended")
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            closing = asyncio.ensure_future(batcher.close(5.0))
            await asyncio.sleep(0.05)
            assert not closing.done()  # it waits for the append
        await closing
        assert batcher.queued_alerts == 0 and store.flushed == []
        await spool.close()
        assert await replayed(tmp_path) == ["0"]

    asyncio.run(run())


def test_a_batch_spooled_in_doubt_is_not_spooled_again_when_shutdown_fails_its_flush(tmp_path: Path) -> None:
    """The flush went out and hangs; the deadline passed and the batch is being spooled in
    doubt when shutdown gives up on that flush: the batch is in the spool once, not twice."""

    async def run() -> None:
        store = Flushing()
        store.connected.set()  # connected and sent: the commit never comes
        spool, batcher = await with_batcher(tmp_path, store)
        async with spool._io:  # the append waits here, as behind a slow disk
            request = await handed_to_spool(spool, batcher)
            closing = asyncio.ensure_future(batcher.close(0.3))
            await until(lambda: not batcher._in_flight, "shutdown gave up on the flush")
            await asyncio.sleep(0.05)
        await closing
        assert await request is True
        assert batcher.queued_alerts == 0
        await spool.close()
        assert await replayed(tmp_path) == ["0"]

    asyncio.run(run())


def test_a_record_its_own_late_flush_committed_moves_the_mark_at_once(tmp_path: Path) -> None:
    """The flush went out, then the deadline passed: the record is in doubt. When that flush
    commits after all, the replayer skips the record and moves the mark past it in a
    transaction of its own, before it replays anything behind it."""
    from webhookfast._core import decode
    from webhookfast.ingest.batcher import Batcher

    async def run() -> None:
        store = Flushing()
        store.connected.set()  # connected and sent: the commit hangs
        spool = Spool(tmp_path, store, max_bytes=1 << 20)
        await spool.open()
        batcher = Batcher(store, spool=spool, deadline_s=0.05, flush_concurrency=1)  # type: ignore[arg-type]
        batcher.start()
        assert await batcher.submit(decode(body(0)), "r0", body(0)) is True
        assert len(spool._in_doubt) == 1
        ((seq, end),) = spool._in_doubt
        assert await batcher.submit(decode(body(1)), "r1", body(1)) is True  # behind it, in the spool
        store.committed.set()
        await drained(spool)
        assert store.flushed == ["0"] and store.written == ["1"]
        assert store.log[:2] == [(["0"], None), ([], (spool.id, seq, end))]
        assert store.log[2][0] == ["1"]
        await batcher.close(1.0)
        await spool.close()

    asyncio.run(run())


def test_a_sqlite_worker_does_not_load_psycopg(tmp_path: Path) -> None:
    # spool_for asks whether the store is PostgreSQL's; importing that store's module to ask
    # loaded psycopg and its libraries into every SQLite worker (8 MB of its RSS, issue #12).
    script = (
        "import sys\n"
        "from webhookfast.app import App\n"
        "from webhookfast.settings import Settings\n"
        f"app = App(Settings(database_url='sqlite:///{tmp_path}/w.db'))\n"
        "assert app.spool is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
