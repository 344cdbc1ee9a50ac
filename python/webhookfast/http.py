"""The request context and response passed along the middleware chain, kept small for speed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

JSON = "application/json"

# Sent on every answer: this service never serves a page, a frame or a cacheable document.
SECURITY_HEADERS: list[tuple[str, str]] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
]


class Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = JSON,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


class Route:
    """One path: its handler per method and whether authentication applies."""

    __slots__ = ("allow", "handlers", "name", "path", "protected", "signable")

    def __init__(
        self, name: str, path: str, handlers: dict[str, Handler], protected: bool, signable: bool = False
    ) -> None:
        self.name = name
        self.path = path
        self.handlers = handlers
        self.allow = ", ".join(sorted(handlers))
        self.protected = protected
        # Only handlers that read the body (ingest) can check a request signature, which covers it.
        self.signable = signable


class Context:
    """Everything known about one request; middleware read and add to it."""

    __slots__ = ("alerts", "bytes_in", "proto", "request_id", "route", "scope", "signature_check", "started")

    def __init__(self, scope: Any, proto: Any, route: Route | None, started: float) -> None:
        self.scope = scope
        self.proto = proto
        self.route = route
        self.request_id = ""
        self.alerts = 0
        # The request body's length, or the body itself (the access log takes its length).
        self.bytes_in: int | bytes = 0
        self.started = started
        # Set by auth when a request is admitted on its signature headers alone: the handler must
        # call it with the body before using the body.
        self.signature_check: Callable[[Any, bytes], None] | None = None


Answer = Response | bytes
"""What a handler returns: a Response, or only the body of a 200 JSON answer with no headers of its
own (the ingest path's answer: a Response object per request was one more allocation)."""

Handler = Callable[[Context], Awaitable[Answer]]
