"""Storage back ends, chosen by the database URL's scheme."""

from __future__ import annotations

import os

from webhookfast.storage.base import Store, StoreRejected, StoreUnavailable, WriteResult

__all__ = ["Store", "StoreRejected", "StoreUnavailable", "WriteResult", "describe_url", "open_store"]


def describe_url(url: str) -> str:
    """Which store ``url`` names, for the start-up log line, without its password; a ValueError
    whose message says what is wrong when the URL is malformed."""
    if url.startswith("sqlite:"):
        from webhookfast.storage.sqlite import path_from_url

        return f"SQLite file {os.path.abspath(path_from_url(url))}"
    if url.startswith(("postgresql:", "postgres:")):
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(url)
        except ProgrammingError as exc:
            raise ValueError(f"bad PostgreSQL URL: {str(exc).splitlines()[0]}") from None
        where = params.get("host") or "local socket"
        if params.get("port"):
            where = f"{where}:{params['port']}"
        return f"PostgreSQL database {params.get('dbname') or '(default)'!s} on {where}"
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


def open_store(url: str, **options: object) -> Store:
    """A store for ``url`` (not yet opened). PostgreSQL options: pool sizes and timeouts;
    SQLite's: ``sqlite_native_writer``. Each store ignores the other's."""
    sqlite_native_writer = bool(options.pop("sqlite_native_writer", True))
    if url.startswith("sqlite:"):
        from webhookfast.storage.sqlite import SQLiteStore

        return SQLiteStore(url, native_writer=sqlite_native_writer)
    if url.startswith(("postgresql:", "postgres:")):
        from webhookfast.storage.postgres import PostgresStore

        return PostgresStore(url, **options)  # type: ignore[arg-type]
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
