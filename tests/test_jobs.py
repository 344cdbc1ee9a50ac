"""Periodic jobs shared by workers and replicas (``Store.claim_job``, migration 0005): retention
pruning runs once per interval for everything writing to one database, not once per worker."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from webhookfast.app import App
from webhookfast.settings import Settings
from webhookfast.storage import open_store
from webhookfast.storage.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        u = f"sqlite:///{tmp_path}/jobs.db"
        SQLiteStore(u).migrate()
        return u
    return str(request.getfixturevalue("pg_url"))


def test_one_claim_per_interval_among_concurrent_claimers(url: str) -> None:
    async def main() -> list[Any]:
        stores = [open_store(url) for _ in range(4)]  # four workers (or replicas)
        for s in stores:
            await s.open()
        try:
            first = await asyncio.gather(*(s.claim_job("prune", 3600) for s in stores))
            again = await asyncio.gather(*(s.claim_job("prune", 3600) for s in stores))
            other = await stores[0].claim_job("other", 3600)  # jobs are independent
            due = await stores[1].claim_job("prune", 0)  # an interval of 0 has always passed
            return [first, again, other, due]
        finally:
            for s in stores:
                await s.close()

    first, again, other, due = asyncio.run(main())
    assert sorted(first) == [False, False, False, True]
    assert again == [False] * 4
    assert other is True and due is True


def test_workers_prune_once_per_interval(url: str) -> None:
    settings = Settings(database_url=url, retention_days=30)

    async def main() -> list[int | None]:
        apps = [App(settings) for _ in range(3)]
        for app in apps:
            await app.store.open()
        try:
            return [await app.prune_if_due() for app in apps]
        finally:
            for app in apps:
                await app.store.close()

    assert asyncio.run(main()) == [0, None, None]


def test_a_claim_follows_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Due again once the interval has passed; and when the clock was stepped back by more than an
    interval, the recorded start (now in the future) does not stop the job until the clock catches up."""
    url = f"sqlite:///{tmp_path}/jobs.db"
    SQLiteStore(url).migrate()
    now = [1_000_000.0]
    monkeypatch.setattr("webhookfast.storage.sqlite.time", SimpleNamespace(time=lambda: now[0]))

    async def claims(times: list[float]) -> list[bool]:
        store = open_store(url)
        await store.open()
        try:
            out = []
            for t in times:
                now[0] = t
                out.append(await store.claim_job("prune", 60))
            return out
        finally:
            await store.close()

    t = 1_000_000.0
    assert asyncio.run(claims([t, t + 50, t + 61, t + 100, t - 1000, t - 990])) == [
        True,
        False,
        True,
        False,
        True,
        False,
    ]


def test_without_the_table_every_worker_runs_the_job(url: str) -> None:
    """A database not migrated to 0005 (--no-migrate-on-start): pruning works as it did before."""

    async def main() -> list[bool]:
        store = open_store(url)
        await store.open()
        try:
            if store.dialect == "sqlite":
                conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
                conn.execute("DROP TABLE job_runs")
                conn.close()
            else:
                async with store._require_pool().connection() as conn:  # type: ignore[attr-defined]
                    await conn.execute("DROP TABLE job_runs")
            return [await store.claim_job("prune", 3600) for _ in range(2)]
        finally:
            await store.close()

    assert asyncio.run(main()) == [True, True]
