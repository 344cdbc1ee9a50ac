"""Storage back ends, chosen by the database URL's scheme."""

from __future__ import annotations

from webhookfast.storage.base import Store, StoreRejected, StoreUnavailable, WriteResult

__all__ = ["Store", "StoreRejected", "StoreUnavailable", "WriteResult", "open_store"]


def open_store(url: str, **options: object) -> Store:
    """A store for ``url`` (not yet opened). PostgreSQL options: pool sizes and timeouts."""
    if url.startswith("sqlite:"):
        from webhookfast.storage.sqlite import SQLiteStore

        return SQLiteStore(url)  # the pool and timeout options are PostgreSQL's
    if url.startswith(("postgresql:", "postgres:")):
        from webhookfast.storage.postgres import PostgresStore

        return PostgresStore(url, **options)  # type: ignore[arg-type]
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
