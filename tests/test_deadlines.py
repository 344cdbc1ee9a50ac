"""The shared deadline queue: a wait expires no later than its time limit and at most one slice
before it, a finished wait never expires, and ``done`` tells an expired wait from a finished one."""

from __future__ import annotations

import asyncio

from webhookfast.deadlines import DeadlineQueue


def test_waits_expire_by_their_limit_and_within_one_slice_of_it() -> None:
    async def run() -> tuple[dict[str, float], dict[str, bool], int]:
        loop = asyncio.get_running_loop()
        expired_at: dict[str, float] = {}
        queue: DeadlineQueue[str] = DeadlineQueue(0.2, lambda item: expired_at.setdefault(item, loop.time()), slices=4)
        added: dict[str, float] = {}
        for name, pause in (("a", 0.0), ("b", 0.03), ("finished", 0.02), ("c", 0.07)):
            await asyncio.sleep(pause)
            queue.add(name)
            added[name] = loop.time()
        await asyncio.sleep(0.05)
        outcomes = {"finished": queue.done("finished")}
        await asyncio.sleep(0.4)
        for name in ("a", "b", "c"):
            outcomes[name] = queue.done(name)
        outcomes["again"] = queue.done("a")  # a second call: no longer known
        left = len(queue)
        queue.close()
        return {k: expired_at[k] - added[k] for k in expired_at}, outcomes, left

    waited, outcomes, left = asyncio.run(run())
    assert set(waited) == {"a", "b", "c"}  # "finished" never expired
    for name, seconds in waited.items():
        assert 0.2 * 4 / 5 <= seconds <= 0.2 + 0.1, (name, seconds)  # within one slice (+ a busy machine's timer slack)
    assert outcomes == {"finished": False, "a": True, "b": True, "c": True, "again": False}
    assert left == 0


def test_the_timer_stops_when_nothing_waits_and_restarts_with_the_next_wait() -> None:
    async def run() -> tuple[bool, bool, float]:
        loop = asyncio.get_running_loop()
        expired: list[float] = []
        queue: DeadlineQueue[int] = DeadlineQueue(0.1, lambda _: expired.append(loop.time()), slices=2)
        queue.add(1)
        queue.done(1)
        await asyncio.sleep(0.2)  # one idle tick, then the timer is not armed again
        idle = queue._timer is None
        start = loop.time()
        queue.add(2)
        armed = queue._timer is not None
        await asyncio.sleep(0.25)
        queue.close()
        return idle, armed, expired[0] - start

    idle, armed, waited = asyncio.run(run())
    assert idle and armed
    assert 0.1 * 2 / 3 <= waited <= 0.1 + 0.1
