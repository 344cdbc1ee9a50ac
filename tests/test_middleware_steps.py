"""The admission steps (rate limit, then auth) run as one call, in order, and the first refusal
stops the rest; ``Middleware.begin`` and ``end``, which the app runs around a handler."""

from __future__ import annotations

from typing import Any

import pytest
from webhookfast.middleware import Middleware, _in_turn


class Refused(Exception):
    pass


def _steps(n: int, calls: list[int], refuse_at: int | None = None) -> list[Any]:
    def step(i: int) -> Any:
        def admit(ctx: object) -> None:
            calls.append(i)
            if i == refuse_at:
                raise Refused(i)

        return admit

    return [step(i) for i in range(n)]


def test_no_steps_is_no_call() -> None:
    assert _in_turn([]) is None


def test_one_step_is_called_as_it_is() -> None:
    steps = _steps(1, [])
    assert _in_turn(steps) is steps[0]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_steps_run_in_order(n: int) -> None:
    calls: list[int] = []
    admit = _in_turn(_steps(n, calls))
    assert admit is not None
    admit(object())
    assert calls == list(range(n))


@pytest.mark.parametrize("n", [2, 3])
def test_a_refusal_stops_the_steps_after_it(n: int) -> None:
    for refuse_at in range(n):
        calls: list[int] = []
        admit = _in_turn(_steps(n, calls, refuse_at))
        assert admit is not None
        with pytest.raises(Refused):
            admit(object())
        assert calls == list(range(refuse_at + 1))


class _Step:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    def admit(self, ctx: object) -> None:
        self.calls.append(self.name)


def test_the_middleware_runs_the_rate_limit_before_auth() -> None:
    calls: list[str] = []
    mw = Middleware(auth=_Step("auth", calls), rate_limit=_Step("rate_limit", calls))  # type: ignore[arg-type]
    assert mw.admit is not None
    mw.admit(object())  # type: ignore[arg-type]
    assert calls == ["rate_limit", "auth"]


def test_the_middleware_without_steps_has_no_admission_call() -> None:
    assert Middleware().admit is None


def _ctx(method: str, route: Any) -> Any:
    from types import SimpleNamespace

    from webhookfast.http import Context

    return Context(SimpleNamespace(method=method, headers={}), None, route, 0.0)


def test_begin_assigns_the_id_before_admission_and_returns_the_routes_handler() -> None:
    from webhookfast.errors import HTTPError
    from webhookfast.http import Response, Route

    async def handler(ctx: Any) -> Response:
        return Response(200, b"{}")

    seen: list[str] = []

    class Refusing:
        def admit(self, ctx: Any) -> None:
            seen.append(ctx.request_id)
            raise HTTPError(401, "unauthorized", "no")

    route = Route("webhook", "/webhook", {"POST": handler}, protected=True)
    assert Middleware().begin(_ctx("POST", route)) is handler
    with pytest.raises(HTTPError) as refused:
        Middleware(auth=Refusing()).begin(_ctx("POST", route))  # type: ignore[arg-type]
    assert refused.value.status == 401 and seen and seen[0]  # the id was there already
    with pytest.raises(HTTPError) as unknown:
        Middleware().begin(_ctx("POST", None))
    assert unknown.value.status == 404
    with pytest.raises(HTTPError) as wrong:
        Middleware().begin(_ctx("GET", route))
    assert wrong.value.status == 405


def test_end_records_the_answer_when_there_is_an_access_log() -> None:
    recorded: list[tuple[Any, int, bytes]] = []

    class Log:
        def record(self, ctx: Any, status: int, body: bytes) -> None:
            recorded.append((ctx, status, body))

    ctx = _ctx("POST", None)
    Middleware().end(ctx, 404, b"{}")  # none: nothing to do
    Middleware(access_log=Log()).end(ctx, 404, b"{}")  # type: ignore[arg-type]
    assert recorded == [(ctx, 404, b"{}")]
