"""The SQLite store's worker thread: calls run on it one at a time and in order, results and
exceptions come back to the awaiting coroutine, a call whose caller stopped waiting before it
started is skipped, and close() runs what is queued before the thread stops."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from webhookfast.storage.worker_thread import WorkerThread


def test_calls_run_on_the_thread_in_order_with_results_and_exceptions() -> None:
    worker = WorkerThread("test-worker")
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        time.sleep(0.002 * (5 - i))  # earlier calls take longer: order is the queue's, not speed's
        return i * i

    def fail() -> None:
        raise ValueError("boom")

    async def run() -> list[int]:
        results = await asyncio.gather(*(worker.run(job, i) for i in range(5)))
        with pytest.raises(ValueError, match="boom"):
            await worker.run(fail)
        return list(results)

    try:
        assert asyncio.run(run()) == [0, 1, 4, 9, 16]
    finally:
        worker.close()
    assert seen == [(i, "test-worker") for i in range(5)]
    assert not worker._thread.is_alive()


def test_a_call_nobody_waits_for_any_more_is_skipped_and_close_drains_the_queue() -> None:
    worker = WorkerThread("test-worker")
    ran: list[str] = []
    gate = threading.Event()

    async def run() -> None:
        blocker = asyncio.ensure_future(worker.run(gate.wait, 5))
        await asyncio.sleep(0.05)  # the blocker has started on the thread
        skipped = asyncio.ensure_future(worker.run(ran.append, "skipped"))
        await asyncio.sleep(0)
        skipped.cancel()
        kept = asyncio.ensure_future(worker.run(ran.append, "kept"))
        await asyncio.sleep(0)
        gate.set()
        assert await blocker is True
        await kept
        with pytest.raises(asyncio.CancelledError):
            await skipped

    asyncio.run(run())
    worker.close()
    assert ran == ["kept"]
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(worker.run(ran.append, "late"))


def test_a_result_for_a_closed_loop_does_not_stop_the_thread() -> None:
    worker = WorkerThread("test-worker")
    gate = threading.Event()
    loop = asyncio.new_event_loop()
    future = loop.create_task(worker.run(gate.wait, 5))
    loop.run_until_complete(asyncio.sleep(0.02))  # queued and started
    future.cancel()
    loop.run_until_complete(asyncio.gather(future, return_exceptions=True))
    loop.close()
    gate.set()  # its result now goes to a closed loop

    async def after() -> int:
        return await worker.run(lambda: 42)

    try:
        assert asyncio.run(after()) == 42
    finally:
        worker.close()
