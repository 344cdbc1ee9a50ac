"""Middleware: what every request goes through around its route's handler.

Order (see ``App.__rsgi__``): request id → rate limit → auth → the handler → recovery →
access log and metrics. The request id comes first so that every later step, log line and error
body carries it; recovery turns any error (HTTPError → its JSON answer, anything else → a JSON
500) into the answer that the access log then records with its final status.

The steps are plain calls, not a chain of wrapping coroutines: a coroutine per layer cost about as
much as the rest of a 1-alert request (benches/test_handler.py). The app's own coroutine runs them
around the handler's (``begin``, then ``recover`` on an error, then ``end``): a coroutine of the
middleware's own was one more object per request (benches/test_allocations.py).
"""

from __future__ import annotations

from collections.abc import Callable

from webhookfast.errors import method_not_allowed, not_found
from webhookfast.http import Context, Handler
from webhookfast.middleware.access_log import AccessLog
from webhookfast.middleware.auth import Auth
from webhookfast.middleware.rate_limit import RateLimit
from webhookfast.middleware.recovery import error_response, recover
from webhookfast.middleware.request_id import RequestId

__all__ = ["AccessLog", "Auth", "Middleware", "RateLimit", "RequestId", "error_response", "recover"]


class Middleware:
    """The enabled steps before and after a request's handler."""

    def __init__(
        self,
        *,
        auth: Auth | None = None,
        rate_limit: RateLimit | None = None,
        access_log: AccessLog | None = None,
        request_id: RequestId | None = None,
    ) -> None:
        self.request_id = request_id or RequestId()
        admits: list[Callable[[Context], None]] = []
        if rate_limit is not None:
            admits.append(rate_limit.admit)
        if auth is not None:
            admits.append(auth.admit)
        self.admit = _in_turn(admits)
        self.record = access_log.record if access_log is not None else None

    def begin(self, ctx: Context) -> Handler:
        """The handler of an admitted request (its id assigned first, so that every error it
        meets carries it); raises the HTTPError that refuses it."""
        self.request_id.assign(ctx)
        if (admit := self.admit) is not None:
            admit(ctx)
        route = ctx.route
        if route is None:
            raise not_found()
        handler = route.handlers.get(ctx.scope.method)
        if handler is None:
            raise method_not_allowed(route.allow)
        return handler

    def end(self, ctx: Context, status: int, body: bytes) -> None:
        """After the answer is known (``recover``'s, on an error): the access log and metrics."""
        if self.record is not None:
            self.record(ctx, status, body)


def _in_turn(admits: list[Callable[[Context], None]]) -> Callable[[Context], None] | None:
    """One call for the admission steps (none, one, or each in turn): a loop over them per request
    made an iterator object each time."""
    if not admits:
        return None
    if len(admits) == 1:
        return admits[0]
    first, *rest = admits
    then = _in_turn(rest)
    assert then is not None

    def admit(ctx: Context) -> None:
        first(ctx)
        then(ctx)

    return admit
