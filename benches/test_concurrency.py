"""Requests in flight together through the batcher (group commit), as ``asyncio.gather`` inside one
``loop.run_until_complete``: 1, 10, 50 and 100 one-alert requests at once, through the full
middleware stack.

- ``store=sqlite``: the real SQLite store (WAL, synchronous=FULL) on a file in a temp dir: the
  time includes the commits (one per flush; with N in flight the flusher gathers many requests
  into each transaction).
- ``store=postgres``: the real PostgreSQL store on a throw-away cluster (fsync on): the flush path
  (Rust COPY encoding or unnest, merge, commit) with group commit.
- ``store=memory``: a store whose write returns at once: the batcher's own overhead.

Each call sends ``inflight`` requests: **per-request cost = reported time / inflight**. Bodies are
unique (a ring of pre-generated bodies; every alert a new label set and startsAt) so the database
does real inserts until the ring wraps, after which rows collapse into upserts.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import unique_bodies
from fakes import AppHarness, MemoryStore, make_app, webhook_request
from webhookfast.storage.sqlite import SQLiteStore

INFLIGHT = [1, 10, 50, 100]
RING = 2000  # distinct 1-alert bodies


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def harness(request: pytest.FixtureRequest, tmp_sqlite_url: str) -> Iterator[AppHarness]:
    if request.param == "sqlite":
        store: Any = SQLiteStore(tmp_sqlite_url)
        store.migrate()
    elif request.param == "postgres":
        from webhookfast.storage.postgres import PostgresStore

        store = PostgresStore(request.getfixturevalue("bench_pg_url"))
    else:
        store = MemoryStore()
    h = AppHarness(make_app(full_stack=True, store=store))
    try:
        yield h
    finally:
        h.close()


@pytest.mark.parametrize("inflight", INFLIGHT)
def test_inflight(benchmark: Any, harness: AppHarness, inflight: int, per_call: Any) -> None:
    per_call(requests=inflight, alerts=inflight)
    app = harness.app
    requests = [webhook_request(b) for b in unique_bodies(1, RING)]
    ring = itertools.cycle(range(0, RING - RING % inflight, inflight))
    run = harness.loop.run_until_complete

    async def wave(start: int) -> None:
        await asyncio.gather(*(app.__rsgi__(s, p) for s, p in requests[start : start + inflight]))

    def one_wave() -> None:
        run(wave(next(ring)))

    benchmark(one_wave)
    statuses = {p.status for _, p in requests[:inflight]}
    assert statuses == {200}, [p.response for _, p in requests[:inflight]]
