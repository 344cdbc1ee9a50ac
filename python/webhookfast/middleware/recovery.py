"""Turns every exception into a JSON answer: HTTPError into its own, anything else into a 500
that reveals nothing of the internals (the traceback goes to the log with the request id)."""

from __future__ import annotations

import logging

from webhookfast.errors import HTTPError, error_body, internal_error
from webhookfast.http import Context, Handler, Response

log = logging.getLogger("webhookfast.recovery")


class Recovery:
    def wrap(self, inner: Handler) -> Handler:
        async def recovery(ctx: Context) -> Response:
            try:
                return await inner(ctx)
            except HTTPError as err:
                return error_response(err, ctx.request_id)
            except Exception:
                log.exception("unhandled error (request_id=%s)", ctx.request_id)
                return error_response(internal_error(), ctx.request_id)

        return recovery


def error_response(err: HTTPError, request_id: str) -> Response:
    return Response(err.status, error_body(err, request_id), headers=err.headers or None)
