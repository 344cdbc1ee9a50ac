"""Tiny stand-ins for what Granian hands an RSGI app, and an in-memory store, so that benchmarks
drive ``App.__rsgi__`` in-process without a socket.

- ``FakeScope``: ``.method .path .query_string .headers (.get) .client .scheme .http_version``.
- ``FakeProto``: ``await proto()`` returns the body, ``async for chunk in proto`` streams it, and
  ``response_bytes(status, headers, body)`` records the answer.
- ``MemoryStore``: a Store whose ``write`` returns at once (counts rows only): the handler's and
  batcher's own cost, without a database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from webhookfast._core import Batch
from webhookfast.storage.base import Store, WriteResult

BEARER_TOKEN = "bench-token-0123456789abcdef"


class FakeHeaders:
    """Granian's header map: lower-case keys, ``get`` and ``get_all``."""

    __slots__ = ("_h",)

    def __init__(self, headers: dict[str, str]) -> None:
        self._h = {k.lower(): v for k, v in headers.items()}

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._h.get(key, default)

    def get_all(self, key: str) -> list[str]:
        v = self._h.get(key)
        return [] if v is None else [v]

    def keys(self) -> list[str]:
        return list(self._h)

    def __contains__(self, key: object) -> bool:
        return key in self._h


class FakeScope:
    __slots__ = ("client", "headers", "http_version", "method", "path", "proto", "query_string", "scheme", "server")

    def __init__(self, method: str, path: str, headers: dict[str, str], client: str = "127.0.0.1:40000") -> None:
        self.method = method
        self.path = path
        self.query_string = ""
        self.headers = FakeHeaders(headers)
        self.client = client
        self.server = "127.0.0.1:8080"
        self.scheme = "http"
        self.http_version = "1.1"
        self.proto = "http"


class FakeProto:
    """One request's protocol object. Reusable: every call answers with the same body."""

    __slots__ = ("_sent", "body", "headers", "response", "status")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._sent = False
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.response = b""

    async def __call__(self) -> bytes:
        return self.body

    def __aiter__(self) -> FakeProto:
        self._sent = False
        return self

    async def __anext__(self) -> bytes:  # the whole body as one chunk
        if self._sent:
            raise StopAsyncIteration
        self._sent = True
        return self.body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        # The app reuses its header list (Granian copies it at the call): valid until the next answer.
        self.headers = headers
        self.response = body

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.response_bytes(status, headers, b"")

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.response_bytes(status, headers, body.encode())


def webhook_request(body: bytes, *, auth: bool = True, sized: bool = True) -> tuple[FakeScope, FakeProto]:
    """A POST /webhook as Alertmanager sends it (Content-Length, JSON, bearer token)."""
    headers = {
        "host": "127.0.0.1:8080",
        "user-agent": "Alertmanager/0.25.0",
        "content-type": "application/json",
    }
    if sized:
        headers["content-length"] = str(len(body))
    if auth:
        headers["authorization"] = f"Bearer {BEARER_TOKEN}"
    return FakeScope("POST", "/webhook", headers), FakeProto(body)


class MemoryStore(Store):
    """A store whose write returns at once: measures everything but the database."""

    # The App builds a history reader from the store's dialect: "sqlite" gives it a lazy SQLite
    # reader on ``path`` that connects only when a history route is queried (never, here).
    dialect = "sqlite"
    path = ":memory:"
    default_flush_concurrency = 1

    def __init__(self) -> None:
        self.flushes = 0
        self.alerts = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def write(self, batches: Sequence[Batch]) -> WriteResult:
        n = 0
        for b in batches:
            n += len(b)
        self.flushes += 1
        self.alerts += n
        return WriteResult(n, n, n)

    async def ping(self) -> bool:
        return True

    def migrate(self) -> list[str]:
        return []

    async def prune(self, older_than_us: int) -> int:
        return 0

    async def claim_job(self, name: str, every_s: float) -> bool:
        return False


_DEVNULL_FD: int | None = None


def quiet_access_log(app: Any) -> None:
    """Point the app's access log at /dev/null through its real sink, so that its cost is counted
    as in production (where it goes to stderr), without flooding the benchmark's output."""
    global _DEVNULL_FD
    if _DEVNULL_FD is None:
        _DEVNULL_FD = os.open(os.devnull, os.O_WRONLY)
    app.access_log.sink.fd = _DEVNULL_FD


def make_settings(*, full_stack: bool, database_url: str = "sqlite:///:memory:", **overrides: Any) -> Any:
    """Settings built explicitly (no WEBHOOKFAST_* from the environment leaks in)."""
    from webhookfast.settings import Settings

    for key in [k for k in os.environ if k.startswith("WEBHOOKFAST_") and not k.startswith("WEBHOOKFAST_TEST_")]:
        os.environ.pop(key)
    values: dict[str, Any] = {
        "database_url": database_url,
        "access_log": full_stack,
        "write_deadline_s": 30.0,
        "spool": False,  # the commit path is what is measured (and no spool directory in the cwd)
    }
    if full_stack:
        values.update(bearer_token=BEARER_TOKEN, rate_limit_rps=1e9, rate_limit_burst=1_000_000_000)
    values.update(overrides)
    return Settings(**values)


class AppHarness:
    """An App started on its own event loop; ``call(scope, proto)`` runs one request to the end."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.app = app
        self.loop = loop if loop is not None else asyncio.new_event_loop()
        self.loop.run_until_complete(app.startup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.app.shutdown())
        finally:
            self.loop.close()


def make_app(*, full_stack: bool, store: Store | None = None, **overrides: Any) -> Any:
    from webhookfast.app import App

    app = App(make_settings(full_stack=full_stack, **overrides), store=store if store is not None else MemoryStore())
    quiet_access_log(app)
    return app
