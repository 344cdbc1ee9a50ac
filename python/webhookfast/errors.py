"""The error contract: every 4xx/5xx answer is ``{"error": {"code", "message", "path"?, "request_id"}}``.

``code`` values are stable and listed in the README; messages are short and never echo secrets or
more than a few bytes of the request, because Alertmanager copies error bodies into its log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import orjson

from webhookfast._core import PAYLOAD_REASONS, SYNTAX_REASONS

# The decoder's reasons, defined in the Rust core: syntax → 400, content → 422. decoded_too_large
# is not the body's fault alone: ingest answers it as 413 or 503 (see Ingest).
DECODED_TOO_LARGE = "decoded_too_large"
CONTENT_REASONS = tuple(r for r in PAYLOAD_REASONS if r not in SYNTAX_REASONS and r != DECODED_TOO_LARGE)


class HTTPError(Exception):
    """An answer other than success, raised anywhere below the recovery middleware."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        path: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.headers = headers or []


def payload_status(reason: str) -> int:
    return 400 if reason in SYNTAX_REASONS else 422


def error_body(err: HTTPError, request_id: str) -> bytes:
    detail: dict[str, object] = {"code": err.code, "message": err.message}
    if err.path is not None:
        detail["path"] = err.path
    if err.offset is not None:
        detail["offset"] = err.offset
    detail["request_id"] = request_id
    return orjson.dumps({"error": detail})


def internal_error() -> HTTPError:
    return HTTPError(500, "internal_error", "internal server error")


def not_found(message: str = "no such route", *, path: str | None = None) -> HTTPError:
    return HTTPError(404, "not_found", message, path=path)


def method_not_allowed(allow: str) -> HTTPError:
    return HTTPError(405, "method_not_allowed", "method not allowed", headers=[("allow", allow)])


def service_unavailable(code: str, message: str, retry_after: int) -> HTTPError:
    """A 503 with ``Retry-After`` (Alertmanager retries 503s; it never retries a 4xx)."""
    return HTTPError(503, code, message, headers=[("retry-after", str(retry_after))])


def overloaded(retry_after: int, message: str = "ingest queue is full, retry later") -> HTTPError:
    return service_unavailable("overloaded", message, retry_after)


def unavailable(retry_after: int, message: str = "database unavailable, retry later") -> HTTPError:
    return service_unavailable("store_unavailable", message, retry_after)


def query_timeout(retry_after: int = 1, message: str = "history query took too long") -> HTTPError:
    return service_unavailable("query_timeout", message, retry_after)


def unstorable(message: str = "the database refused this request's alerts; details are in the server log") -> HTTPError:
    """The database refused the request's content on its own (it was written apart from the rest
    of its flush, which is committed): retrying it unchanged fails the same way, so a 4xx."""
    return HTTPError(422, "unstorable", message)


_H = TypeVar("_H", bound=Callable[..., Awaitable[Any]])


def read_errors(handler: _H) -> _H:
    """A read route's handler whose store errors become answers: the history readers raise store
    errors (storage/base.py), as the write path does, and the HTTP layer chooses the status."""
    from webhookfast.storage.base import QueryRefused, QueryTimeout, StoreUnavailable

    @wraps(handler)
    async def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except QueryTimeout as exc:
            raise query_timeout(1, str(exc) or "history query took too long") from None
        except QueryRefused as exc:
            raise HTTPError(400, "invalid_parameter", str(exc), path=exc.field) from None
        except StoreUnavailable:
            raise unavailable(1) from None

    return answered  # type: ignore[return-value]
