"""Turns every exception into a JSON answer: HTTPError into its own, anything else into a 500
that reveals nothing of the internals (the traceback goes to the log with the request id)."""

from __future__ import annotations

import logging

from webhookfast.errors import HTTPError, error_body, internal_error
from webhookfast.http import Response

log = logging.getLogger("webhookfast.recovery")


def recover(exc: Exception, request_id: str) -> Response:
    """The answer to a request whose handling raised ``exc``."""
    if isinstance(exc, HTTPError):
        return error_response(exc, request_id)
    log.error("unhandled error (request_id=%s)", request_id, exc_info=exc)
    return error_response(internal_error(), request_id)


def error_response(err: HTTPError, request_id: str) -> Response:
    return Response(err.status, error_body(err, request_id), headers=err.headers or None)
