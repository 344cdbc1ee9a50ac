"""Gives every request an id: the caller's ``X-Request-ID`` when it is short and safe to log and
echo, else a new one (a per-process random prefix and a counter: unique, and cheap to make)."""

from __future__ import annotations

import re
import secrets

from webhookfast._core import RequestIds
from webhookfast.http import Context

_SAFE = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


class RequestId:
    def __init__(self) -> None:
        # One str per id, made in Rust (an f-string of a prefix and a counter made four objects).
        self._ids = RequestIds(secrets.token_hex(6) + "-")

    def new_id(self) -> str:
        return self._ids.new_id()

    def assign(self, ctx: Context) -> None:
        incoming = ctx.scope.headers.get("x-request-id")
        ctx.request_id = incoming if incoming is not None and _SAFE.fullmatch(incoming) else self.new_id()
