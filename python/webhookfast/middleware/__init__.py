"""Middleware: each a small class wrapping the next handler, left out of the chain when disabled.

Order, outermost first (see ``build_chain``):
request id → access log and metrics → recovery → rate limit → auth → dispatch.
The request id comes first so that every later layer, log line and error body carries it; recovery
sits inside the access log so that errors (HTTPError → its JSON answer, anything else → a JSON 500)
are logged and counted with their final status. The app itself is the last resort around it all.
"""

from __future__ import annotations

from webhookfast.http import Handler
from webhookfast.middleware.access_log import AccessLog
from webhookfast.middleware.auth import Auth
from webhookfast.middleware.rate_limit import RateLimit
from webhookfast.middleware.recovery import Recovery
from webhookfast.middleware.request_id import RequestId

__all__ = ["AccessLog", "Auth", "RateLimit", "Recovery", "RequestId", "build_chain"]


def build_chain(
    dispatch: Handler,
    *,
    auth: Auth | None = None,
    rate_limit: RateLimit | None = None,
    access_log: AccessLog | None = None,
) -> Handler:
    handler = dispatch
    if auth is not None:
        handler = auth.wrap(handler)
    if rate_limit is not None:
        handler = rate_limit.wrap(handler)
    handler = Recovery().wrap(handler)
    if access_log is not None:
        handler = access_log.wrap(handler)
    return RequestId().wrap(handler)
