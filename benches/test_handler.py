"""The whole request handler in-process, through ``App.__rsgi__`` with a fake scope and protocol,
on an in-memory store whose write returns at once (so: HTTP layer + middleware + decode + batcher,
no database). Every benchmark is one request: the reported time is the per-request cost, including
one ``loop.run_until_complete`` (see ``test_loop_overhead`` to subtract it).

- ``test_loop_overhead``: run_until_complete of an empty coroutine (the harness's own cost).
- ``test_dispatch``: the ingest handler alone (ingest → batcher), no middleware, no response
  building.
- ``test_stack``: ``__rsgi__`` with the middleware ``bare`` (request id, recovery, no access log),
  one optional step alone (``access_log``, ``auth``, ``rate_limit``), ``default`` (what
  ``webhookfast serve`` builds with default settings: request id, recovery, access log and
  metrics) and ``full`` (plus rate limit and bearer auth).
- ``test_payload_size``: the full stack at 1 … 10,000 alerts per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import body
from fakes import BEARER_TOKEN, AppHarness, make_app, quiet_access_log, webhook_request
from webhookfast.http import Context
from webhookfast.middleware import AccessLog, Auth, Middleware, RateLimit

PAYLOAD_SIZES = [1, 5, 10, 50, 100, 500, 10_000]


@pytest.fixture
def harness_factory() -> Iterator[Callable[..., AppHarness]]:
    made: list[AppHarness] = []

    def factory(**kwargs: Any) -> AppHarness:
        h = AppHarness(make_app(**kwargs))
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


def _rsgi(h: AppHarness, n: int) -> Callable[[], None]:
    scope, proto = webhook_request(body(n))
    app = h.app
    run = h.loop.run_until_complete

    def one_request() -> None:
        run(app.__rsgi__(scope, proto))

    one_request()
    assert proto.status == 200, proto.response
    return one_request


def test_loop_overhead(benchmark: Any) -> None:
    import asyncio

    loop = asyncio.new_event_loop()

    async def nothing() -> None:
        return None

    try:
        benchmark(lambda: loop.run_until_complete(nothing()))
    finally:
        loop.close()


def test_dispatch(benchmark: Any, harness_factory: Callable[..., AppHarness]) -> None:
    h = harness_factory(full_stack=False)
    app = h.app
    scope, proto = webhook_request(body(1))
    route = app.routes["/webhook"]
    ingest = route.handlers["POST"]
    run = h.loop.run_until_complete
    clock = time.perf_counter

    def one_request() -> Any:
        ctx = Context(scope, proto, route, clock())
        ctx.request_id = "bench-1"
        return run(ingest(ctx))

    answer = benchmark(one_request)
    assert isinstance(answer, bytes) and b'"stored"' in answer  # a 200 answer's body


def _middleware(name: str, app: Any) -> Middleware:
    if name == "bare":
        return Middleware()
    if name == "access_log":
        access_log = AccessLog(log=True)
        quiet_access_log(app)
        access_log.sink = app.access_log.sink
        return Middleware(access_log=access_log)
    if name == "auth":
        return Middleware(auth=Auth(bearer_tokens=[BEARER_TOKEN]))
    if name == "rate_limit":
        return Middleware(rate_limit=RateLimit(1e9, 1_000_000_000))
    raise ValueError(name)


@pytest.mark.parametrize("stack", ["bare", "access_log", "auth", "rate_limit", "default", "full"])
def test_stack(benchmark: Any, harness_factory: Callable[..., AppHarness], stack: str) -> None:
    if stack == "default":
        h = harness_factory(full_stack=False, access_log=True)
        quiet_access_log(h.app)
    elif stack == "full":
        h = harness_factory(full_stack=True)
    else:
        h = harness_factory(full_stack=False)
        h.app.middleware = _middleware(stack, h.app)
    benchmark(_rsgi(h, 1))


@pytest.mark.parametrize("alerts", PAYLOAD_SIZES)
def test_payload_size(benchmark: Any, harness_factory: Callable[..., AppHarness], alerts: int, per_call: Any) -> None:
    per_call(requests=1, alerts=alerts)
    h = harness_factory(full_stack=True)
    benchmark(_rsgi(h, alerts))
