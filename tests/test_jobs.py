"""Periodic jobs shared by workers and replicas (``Store.claim_job``, migration 0005): retention
pruning runs once per interval for everything writing to one database, not once per worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
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


def test_workers_prune_once_per_interval(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/wf.db", retention_days=30)
    SQLiteStore(settings.database_url).migrate()

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
