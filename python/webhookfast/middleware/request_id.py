"""Gives every request an id: the caller's ``X-Request-ID`` when it is short and safe to log and
echo, else a new one (a per-process random prefix and a counter: unique, and cheap to make)."""

from __future__ import annotations

import itertools
import re
import secrets

from webhookfast.http import Context

_SAFE = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


class RequestId:
    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6) + "-"
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"

    def assign(self, ctx: Context) -> None:
        incoming = ctx.scope.headers.get("x-request-id")
        ctx.request_id = incoming if incoming is not None and _SAFE.fullmatch(incoming) else self.new_id()
