"""Authentication: bearer tokens and basic auth, exactly as Alertmanager's ``http_config`` sends
them. Either configured method admits a request. Comparisons are constant-time, secrets are never
logged, and a refusal is a 401 with ``WWW-Authenticate`` naming the accepted schemes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING

from webhookfast import metrics
from webhookfast.credentials import Credentials
from webhookfast.errors import HTTPError
from webhookfast.http import Context, Handler, Response

if TYPE_CHECKING:
    from webhookfast.settings import Settings


class Auth:
    def __init__(
        self,
        *,
        bearer_tokens: list[str] | None = None,
        basic_user: str | None = None,
        basic_password: str | None = None,
    ) -> None:
        self._tokens = [t.encode() for t in bearer_tokens or []]
        self._basic: tuple[bytes, bytes] | None = None
        if basic_user is not None and basic_password is not None:
            self._basic = (basic_user.encode(), basic_password.encode())
        schemes = []
        if self._tokens:
            schemes.append('Bearer realm="webhookfast"')
        if self._basic:
            schemes.append('Basic realm="webhookfast", charset="UTF-8"')
        self._challenge = [("www-authenticate", ", ".join(schemes))]

    @classmethod
    def from_settings(cls, settings: Settings) -> Auth:
        creds = Credentials.from_settings(settings)
        return cls(
            bearer_tokens=[creds.bearer_token] if creds.bearer_token else [],
            basic_user=creds.basic_user,
            basic_password=creds.basic_password,
        )

    @property
    def enabled(self) -> bool:
        return bool(self._tokens or self._basic)

    def _bearer_ok(self, credentials: str) -> bool:
        given = credentials.strip().encode()
        ok = False
        for token in self._tokens:  # no early exit: time does not tell which token nearly matched
            ok |= hmac.compare_digest(given, token)
        return ok

    def _basic_ok(self, credentials: str) -> bool:
        assert self._basic is not None
        try:
            raw = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = raw.partition(b":")
        if not sep:
            return False
        user_ok = hmac.compare_digest(user, self._basic[0])
        password_ok = hmac.compare_digest(password, self._basic[1])
        return user_ok & password_ok

    def check(self, header: str | None) -> str | None:
        """None when admitted, else the reason (a bounded metric label)."""
        if header is None:
            return "missing"
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._tokens:
            return None if self._bearer_ok(credentials) else "bad_token"
        if scheme == "basic" and self._basic is not None:
            return None if self._basic_ok(credentials) else "bad_basic"
        return "wrong_scheme"

    def wrap(self, inner: Handler) -> Handler:
        challenge = self._challenge

        async def auth(ctx: Context) -> Response:
            route = ctx.route
            if route is not None and route.protected:
                reason = self.check(ctx.scope.headers.get("authorization"))
                if reason is not None:
                    metrics.auth_failures.labels(reason).inc()
                    raise HTTPError(401, "unauthorized", "valid credentials are required", headers=challenge)
            return await inner(ctx)

        return auth
